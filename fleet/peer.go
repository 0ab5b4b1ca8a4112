package fleet

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/connectivity"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"

	"github.com/geomatch/geomatch/driver"
	"github.com/geomatch/geomatch/internal/serve"
	"github.com/geomatch/geomatch/internal/tracing"
	matcherv1 "github.com/geomatch/geomatch/proto/geomatch/matcher/v1"
	"github.com/geomatch/geomatch/shardmap"
)

// LocalNode is a matcher in this process, reached by function call instead
// of loopback gRPC (Config.InProcess). The matcher's local adapter
// satisfies it: the same answers and status errors as its gRPC service,
// minus the encoding and the socket. Messages pass by pointer: the client
// never changes a request after handing it over, and the node keeps no
// reference to a request or an answer once a call returns.
type LocalNode interface {
	// Nearby is MatcherService.Nearby.
	Nearby(ctx context.Context, req *matcherv1.NearbyRequest) (*matcherv1.NearbyResponse, error)
	// Lookup is MatcherService.Lookup.
	Lookup(ctx context.Context, req *matcherv1.LookupRequest) (*matcherv1.LookupResponse, error)
	// Scan is MatcherService.Scan.
	Scan(ctx context.Context, req *matcherv1.ScanRequest) (*matcherv1.ScanResponse, error)
	// Applier returns the apply function of one in-process Apply stream:
	// it applies one batch and returns its answer; an error ends the
	// stream. It is not safe for concurrent use (one sender, like a
	// stream).
	Applier() func(context.Context, *matcherv1.ApplyRequest) (*matcherv1.ApplyResponse, error)
}

// peer is the client's link to one matcher: a client connection for
// queries and, while there are updates or evictions to send, one Apply
// stream that carries them in batches. The stream is opened when the first
// of them arrives and re-opened with backoff when it breaks.
type peer struct {
	c    *Client
	id   string
	addr string
	conn *grpc.ClientConn
	rpc  matcherv1.MatcherServiceClient
	ride matcherv1.DispatchServiceClient
	// local is the matcher itself when it runs in this process: searches
	// and updates then skip gRPC (Config.InProcess).
	local LocalNode
	log   *slog.Logger

	queue     chan item
	evictions chan eviction
	kick      chan struct{} // ends a reconnect backoff (the ring changed)
	stop      chan struct{}
	// qmu guards qclosed: once the run loop is done with the queue, an
	// update handed to the peer is refused (and routed elsewhere or
	// parked) instead of waiting in a queue nobody reads.
	qmu      sync.RWMutex
	qclosed  bool
	exiting  chan struct{} // closed when the run loop stops reading the queue
	stopOnce sync.Once
	// redo holds the updates the matcher acknowledged last, sent again to
	// the new owners if it leaves the ring (redo.go); remote matchers
	// only, an in-process one does not crash alone.
	redo redoLog
}

func newPeer(c *Client, mem shardmap.Member) (*peer, error) {
	opts := append([]grpc.DialOption{
		grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithDefaultCallOptions(grpc.MaxCallRecvMsgSize(serve.MaxMessageBytes)),
	}, serve.DialOptions()...)
	opts = append(opts, serve.FastReconnect())
	opts = append(opts, c.cfg.DialOptions...)
	opts = append(opts, tracing.DialOptions()...) // nil unless the process traces
	conn, err := grpc.NewClient(mem.Addr, opts...)
	if err != nil {
		return nil, fmt.Errorf("connect to matcher %s at %s: %w", mem.ID, mem.Addr, err)
	}
	return &peer{
		c: c, id: mem.ID, addr: mem.Addr, conn: conn, local: c.cfg.InProcess[mem.ID],
		rpc:       matcherv1.NewMatcherServiceClient(conn),
		ride:      matcherv1.NewDispatchServiceClient(conn),
		log:       c.log.With("node", mem.ID, "addr", mem.Addr),
		queue:     make(chan item, c.cfg.QueueLen),
		evictions: make(chan eviction, c.cfg.EvictionQueueLen),
		kick:      make(chan struct{}, 1),
		stop:      make(chan struct{}),
		exiting:   make(chan struct{}),
	}, nil
}

// nearby searches the matcher, in process when it runs here.
func (p *peer) nearby(ctx context.Context, req *matcherv1.NearbyRequest) (*matcherv1.NearbyResponse, error) {
	if p.local != nil {
		return p.local.Nearby(ctx, req)
	}
	return p.rpc.Nearby(ctx, req)
}

// lookup asks the matcher for drivers by id, in process when it runs here.
func (p *peer) lookup(ctx context.Context, req *matcherv1.LookupRequest) (*matcherv1.LookupResponse, error) {
	if p.local != nil {
		return p.local.Lookup(ctx, req)
	}
	return p.rpc.Lookup(ctx, req)
}

// scan asks the matcher for a page of its drivers, in process when it runs
// here.
func (p *peer) scan(ctx context.Context, req *matcherv1.ScanRequest) (*matcherv1.ScanResponse, error) {
	if p.local != nil {
		return p.local.Scan(ctx, req)
	}
	return p.rpc.Scan(ctx, req)
}

// close stops the peer; its run loop hands queued updates back for routing.
func (p *peer) close() { p.stopOnce.Do(func() { close(p.stop) }) }

// enqueue hands an update to the peer's queue; block says whether to wait
// for room (until ctx is done). It reports false, and the caller keeps
// the update, when the queue is full (not blocking), ctx is done, or the
// peer has stopped reading its queue.
func (p *peer) enqueue(ctx context.Context, it item, block bool) bool {
	p.qmu.RLock()
	defer p.qmu.RUnlock()
	if p.qclosed {
		return false
	}
	if !block {
		select {
		case p.queue <- it:
			return true
		default:
			return false
		}
	}
	select {
	case p.queue <- it:
		return true
	case <-ctx.Done():
		return false
	case <-p.exiting:
		return false
	}
}

// closeQueue refuses new updates and hands back those still queued: no
// update is left in a queue nobody reads.
func (p *peer) closeQueue() {
	close(p.exiting) // a blocked enqueue gives up and releases its read lock
	p.qmu.Lock()
	p.qclosed = true
	p.qmu.Unlock()
	p.drain()
}

// run owns the peer's stream until ctx is done or the peer is closed. No
// stream is open while there is nothing to send.
func (p *peer) run(ctx context.Context) {
	defer p.conn.Close()
	defer p.closeQueue()
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	go func() { // owned: ends when the peer is closed or ctx is done
		select {
		case <-p.stop:
			cancel()
		case <-ctx.Done():
		}
	}()
	const firstWait = 50 * time.Millisecond
	wait := firstWait
	for {
		var first batchStart
		select {
		case <-ctx.Done():
			p.drain()
			return
		case it := <-p.queue:
			first.update = &it
		case ev := <-p.evictions:
			first.eviction = &ev
		}
		answered, err := p.stream(ctx, first)
		if ctx.Err() != nil || p.stopped() {
			break
		}
		if answered {
			wait = firstWait // it worked until now: a new failure starts the backoff afresh
			if p.local == nil {
				// Lost: what it acknowledged lately goes to its successors
				// now, ahead of the failover.
				p.c.goOwned(func(ctx context.Context) { p.c.standbyFor(ctx, p) })
			}
		}
		p.log.Warn("update stream to matcher broke", "err", err, "retry_in", wait)
		// While the matcher is unreachable, its updates wait in the
		// client's lot for the ring to move its shards or for it to come
		// back (a ring change ends the backoff at once, and starts it
		// afresh: the ring may name a node that has just come back).
		if p.parkQueued(wait, fmt.Sprintf("matcher %s at %s unreachable: %s", p.id, p.addr, errText(err))) {
			wait = firstWait
			continue
		}
		wait = min(wait*2, 2*time.Second)
	}
	p.drain()
}

// batchStart is what woke an idle peer: the first update or eviction of a
// new stream.
type batchStart struct {
	update   *item
	eviction *eviction
}

// parkQueued parks every update that arrives in the next d, or until the
// peer is kicked or stopped; it reports whether it was kicked.
func (p *peer) parkQueued(d time.Duration, why string) (kicked bool) {
	t := time.NewTimer(d)
	defer t.Stop()
	for {
		select {
		case it := <-p.queue:
			p.c.park(it, why)
		case <-t.C:
			return false
		case <-p.kick:
			return true
		case <-p.stop:
			return false
		}
	}
}

// stopped reports whether the peer was closed (its run loop's context is
// cancelled a moment later).
func (p *peer) stopped() bool {
	select {
	case <-p.stop:
		return true
	default:
		return false
	}
}

// kickBackoff ends the peer's reconnect backoff: the next update is sent
// at once. (The connection's own backoff is kept short instead of reset:
// grpc.ClientConn.ResetConnectBackoff races with the connection's
// subchannel updates in grpc-go 1.85.)
func (p *peer) kickBackoff() {
	select {
	case p.kick <- struct{}{}:
	default:
	}
}

// drain hands queued updates back to the client (they are re-routed to the
// current owner, or fail when the client stops) and lets go of queued
// evictions.
func (p *peer) drain() {
	for {
		select {
		case it := <-p.queue:
			p.c.retry(it, fmt.Sprintf("matcher %s closed", p.id), 0)
		case ev := <-p.evictions:
			// The peer stops (the matcher left the ring, and its copies
			// with it, or the client stops): nothing sends it any more.
			ev.ack.done()
		default:
			return
		}
	}
}

// sentBatch is what an unanswered batch carried: its updates, and its
// evictions, sent again (they are idempotent) if the stream breaks before
// the answer.
type sentBatch struct {
	items     []item
	evictions []eviction
}

// stream runs one Apply stream, starting with first, until it breaks or ctx
// is done. It reports whether the matcher answered any batch on it.
func (p *peer) stream(ctx context.Context, first batchStart) (answered bool, _ error) {
	sctx, cancel := context.WithCancel(ctx)
	defer cancel()
	st, err := p.openApply(sctx)
	if err != nil {
		if first.update != nil {
			p.c.retry(*first.update, fmt.Sprintf("matcher %s: open apply stream: %s", p.id, errText(err)), 0)
		}
		if first.eviction != nil {
			p.requeueEvictions([]eviction{*first.eviction})
		}
		return false, fmt.Errorf("open apply stream: %w", err)
	}
	var (
		mu       sync.Mutex
		inflight = make(map[uint64]sentBatch)
		window   = make(chan struct{}, p.c.cfg.InflightBatches)
		recvErr  = make(chan error, 1)
		recvDone = make(chan struct{})
		got      atomic.Bool // an answer arrived
	)
	// The receiver is owned by this call: it ends when the stream does,
	// and stream waits for it before returning.
	go func() {
		defer close(recvDone)
		for {
			resp, err := st.Recv()
			if err != nil {
				recvErr <- err
				return
			}
			got.Store(true)
			mu.Lock()
			b, found := inflight[resp.GetSeq()]
			delete(inflight, resp.GetSeq())
			mu.Unlock()
			if found {
				<-window
				for _, ev := range b.evictions {
					ev.ack.done()
				}
				p.complete(b.items, resp)
			}
		}
	}()
	defer func() {
		cancel()
		<-recvDone
		answered = got.Load()
	}()
	// requeue hands the updates of unanswered batches back for routing
	// (resending is safe: a duplicate timestamp is ignored by the matcher)
	// and queues their evictions again.
	requeue := func(reason error) {
		mu.Lock()
		defer mu.Unlock()
		for seq, b := range inflight {
			for _, it := range b.items {
				p.c.retry(it, fmt.Sprintf("update stream to matcher %s broke: %s", p.id, errText(reason)), 0)
			}
			p.requeueEvictions(b.evictions)
			delete(inflight, seq)
		}
	}
	var (
		seq     uint64
		pending = first.update // an update held back: the first, or one whose epoch differs from the batch's
		firstEv = first.eviction
		batch   = make([]item, 0, p.c.cfg.BatchMax)
	)
	for {
		batch = batch[:0]
		req := &matcherv1.ApplyRequest{}
		var evs []eviction
		switch {
		case pending != nil:
			batch = append(batch, *pending)
			pending = nil
		case firstEv != nil:
			evs = append(evs, *firstEv)
			firstEv = nil
		default:
			select {
			case <-ctx.Done():
				requeue(ctx.Err())
				return false, ctx.Err()
			case err := <-recvErr:
				requeue(err)
				return false, err
			case it := <-p.queue:
				batch = append(batch, it)
			case ev := <-p.evictions:
				evs = append(evs, ev)
			}
		}
		// Take whatever else is waiting, without blocking.
	fill:
		for len(batch) < cap(batch) {
			select {
			case it := <-p.queue:
				if len(batch) > 0 && it.epoch != batch[0].epoch {
					pending = &it
					break fill
				}
				batch = append(batch, it)
			default:
				break fill
			}
		}
	evict:
		for len(evs) < p.c.cfg.BatchMax {
			select {
			case ev := <-p.evictions:
				evs = append(evs, ev)
			default:
				break evict
			}
		}
		if len(evs) > 0 {
			req.Evictions = make([]*matcherv1.Eviction, len(evs))
			for i, ev := range evs {
				req.Evictions[i] = ev.e
			}
		}
		now := time.Now()
		kept := batch[:0]
		for _, it := range batch {
			if now.After(it.deadline) {
				p.c.finish(it, driver.Unavailable, "deadline passed before the update was sent")
				continue
			}
			kept = append(kept, it)
		}
		batch = kept
		if len(batch) == 0 && len(req.Evictions) == 0 {
			continue
		}
		seq++
		req.Seq = seq
		req.Updates = make([]*matcherv1.Update, len(batch))
		for i, it := range batch {
			req.Updates[i] = it.u
			req.Epoch = it.epoch
		}
		if req.Epoch == 0 {
			m, _ := p.c.src.Current()
			req.Epoch = m.Epoch()
		}
		select {
		case window <- struct{}{}:
		case <-ctx.Done():
			p.requeueBatch(batch, ctx.Err())
			requeue(ctx.Err())
			return false, ctx.Err()
		case err := <-recvErr:
			p.requeueBatch(batch, err)
			p.requeueEvictions(evs)
			requeue(err)
			return false, err
		}
		mu.Lock()
		inflight[seq] = sentBatch{items: append([]item(nil), batch...), evictions: evs}
		mu.Unlock()
		if err := st.Send(req); err != nil {
			// The real error comes from Recv.
			if !errors.Is(err, context.Canceled) {
				err = <-recvErr
			}
			requeue(err)
			return false, err
		}
	}
}

// applyStream is the client's end of an Apply stream: gRPC's, or
// localApply for a matcher in this process.
type applyStream interface {
	Send(*matcherv1.ApplyRequest) error
	Recv() (*matcherv1.ApplyResponse, error)
}

// openApply opens the update stream to the matcher.
func (p *peer) openApply(ctx context.Context) (applyStream, error) {
	if p.local != nil {
		return &localApply{
			ctx: ctx, apply: p.local.Applier(),
			resps: make(chan *matcherv1.ApplyResponse, p.c.cfg.InflightBatches),
			errs:  make(chan error, 1),
		}, nil
	}
	return p.rpc.Apply(ctx, grpc.WaitForReady(false))
}

// localApply is an Apply stream to a matcher in this process: Send applies
// the batch at once on the sender's goroutine and queues the answer for
// Recv, so the stream loop works as it does over gRPC. The sender never
// waits on the queue for long: it holds a window slot for each answer not
// yet received, and the queue has a place for each slot.
type localApply struct {
	ctx   context.Context
	apply func(context.Context, *matcherv1.ApplyRequest) (*matcherv1.ApplyResponse, error)
	resps chan *matcherv1.ApplyResponse
	errs  chan error // the error that ended the stream, for Recv
}

func (s *localApply) Send(req *matcherv1.ApplyRequest) error {
	resp, err := s.apply(s.ctx, req)
	if err != nil {
		select {
		case s.errs <- err:
		default:
		}
		return err
	}
	select {
	case s.resps <- resp:
		return nil
	case <-s.ctx.Done():
		return s.ctx.Err()
	}
}

func (s *localApply) Recv() (*matcherv1.ApplyResponse, error) {
	select { // answers already made come before the error that followed them
	case resp := <-s.resps:
		return resp, nil
	default:
	}
	select {
	case resp := <-s.resps:
		return resp, nil
	case err := <-s.errs:
		return nil, err
	case <-s.ctx.Done():
		return nil, status.FromContextError(s.ctx.Err()).Err()
	}
}

// requeueBatch hands a batch that was never sent back for routing.
func (p *peer) requeueBatch(batch []item, reason error) {
	for _, it := range batch {
		p.c.retry(it, fmt.Sprintf("matcher %s: %s", p.id, errText(reason)), 0)
	}
}

// requeueEvictions queues evictions a broken stream did not deliver
// again for the peer's next stream: an eviction is idempotent, and lost it
// would leave the driver's older copy on the matcher. They hold back no
// acknowledgement any more: a matcher whose stream broke is out of reach
// (and serves nothing from there), and the eviction still follows it.
func (p *peer) requeueEvictions(evs []eviction) {
	for _, ev := range evs {
		ev.ack.done()
		p.c.queueEviction(p, eviction{e: ev.e})
	}
}

// reachable reports whether an eviction sent to the peer now is expected
// to land soon: the matcher runs in this process, or its connection is up
// or idle (not yet used, or unused for a while), not failing.
func (p *peer) reachable() bool {
	if p.local != nil {
		return true
	}
	s := p.conn.GetState()
	return s == connectivity.Ready || s == connectivity.Idle
}

// complete delivers the outcomes of one answered batch. An update that
// claimed its driver from other matchers is acknowledged only once their
// older copies are gone (claimAck): after its acknowledgement no search
// shows the driver where it was before. The matcher applies a batch's
// evictions before its updates, so a sender's next update of the driver
// finds no older copy anywhere either.
func (p *peer) complete(items []item, resp *matcherv1.ApplyResponse) {
	for _, e := range resp.GetNewer() {
		p.c.evictAtClaimer(p.id, e)
	}
	var held map[uint32]*claimAck
	for _, i := range resp.GetClaimed() {
		if int(i) < len(items) {
			if held == nil {
				held = make(map[uint32]*claimAck, len(resp.GetClaimed()))
			}
			u := items[i].u
			h := p.c.newClaimAck(items[i])
			held[i] = h
			p.c.evictElsewhereFor(p.id, u.GetDriverId(), u.GetTimestampMs(), h)
		}
	}
	applied := func(i int, it item) {
		if h := held[uint32(i)]; h != nil {
			h.done()
			return
		}
		p.c.finish(it, driver.Applied, "")
	}
	if len(resp.GetExceptions()) == 0 {
		if p.local == nil {
			p.redo.add(items, nil, time.Now())
		}
		for i, it := range items {
			applied(i, it)
		}
		return
	}
	codes := make([]driver.Outcome, len(items))
	for _, e := range resp.GetExceptions() {
		if int(e.GetIndex()) < len(codes) {
			codes[e.GetIndex()] = driver.Outcome(e.GetOutcome())
		}
	}
	if p.local == nil {
		p.redo.add(items, func(i int) bool { return codes[i] != 0 }, time.Now())
	}
	for i, it := range items {
		switch codes[i] {
		case 0:
			applied(i, it)
		case driver.NotOwner:
			p.c.retry(it, fmt.Sprintf("matcher %s does not own the shard at its epoch %d", p.id, resp.GetEpoch()), resp.GetEpoch())
		case driver.Stale:
			if it.attempt > 0 || it.why != "" {
				// Sent again (a retry, or out of the lot) after a newer
				// update of the driver, sent later by its client, was
				// applied: superseded, not stale in the client's order.
				p.c.finish(it, driver.Duplicate, "superseded by a newer update of the driver")
				continue
			}
			p.c.finish(it, driver.Stale, "")
		default:
			p.c.finish(it, codes[i], "")
		}
	}
}

// errText is err's message for a reason handed to a client: a gRPC
// status's own message, without the "rpc error: code = ... desc =" that
// the client's status repeats anyway.
func errText(err error) string {
	if st, ok := status.FromError(err); ok {
		return st.Message()
	}
	return err.Error()
}

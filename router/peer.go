package router

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"

	"github.com/geomatch/geomatch/internal/serve"
	"github.com/geomatch/geomatch/matcher"
	matcherv1 "github.com/geomatch/geomatch/proto/geomatch/matcher/v1"
	"github.com/geomatch/geomatch/shardmap"
)

// item is one location update on its way to a matcher.
type item struct {
	u        *matcherv1.Update
	epoch    uint64 // ring epoch it was routed by
	sink     sink
	idx      int32
	attempt  int
	deadline time.Time
}

// outcome is the final word on one update.
type outcome struct {
	code matcherv1.Outcome
	// unavailable is set when no matcher answered; msg says why.
	unavailable bool
	msg         string
}

func (o outcome) accepted() bool {
	return !o.unavailable && (o.code == matcherv1.Outcome_OUTCOME_APPLIED || o.code == matcherv1.Outcome_OUTCOME_DUPLICATE)
}

// sink receives the outcome of each update of one call or stream.
type sink interface {
	done(idx int32, o outcome)
}

// peer is the router's link to one matcher: a client connection for queries
// and one Apply stream that carries batched updates and evictions. The
// stream is re-opened with backoff when it breaks.
type peer struct {
	r    *Router
	id   string
	addr string
	conn *grpc.ClientConn
	rpc  matcherv1.MatcherServiceClient
	// local is the matcher itself when it runs in this process: searches
	// and updates then skip gRPC (Config.InProcess).
	local *matcher.Local
	// nearby searches the matcher: local.Nearby or rpc.Nearby.
	nearby func(context.Context, *matcherv1.NearbyRequest) (*matcherv1.NearbyResponse, error)
	ride   matcherv1.DispatchServiceClient
	log    *slog.Logger

	queue     chan item
	evictions chan *matcherv1.Eviction
	stop      chan struct{}
	stopOnce  sync.Once
}

func newPeer(r *Router, mem shardmap.Member) (*peer, error) {
	opts := append([]grpc.DialOption{
		grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithDefaultCallOptions(grpc.MaxCallRecvMsgSize(serve.MaxMessageBytes)),
	}, serve.DialOptions()...)
	opts = append(opts, r.cfg.DialOptions...)
	conn, err := grpc.NewClient(mem.Addr, opts...)
	if err != nil {
		return nil, fmt.Errorf("connect to matcher %s at %s: %w", mem.ID, mem.Addr, err)
	}
	p := &peer{
		r: r, id: mem.ID, addr: mem.Addr, conn: conn, local: r.cfg.InProcess[mem.ID],
		rpc:       matcherv1.NewMatcherServiceClient(conn),
		ride:      matcherv1.NewDispatchServiceClient(conn),
		log:       r.log.With("node", mem.ID, "addr", mem.Addr),
		queue:     make(chan item, r.cfg.QueueLen),
		evictions: make(chan *matcherv1.Eviction, r.cfg.EvictionQueueLen),
		stop:      make(chan struct{}),
	}
	p.nearby = func(ctx context.Context, req *matcherv1.NearbyRequest) (*matcherv1.NearbyResponse, error) {
		return p.rpc.Nearby(ctx, req)
	}
	if p.local != nil {
		p.nearby = p.local.Nearby
	}
	return p, nil
}

// close stops the peer; its run loop hands queued updates back for routing.
func (p *peer) close() { p.stopOnce.Do(func() { close(p.stop) }) }

// run owns the peer's stream until ctx is done or the peer is closed.
func (p *peer) run(ctx context.Context) {
	defer p.conn.Close()
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	go func() {
		select {
		case <-p.stop:
			cancel()
		case <-ctx.Done():
		}
	}()
	wait := 50 * time.Millisecond
	for ctx.Err() == nil {
		err := p.stream(ctx)
		if ctx.Err() != nil {
			break
		}
		p.log.Warn("update stream to matcher broke", "err", err, "retry_in", wait)
		// While the matcher is unreachable, updates fail fast with a clear
		// reason instead of waiting out their deadlines.
		p.failQueued(wait, fmt.Sprintf("matcher %s at %s unreachable: %v", p.id, p.addr, err))
		wait = min(wait*2, 2*time.Second)
	}
	p.drain()
}

// failQueued fails every update that arrives in the next d.
func (p *peer) failQueued(d time.Duration, msg string) {
	t := time.NewTimer(d)
	defer t.Stop()
	for {
		select {
		case it := <-p.queue:
			p.r.finish(it, outcome{unavailable: true, msg: msg})
		case <-t.C:
			return
		case <-p.stop:
			return
		}
	}
}

// drain hands queued updates back to the router (they are re-routed to the
// current owner, or fail when the router stops).
func (p *peer) drain() {
	for {
		select {
		case it := <-p.queue:
			p.r.retry(it, fmt.Sprintf("matcher %s closed", p.id), 0)
		default:
			return
		}
	}
}

// stream runs one Apply stream until it breaks or ctx is done.
func (p *peer) stream(ctx context.Context) error {
	sctx, cancel := context.WithCancel(ctx)
	defer cancel()
	st, err := p.openApply(sctx)
	if err != nil {
		return fmt.Errorf("open apply stream: %w", err)
	}
	var (
		mu       sync.Mutex
		inflight = make(map[uint64][]item)
		window   = make(chan struct{}, p.r.cfg.InflightBatches)
		recvErr  = make(chan error, 1)
		recvDone = make(chan struct{})
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
			mu.Lock()
			items, found := inflight[resp.GetSeq()]
			delete(inflight, resp.GetSeq())
			mu.Unlock()
			if found {
				<-window
				p.complete(items, resp)
			}
		}
	}()
	defer func() {
		cancel()
		<-recvDone
	}()
	// requeue hands the updates of unanswered batches back for routing:
	// resending is safe, a duplicate timestamp is ignored by the matcher.
	requeue := func(reason error) {
		mu.Lock()
		defer mu.Unlock()
		for seq, items := range inflight {
			for _, it := range items {
				p.r.retry(it, fmt.Sprintf("update stream to matcher %s broke: %v", p.id, reason), 0)
			}
			delete(inflight, seq)
		}
	}
	var (
		seq     uint64
		pending *item // an update held back because its epoch differs from the batch's
		batch   = make([]item, 0, p.r.cfg.BatchMax)
	)
	for {
		batch = batch[:0]
		req := &matcherv1.ApplyRequest{}
		if pending != nil {
			batch = append(batch, *pending)
			pending = nil
		} else {
			select {
			case <-ctx.Done():
				requeue(ctx.Err())
				return ctx.Err()
			case err := <-recvErr:
				requeue(err)
				return err
			case it := <-p.queue:
				batch = append(batch, it)
			case ev := <-p.evictions:
				req.Evictions = append(req.Evictions, ev)
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
		for len(req.Evictions) < p.r.cfg.BatchMax {
			select {
			case ev := <-p.evictions:
				req.Evictions = append(req.Evictions, ev)
			default:
				break evict
			}
		}
		now := time.Now()
		kept := batch[:0]
		for _, it := range batch {
			if now.After(it.deadline) {
				p.r.finish(it, outcome{unavailable: true, msg: "deadline passed before the update was sent"})
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
			m, _ := p.r.src.Current()
			req.Epoch = m.Epoch()
		}
		select {
		case window <- struct{}{}:
		case <-ctx.Done():
			p.requeueBatch(batch, ctx.Err())
			requeue(ctx.Err())
			return ctx.Err()
		case err := <-recvErr:
			p.requeueBatch(batch, err)
			requeue(err)
			return err
		}
		mu.Lock()
		inflight[seq] = append([]item(nil), batch...)
		mu.Unlock()
		if err := st.Send(req); err != nil {
			// The real error comes from Recv.
			if !errors.Is(err, context.Canceled) {
				err = <-recvErr
			}
			requeue(err)
			return err
		}
	}
}

// applyStream is the router's end of an Apply stream: gRPC's, or
// localApply for a matcher in this process.
type applyStream interface {
	Send(*matcherv1.ApplyRequest) error
	Recv() (*matcherv1.ApplyResponse, error)
}

// openApply opens the update stream to the matcher.
func (p *peer) openApply(ctx context.Context) (applyStream, error) {
	if p.local != nil {
		return &localApply{
			ctx: ctx, a: p.local.Applier(),
			resps: make(chan *matcherv1.ApplyResponse, p.r.cfg.InflightBatches),
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
	a     *matcher.Applier
	resps chan *matcherv1.ApplyResponse
	errs  chan error // the error that ended the stream, for Recv
}

func (s *localApply) Send(req *matcherv1.ApplyRequest) error {
	resp, err := s.a.Apply(s.ctx, req)
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

func (p *peer) requeueBatch(batch []item, reason error) {
	for _, it := range batch {
		p.r.retry(it, fmt.Sprintf("matcher %s: %v", p.id, reason), 0)
	}
}

// complete delivers the outcomes of one answered batch.
func (p *peer) complete(items []item, resp *matcherv1.ApplyResponse) {
	if len(resp.GetExceptions()) == 0 {
		for _, it := range items {
			p.r.finish(it, outcome{code: matcherv1.Outcome_OUTCOME_APPLIED})
		}
	} else {
		codes := make([]matcherv1.Outcome, len(items))
		for _, e := range resp.GetExceptions() {
			if int(e.GetIndex()) < len(codes) {
				codes[e.GetIndex()] = e.GetOutcome()
			}
		}
		for i, it := range items {
			switch codes[i] {
			case matcherv1.Outcome_OUTCOME_UNSPECIFIED:
				p.r.finish(it, outcome{code: matcherv1.Outcome_OUTCOME_APPLIED})
			case matcherv1.Outcome_OUTCOME_NOT_OWNER:
				p.r.retry(it, fmt.Sprintf("matcher %s does not own the shard at its epoch %d", p.id, resp.GetEpoch()), resp.GetEpoch())
			default:
				p.r.finish(it, outcome{code: codes[i]})
			}
		}
	}
	for _, i := range resp.GetClaimed() {
		if int(i) < len(items) {
			u := items[i].u
			p.r.evictElsewhere(p.id, u.GetDriverId(), u.GetTimestampMs())
		}
	}
}

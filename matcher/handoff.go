package matcher

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/uber/h3-go/v4"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"

	"github.com/geomatch/geomatch/internal/geo"
	"github.com/geomatch/geomatch/internal/serve"
	hoff "github.com/geomatch/geomatch/matcher/handoff"
	"github.com/geomatch/geomatch/matcher/index"
	matcherv1 "github.com/geomatch/geomatch/proto/geomatch/matcher/v1"
	geomatchv1 "github.com/geomatch/geomatch/proto/geomatch/v1"
	"github.com/geomatch/geomatch/shardmap"
	"github.com/geomatch/geomatch/store"
)

// Handoff moves shards between nodes without losing drivers.
//
// When the ring changes, a node first gives up the shards it lost: it takes
// a snapshot of their drivers, drops them from its index (it no longer
// serves them) and keeps the snapshot for HandoffGrace, to hand it to the
// new owners. Drivers of a shard that was split or merged and stays on the
// node are re-homed in the index right away.
//
// Then it warms the shards it gained. A warm-up asks every other node for
// the drivers it holds that the new ring gives to this node (Transfer: the
// old owner answers from its snapshots), and for the shards no old owner
// handed over whole (an old owner dead or no longer a member, or one that
// gave the shard up before it had finished warming it) it reads the last
// positions written behind to the store. Everything is merged into the index
// by timestamp, so updates that reach the node during the warm-up (routers
// send them to the new owner as soon as they see the new ring) are never
// overwritten by older transferred positions.
//
// A copy handed over may be stale by the time it is applied: the driver
// may have crossed to another node's shard after the snapshot was taken,
// and the eviction that says so may still be on its way. Three things keep
// a driver on one node. Evictions received while handoff state is kept are
// recorded, and so are the timestamps of drivers the node itself gave up,
// and an older copy is not applied. After the warm-up every copy applied is
// checked with the nodes that answered (Holding), and dropped where one
// holds the driver newer (a warm-up cancelled first leaves its copies to
// the next one to check). And a copy stays marked as handed over until the
// driver's own next update, which then evicts the copies elsewhere as a new
// driver's first update does.
//
// Until its warm-up ends, a gained shard is gated: nearby searches over it
// wait (bounded by WarmTimeout and the caller's deadline) instead of
// answering from a half-filled index. Location updates are not gated by
// the warm-up, only by the release round that starts with it: the node
// acknowledges no update in a gained shard until every other member has
// moved to the new epoch (Ring with advance_to), so that no old owner
// still at the previous epoch answers a search with a position older than
// one the new owner has acknowledged (a router that has not seen the new
// ring yet would otherwise ask it). A member that cannot be reached is
// waited for at most releaseWait (a node the new ring dropped, at most
// departedWait): it is dead, or cut off, and then its own ownership lease
// stops it from answering.
//
// A later ring change cancels a running warm-up and starts one from the
// last ring at which the node was fully warm, so nothing gained in between
// is left cold.
//
// Every decision (what to give up, re-home, warm, reclaim, serve, read
// from the store, refuse as stale) is taken by package matcher/handoff;
// this file performs the I/O around it.

// gate marks the shards a running warm-up is filling.
type gate struct {
	step hoff.Step     // base: last fully warm ring; target; regained shards
	done chan struct{} // closed when the warm-up ends, however it ends
	// released is closed once every other member has moved to the target
	// epoch (and given up what it lost there) or could not be reached:
	// see collectReleases.
	released chan struct{}
}

// isReleased reports whether g's release round is over.
func (g *gate) isReleased() bool {
	select {
	case <-g.released:
		return true
	default:
		return false
	}
}

// gainsAny reports whether b updates a shard g gains.
func (g *gate) gainsAny(b *Batch) bool {
	layout := g.step.Target.Layout()
	for i := range b.Updates {
		u := &b.Updates[i]
		if checkUpdate(u, layout) == nil && g.covers(layout.ShardOfFine(u.FineCell)) {
			return true
		}
	}
	return false
}

// covers reports whether shard is being warmed by g.
func (g *gate) covers(shard h3.Cell) bool { return g.step.Gains(shard) }

// handoff is the node's handoff state.
type handoff struct {
	applied atomic.Uint64        // epoch of the last ring advance processed
	gate    atomic.Pointer[gate] // the running warm-up's gate, nil when none

	// ring is held for reading by Apply from its ownership check until
	// its updates are in the index, and for writing while shards are
	// retired: an update is either in a retired shard's snapshot or
	// refused, never dropped in between.
	ring sync.RWMutex

	mu      sync.Mutex // serialises advance; guards the fields below
	cur     *shardmap.Map
	base    *shardmap.Map
	cancel  context.CancelFunc // of the running warm-up
	running chan struct{}      // closed when the running warm-up returns
	retired map[h3.Cell]hoff.Retired

	// evMu serialises evictions with the application of handed-over
	// drivers. While a warm-up runs or snapshots are kept, superseded
	// records per driver the newest timestamp known to supersede older
	// copies (an eviction: the driver was claimed by another node; or a
	// position the node gave up with its shard), so an older copy is
	// neither applied from a handoff nor handed over from a snapshot. It is
	// nil when nothing is recorded.
	evMu       sync.Mutex
	superseded *hoff.Log

	peers peerConns
	wg    sync.WaitGroup // warm-ups, owned by Run

	// unchecked are drivers whose handed-over copies a cancelled warm-up
	// applied without checking them with the other nodes (reconcile); the
	// next warm-up does. Guarded by mu.
	unchecked map[string]struct{}
}

// maxUnchecked bounds the drivers unchecked records.
const maxUnchecked = 1 << 20

// keepUnchecked records ids for the next warm-up to check, within
// maxUnchecked.
func (h *handoff) keepUnchecked(ids []string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.unchecked == nil {
		h.unchecked = map[string]struct{}{}
	}
	for _, id := range ids {
		if len(h.unchecked) >= maxUnchecked {
			return
		}
		h.unchecked[id] = struct{}{}
	}
}

// takeUnchecked returns and forgets the ids keepUnchecked recorded.
func (h *handoff) takeUnchecked() []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	ids := make([]string, 0, len(h.unchecked))
	for id := range h.unchecked {
		ids = append(ids, id)
	}
	h.unchecked = nil
	return ids
}

// evict applies an eviction, recording it while a warm-up runs.
func (n *Node) evict(id string, olderThanMs int64) {
	h := &n.ho
	h.evMu.Lock()
	defer h.evMu.Unlock()
	d, had := n.ix.Get(id)
	if n.ix.Evict(id, olderThanMs) && had && n.pos != nil {
		// Its position now lives under the claiming node's shard.
		n.pos.put(posWrite{shard: uint64(d.Shard), pos: store.Position{DriverID: id}, del: true})
	}
	h.superseded.Supersede(id, olderThanMs) // nil: nothing recorded
}

// recordGivenUp records the timestamps of drivers the node stops holding
// because it gave up their shard (hoff.Log.GiveUp).
func (n *Node) recordGivenUp(snap []index.Driver) {
	h := &n.ho
	h.evMu.Lock()
	defer h.evMu.Unlock()
	h.superseded.GiveUp(snap)
}

// withhold reports whether Transfer keeps back copy d (hoff.Withhold).
func (n *Node) withhold(d index.Driver) bool {
	_, live := n.ix.Get(d.ID)
	n.ho.evMu.Lock()
	defer n.ho.evMu.Unlock()
	return hoff.Withhold(d, live, n.ho.superseded)
}

// applyHandedOver applies handed-over drivers, leaving out those evicted
// since the warm-up began and those of shards a newer ring has taken away
// again (hoff.Fence).
func (n *Node) applyHandedOver(ups []index.Update) []index.Update {
	h := &n.ho
	h.mu.Lock() // no ring advance (retire) in between
	defer h.mu.Unlock()
	h.evMu.Lock()
	defer h.evMu.Unlock()
	kept := hoff.Fence(h.cur, n.cfg.NodeID, h.superseded, ups)
	if len(kept) > 0 {
		n.ix.Apply(kept, make([]index.Result, len(kept)))
	}
	return kept
}

// peerConns are client connections to other matchers, for Transfer.
type peerConns struct {
	mu    sync.Mutex
	opts  []grpc.DialOption
	conns map[string]*grpc.ClientConn
}

func (p *peerConns) get(addr string) (matcherv1.MatcherServiceClient, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if c, ok := p.conns[addr]; ok {
		return matcherv1.NewMatcherServiceClient(c), nil
	}
	opts := p.opts
	if len(opts) == 0 {
		opts = []grpc.DialOption{grpc.WithTransportCredentials(insecure.NewCredentials())}
	}
	c, err := grpc.NewClient(addr, append(slices.Clip(opts), serve.FastReconnect())...)
	if err != nil {
		return nil, fmt.Errorf("dial matcher at %s: %w", addr, err)
	}
	if p.conns == nil {
		p.conns = map[string]*grpc.ClientConn{}
	}
	p.conns[addr] = c
	return matcherv1.NewMatcherServiceClient(c), nil
}

func (p *peerConns) close() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, c := range p.conns {
		_ = c.Close()
	}
	p.conns = nil
}

// advance processes ring changes up to the current map: it retires lost
// shards, re-homes split or merged ones and starts the warm-up of gained
// ones. Cheap when already current (one atomic load); safe to call from
// any goroutine once Run has started.
func (n *Node) advance(ctx context.Context) {
	m, _ := n.src.Current()
	if m.Epoch() <= n.ho.applied.Load() {
		return
	}
	h := &n.ho
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.cur != nil && m.Epoch() <= h.cur.Epoch() {
		return
	}
	h.cur = m
	h.ring.Lock()
	step := n.retire(m)
	h.ring.Unlock()

	// Start the warm-up; a running one is cancelled and this one waits for
	// it, then covers what it would have.
	if h.cancel != nil {
		h.cancel()
	}
	prev := h.running
	wctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), n.cfg.WarmTimeout)
	running := make(chan struct{})
	h.cancel, h.running = cancel, running
	g := &gate{step: step, done: make(chan struct{}), released: make(chan struct{})}
	h.evMu.Lock()
	if h.superseded == nil {
		h.superseded = hoff.NewLog(hoff.MaxLog)
	}
	h.evMu.Unlock()
	h.gate.Store(g)
	h.applied.Store(m.Epoch())
	h.wg.Add(2)
	go func() {
		// Not behind the previous warm-up: updates of gained shards wait
		// for this round only.
		defer h.wg.Done()
		n.collectReleases(wctx, g)
	}()
	go func() {
		defer h.wg.Done()
		defer close(running)
		defer cancel()
		if prev != nil {
			<-prev
		}
		complete := n.warm(wctx, g)
		h.mu.Lock()
		if h.gate.Load() == g {
			h.base = g.step.Next(complete)
			h.gate.Store(nil)
		}
		h.mu.Unlock()
		n.drainStandby() // copies handed over while the gate closed
		close(g.done)
	}()
	n.log.Info("ring changed", "epoch", m.Epoch())
}

// retire snapshots and drops the shards the node does not own under m, and
// re-homes the drivers of those that were split or merged and stay here. It
// returns the step's plan (hoff.Plan). Caller holds h.mu and h.ring.
func (n *Node) retire(m *shardmap.Map) hoff.Step {
	h := &n.ho
	if h.retired == nil {
		h.retired = map[h3.Cell]hoff.Retired{}
	}
	h.evMu.Lock()
	if h.superseded == nil {
		h.superseded = hoff.NewLog(hoff.MaxLog)
	}
	h.evMu.Unlock()
	var held []h3.Cell
	for _, st := range n.ix.Shards() {
		held = append(held, st.Shard)
	}
	var warming *hoff.Step // the warm-up this change cancels
	if g := h.gate.Load(); g != nil {
		warming = &g.step
	}
	step := hoff.Plan(m, n.cfg.NodeID, hoff.Records{Base: h.base, Held: held, Retired: h.retired, Warming: warming})
	var rehome []index.Update
	dropped, drivers := 0, 0
	for _, cell := range step.Lose {
		snap := n.ix.ShardDrivers(cell)
		drivers += n.ix.DropShard(cell)
		n.loads.drop(cell)
		dropped++
		rehome = append(rehome, step.Rehome(cell, snap)...) // split or merged: some may stay here
		h.retired[cell] = step.Retire(cell, snap, h.retired, time.Now(), n.cfg.HandoffGrace)
		n.recordGivenUp(snap)
	}
	n.loads.retain(func(c h3.Cell) bool { return n.owns(m, c) })
	if len(rehome) > 0 {
		n.ix.Apply(rehome, make([]index.Result, len(rehome)))
	}
	n.count.shardsLost.Add(uint64(dropped))
	if dropped > 0 {
		n.log.Info("gave up shards", "epoch", m.Epoch(), "shards", dropped, "drivers", drivers, "rehomed", len(rehome))
	}
	return step
}

// warm fills the shards g gains and reports whether every source answered.
func (n *Node) warm(ctx context.Context, g *gate) bool {
	start := time.Now()
	target := g.step.Target
	peers := map[string]shardmap.Member{}
	for _, mem := range g.step.Peers() {
		peers[mem.ID] = mem
	}
	type result struct {
		id  string
		ids []string // drivers applied from its handoff
		err error
	}
	results := make(chan result, len(peers))
	var covered sync.Map // shards some old owner handed over
	for _, mem := range peers {
		go func() {
			// A peer that refuses the connection is gone (its shards warm
			// from the store); one that is slow or broke off mid-stream
			// is asked again while the warm-up has time.
			var ids []string
			var err error
			for attempt := 0; attempt < 3; attempt++ {
				var got []string
				got, err = n.pull(ctx, mem, &g.step, &covered)
				ids = append(ids, got...)
				if err == nil || ctx.Err() != nil || status.Code(err) == codes.Unavailable {
					break
				}
			}
			results <- result{mem.ID, ids, err}
		}()
	}
	answered := map[string]bool{}
	var recheck []string // everything handed over: a copy may have gone stale on its way
	complete := true
	for range peers {
		r := <-results
		recheck = append(recheck, r.ids...)
		if r.err != nil {
			n.log.Info("handoff: node did not answer, its shards warm from the store", "from", r.id, "err", r.err)
			continue
		}
		answered[r.id] = true
	}
	pulled := len(recheck)
	// The node's own snapshots of what it gains: no other node may have
	// taken them over completely.
	reclaimed := n.reclaim(g)
	pulled += len(reclaimed)
	// Updates the routers acknowledged from a lost owner, handed here
	// before the change (standby.go): newer than the store's copies.
	reclaimed = append(reclaimed, n.takeStandby(g)...)
	fromStore, err := n.warmFromStore(ctx, g, &covered)
	if err != nil {
		n.log.Warn("handoff: warm-up from the store", "err", err)
		complete = false
	}
	// Every copy applied here is checked with the nodes that answered: a
	// node that received a newer update of the driver before this one
	// applied its copy holds it and says so; one that receives it later
	// claims it and evicts this copy. So are the copies that cancelled
	// warm-ups applied and could not check.
	stale := 0
	recheck = append(append(recheck, reclaimed...), fromStore...)
	recheck = append(recheck, n.ho.takeUnchecked()...)
	if len(recheck) > 0 && ctx.Err() == nil {
		var live []shardmap.Member
		for id := range answered {
			live = append(live, peers[id])
		}
		stale = n.reconcile(ctx, live, recheck)
	}
	if ctx.Err() != nil {
		// Cancelled by a newer ring change (or out of time): the next
		// warm-up checks the copies, with the nodes that answer it.
		n.ho.keepUnchecked(recheck)
		complete = false
	}
	n.count.warmups.Add(1)
	n.count.warmNanos.Store(uint64(time.Since(start)))
	n.count.transferred.Add(uint64(pulled))
	n.count.fromStore.Add(uint64(len(fromStore)))
	n.log.Info("handoff: shards warm", "epoch", target.Epoch(), "transferred", pulled, "from_store", len(fromStore), "stale_dropped", stale,
		"took", time.Since(start).Round(time.Millisecond), "complete", complete)
	return complete
}

// pull asks mem for the drivers it holds that st's target gives to this
// node and applies them.
func (n *Node) pull(ctx context.Context, mem shardmap.Member, st *hoff.Step, covered *sync.Map) ([]string, error) {
	c, err := n.ho.peers.get(mem.Addr)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(ctx, n.cfg.TransferTimeout)
	defer cancel()
	hr := st.Request()
	stream, err := c.Transfer(ctx, &matcherv1.TransferRequest{Epoch: st.Target.Epoch(), NodeId: hr.To, SinceEpoch: hr.Since})
	if err != nil {
		return nil, fmt.Errorf("transfer from %s: %w", mem.ID, err)
	}
	var applied []string
	for {
		chunk, err := stream.Recv()
		if errors.Is(err, io.EOF) {
			return applied, nil
		}
		if err != nil {
			return applied, fmt.Errorf("transfer from %s: %w", mem.ID, err)
		}
		for _, c := range chunk.GetCovered() {
			covered.Store(h3.Cell(c), true)
		}
		ups := make([]index.Update, 0, len(chunk.GetDrivers()))
		for _, u := range chunk.GetDrivers() {
			p := geo.LatLng{Lat: u.GetLat(), Lng: u.GetLng()}
			if p.Validate() != nil || u.GetDriverId() == "" || len(u.GetDriverId()) > MaxIDBytes || u.GetTimestampMs() <= 0 {
				continue
			}
			s, ok := st.Place(p)
			if !ok {
				continue
			}
			ups = append(ups, index.Update{ID: u.GetDriverId(), Pos: p, TimestampMs: u.GetTimestampMs(),
				Status: index.Status(u.GetStatus()), VehicleClass: u.GetVehicleClass(), Shard: s, HandedOver: true, OnStream: u.GetOnStream()})
		}
		for _, u := range n.applyHandedOver(ups) {
			applied = append(applied, u.ID)
		}
	}
}

// releaseWait bounds how long an update batch waits for the release round
// of the shards it touches; past it, the batch is applied anyway (and
// counted). It is about an ownership lease's length: a member that has not
// answered by then has stopped serving by its own lease.
const releaseWait = 2 * time.Second

// departedWait bounds the release call to a node of the base ring that is
// not a member of the target ring: it left (then it gave its shards up
// already) or its health check lapsed (then its ownership lease stops it
// serving, and it may well be cut off: a call to it could hang).
const departedWait = 250 * time.Millisecond

// collectReleases asks every other member of g's base and target rings to
// move to the target epoch and give up the shards it does not own there
// (Ring with advance_to), concurrently, and closes g.released when each has
// answered, failed or timed out, or when ctx ends (a newer ring change
// starts its own round).
func (n *Node) collectReleases(ctx context.Context, g *gate) {
	defer close(g.released)
	start := time.Now()
	target := g.step.Target.Epoch()
	var wg sync.WaitGroup
	for _, mem := range g.step.Peers() {
		wait := releaseWait
		if _, ok := g.step.Target.Member(mem.ID); !ok {
			wait = departedWait
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			c, err := n.ho.peers.get(mem.Addr)
			if err != nil {
				return
			}
			rctx, cancel := context.WithTimeout(ctx, wait)
			defer cancel()
			resp, err := c.Ring(rctx, &matcherv1.RingRequest{KnownEpoch: target, AdvanceTo: target})
			switch {
			case err != nil:
				n.log.Info("handoff: node did not confirm the new epoch (unreachable: its lease stops it serving)", "node", mem.ID, "epoch", target, "err", err)
			case resp.GetEpoch() < target:
				n.log.Info("handoff: node could not reach the new epoch (its lease stops it serving)", "node", mem.ID, "epoch", target, "node_epoch", resp.GetEpoch())
			}
		}()
	}
	wg.Wait()
	n.count.releaseNanos.Store(uint64(time.Since(start)))
}

// awaitReleases holds a batch with updates in shards the running warm-up
// gains until the other members have released them (collectReleases), for
// at most releaseWait in all, or until ctx ends. It is a no-op (one atomic
// load) when no release round runs.
func (n *Node) awaitReleases(ctx context.Context, b *Batch) {
	var timer *time.Timer
	for {
		g := n.ho.gate.Load()
		if g == nil || g.isReleased() || !g.gainsAny(b) {
			if timer != nil {
				n.count.releaseWaits.Add(1) // held, then released
			}
			return
		}
		if timer == nil {
			timer = time.NewTimer(releaseWait)
			defer timer.Stop()
		}
		select {
		case <-g.released:
			n.advance(ctx) // the ring may have moved meanwhile: a newer round
		case <-ctx.Done():
			return
		case <-timer.C:
			n.count.releaseTimeouts.Add(1)
			n.log.Warn("handoff: updates of gained shards applied before every old owner confirmed the new epoch", "epoch", g.step.Target.Epoch(), "waited", releaseWait)
			return
		}
	}
}

// reclaim applies the node's own snapshots of drivers in the shards g
// gains, and returns the ids applied (to be checked with the other nodes: a
// copy may have gone stale meanwhile). Every snapshot still kept counts, not
// only those taken after the last warm ring: the node that took a shard
// over may not have finished fetching it (its warm-up cancelled by the ring
// change that gives the shard back), and then this snapshot is the only
// copy. Pulls from that node, applied by timestamp, bring what is newer.
func (n *Node) reclaim(g *gate) []string {
	n.ho.mu.Lock()
	retired := maps.Clone(n.ho.retired)
	n.ho.mu.Unlock()
	oldest := time.Now().Add(-n.ix.Config().TTL).UnixMilli()
	kept := n.applyHandedOver(g.step.Reclaim(retired, oldest))
	ids := make([]string, 0, len(kept))
	for _, u := range kept {
		ids = append(ids, u.ID)
	}
	return ids
}

// maxStoreShards bounds the shard list a warm-up reads from the store.
const maxStoreShards = 1 << 20

// warmFromStore applies the stored positions of gained shards that no old
// owner handed over whole (hoff.Step.StoreShards): the shards of dead
// nodes (of every node, when the whole cluster restarts), and those of old
// owners that had not finished warming them.
func (n *Node) warmFromStore(ctx context.Context, g *gate, covered *sync.Map) ([]string, error) {
	if n.cfg.Store == nil {
		return nil, nil
	}
	stored, err := n.cfg.Store.PositionShards(ctx, maxStoreShards)
	if err != nil {
		return nil, err
	}
	cells := make([]h3.Cell, len(stored))
	for i, s := range stored {
		cells[i] = h3.Cell(s)
	}
	handed := map[h3.Cell]bool{} // handed over whole by an old owner
	covered.Range(func(k, _ any) bool { handed[k.(h3.Cell)] = true; return true })
	oldest := time.Now().Add(-n.ix.Config().TTL).UnixMilli()
	var applied []string
	for _, cell := range g.step.StoreShards(cells, handed) {
		ps, err := n.cfg.Store.Positions(ctx, uint64(cell))
		if err != nil {
			return applied, err
		}
		ups := make([]index.Update, 0, len(ps))
		for _, p := range ps {
			pos := geo.LatLng{Lat: p.Lat, Lng: p.Lng}
			if pos.Validate() != nil || p.DriverID == "" || len(p.DriverID) > MaxIDBytes {
				continue
			}
			st := index.Status(p.Status)
			if p.Status < 0 || p.Status > int32(geomatchv1.DriverStatus_DRIVER_STATUS_OFFLINE) {
				st = index.StatusUnspecified
			}
			ups = append(ups, index.Update{ID: p.DriverID, Pos: pos, TimestampMs: p.TimestampMs, Status: st, VehicleClass: p.VehicleClass})
		}
		for _, u := range n.applyHandedOver(g.step.FromStore(cell, ups, oldest)) {
			applied = append(applied, u.ID)
		}
	}
	return applied, nil
}

// maxHoldingIDs bounds one Holding call: with ids of the largest size the
// answer stays under gRPC's default 4 MiB receive limit of the asking node.
const maxHoldingIDs = 20_000

// Holding reports which of ids the node holds, with their timestamps.
func (n *Node) Holding(ids []string) ([]Held, error) {
	if len(ids) > maxHoldingIDs {
		return nil, fmt.Errorf("driver_ids: %d listed, at most %d: %w", len(ids), maxHoldingIDs, errInvalid)
	}
	var out []Held
	for _, id := range ids {
		if d, ok := n.ix.Get(id); ok {
			out = append(out, Held{DriverID: id, TimestampMs: d.TimestampMs})
		}
	}
	return out, nil
}

// reconcile asks the peers that answered whether they hold any of the
// drivers just handed over or warmed from the store, and drops the local
// copies another node holds newer: a snapshot may predate the driver's move
// to another node (the eviction is still on its way), and store positions
// are written behind, so a driver that left a dead node's shard just before
// it died may still be listed there. A copy as new as another node's is
// kept: it is the same position, and the driver's next update, a claim
// since the copy is handed over, evicts the other. It returns how many
// copies were dropped.
func (n *Node) reconcile(ctx context.Context, peers []shardmap.Member, ids []string) int {
	dropped := 0
	for lo := 0; lo < len(ids); lo += maxHoldingIDs {
		chunk := ids[lo:min(lo+maxHoldingIDs, len(ids))]
		for _, mem := range peers {
			c, err := n.ho.peers.get(mem.Addr)
			if err != nil {
				continue
			}
			rctx, cancel := context.WithTimeout(ctx, n.cfg.TransferTimeout)
			resp, err := c.Holding(rctx, &matcherv1.HoldingRequest{DriverIds: chunk})
			cancel()
			if err != nil {
				n.log.Info("handoff: reconcile with a node failed", "node", mem.ID, "err", err)
				continue
			}
			for _, h := range resp.GetHeld() {
				if n.ix.Evict(h.GetDriverId(), h.GetTimestampMs()) {
					dropped++
				}
			}
		}
	}
	return dropped
}

// waitWarm waits until none of shards is being warmed, or ctx is done.
func (n *Node) waitWarm(ctx context.Context, shards []h3.Cell) error {
	n.advance(ctx)
	for {
		g := n.ho.gate.Load()
		if g == nil {
			return nil
		}
		cold := false
		for _, s := range shards {
			if g.covers(s) {
				cold = true
				break
			}
		}
		if !cold {
			return nil
		}
		select {
		case <-g.done:
		case <-ctx.Done():
			return fmt.Errorf("waiting for the handoff of shards to this node: %w", ctx.Err())
		}
	}
}

// release moves the node to epoch when it is behind (reading the ring
// from its source) and processes the change: the shards it lost there are
// given up before it returns, so it answers no search for them at an older
// epoch. A new owner calls it (Ring with advance_to) on the other members
// before it acknowledges updates of the shards it gained.
func (n *Node) release(ctx context.Context, epoch uint64) {
	n.view(ctx, epoch)
	n.advance(ctx)
}

// transferChunk is how many drivers one TransferChunk carries.
const transferChunk = 2000

// Transfer streams to req.To the drivers it owns under the ring at
// req.Epoch (or newer) that this node holds in the snapshots of shards it
// gave up after req.SinceEpoch (only of req.Shards when listed), in chunks
// of at most transferChunk drivers; the last chunk lists the shards the
// snapshots covered. A driver the node holds live again (it came back into
// one of the node's shards) is not sent; of several copies the newest is.
func (n *Node) Transfer(ctx context.Context, req TransferRequest, send func(TransferChunk) error) error {
	if req.To == "" || len(req.To) > shardmap.MaxMemberIDLen {
		return fmt.Errorf("node_id: must be 1..%d bytes: %w", shardmap.MaxMemberIDLen, errInvalid)
	}
	if len(req.Shards) > MaxShardsPerQuery {
		return fmt.Errorf("shards: %d listed, at most %d: %w", len(req.Shards), MaxShardsPerQuery, errInvalid)
	}
	m, behind := n.view(ctx, req.Epoch)
	if behind {
		return &shardmap.NotOwnerError{NodeID: n.cfg.NodeID, Epoch: m.Epoch()}
	}
	n.advance(ctx)
	to := req.To
	hr := hoff.Request{To: to, Since: req.SinceEpoch, Shards: req.Shards}
	n.ho.mu.Lock()
	ho := hoff.Serve(m, hr, n.ho.retired)
	for _, cell := range ho.Served {
		r := n.ho.retired[cell]
		r.Served = true
		n.ho.retired[cell] = r
	}
	n.ho.mu.Unlock()
	var chunk TransferChunk
	sent := 0
	flush := func() error {
		if len(chunk.Drivers) == 0 && len(chunk.Covered) == 0 {
			return nil
		}
		sent += len(chunk.Drivers)
		err := send(chunk)
		chunk = TransferChunk{}
		return err
	}
	for _, d := range ho.Drivers() {
		if n.withhold(d) {
			continue
		}
		chunk.Drivers = append(chunk.Drivers, d)
		if len(chunk.Drivers) >= transferChunk {
			if err := flush(); err != nil {
				return err
			}
		}
	}
	chunk.Covered = ho.Covered
	if err := flush(); err != nil {
		return err
	}
	n.count.handedOver.Add(uint64(sent))
	level := slog.LevelInfo
	if sent == 0 {
		level = slog.LevelDebug // an empty start hands over nothing: no news
	}
	n.log.Log(ctx, level, "handoff: drivers handed over", "to", to, "epoch", m.Epoch(), "drivers", sent)
	return nil
}

// expireRetired forgets snapshots past their grace.
func (n *Node) expireRetired(now time.Time) {
	n.ho.mu.Lock()
	defer n.ho.mu.Unlock()
	forget, dropLog := hoff.Expire(n.ho.retired, now, n.ho.gate.Load() != nil)
	for _, c := range forget {
		delete(n.ho.retired, c)
	}
	if dropLog {
		n.ho.evMu.Lock()
		n.ho.superseded = nil // nothing left that an eviction could make stale
		n.ho.evMu.Unlock()
	}
}

// Drain waits until the node holds no shard and every snapshot of a shard
// it gave up was handed over (or has expired), or until ctx is done: the
// last step of a graceful shutdown, once the node has left the ring.
func (n *Node) Drain(ctx context.Context) error {
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for {
		n.advance(ctx)
		n.ho.mu.Lock()
		pending := hoff.Pending(n.ho.retired)
		n.ho.mu.Unlock()
		if held := len(n.ix.Shards()); held == 0 && pending == 0 {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("drain of matcher %s: %d shards held, %d not handed over: %w",
				n.cfg.NodeID, len(n.ix.Shards()), pending, ctx.Err())
		case <-tick.C:
		}
	}
}

// storePosition is the store's record of an applied update.
func storePosition(u *index.Update) store.Position {
	return store.Position{DriverID: u.ID, Lat: u.Pos.Lat, Lng: u.Pos.Lng, TimestampMs: u.TimestampMs,
		Status: int32(u.Status), VehicleClass: u.VehicleClass}
}

package handoff_test

import (
	"fmt"
	"maps"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/uber/h3-go/v4"

	"github.com/geomatch/geomatch/internal/geo"
	"github.com/geomatch/geomatch/matcher/handoff"
	"github.com/geomatch/geomatch/matcher/index"
	"github.com/geomatch/geomatch/shardmap"
)

// This file is a cluster of matcher nodes that run the package's decisions
// the way package matcher does, over an in-memory network: the property
// test, the fuzz target and the scenario table drive it. Each node has a
// real index (on the simulation's clock) and the hand-over records of
// matcher's handoff.go (base, current ring, snapshots, log, warm-ups); what
// matcher does with goroutines and gRPC is done here by events the test
// schedules: a ring change, a node noticing it, a location update routed to
// the owner, an eviction arriving, one stage of a warm-up, time passing.
//
// A warm-up runs in stages, as matcher's warm does: one pull (Transfer) per
// peer, then the reclaim of the node's own snapshots, the store, the
// reconciliation with the peers that answered (Holding), the end. A ring
// change cancels the running warm-up: its pulls not yet made fail, its
// reclaim still runs (matcher's does not check the context), its store read
// and reconciliation fail. A warm-up starts when the one before it ended.

// Simulation parameters: matcher's defaults.
const (
	simTTL   = 30 * time.Second
	simGrace = 15 * time.Second
)

// cluster is the simulated cluster.
type cluster struct {
	now   time.Time
	ring  *shardmap.Map                       // the latest ring
	doc   shardmap.Doc                        // its document
	nodes map[string]*simNode                 // every node process, by id (nodes that left keep running)
	store map[h3.Cell]map[string]index.Driver // positions written behind (synchronously here)
	// evictions in flight, in the order the router queued them.
	evictions []eviction
	// newest is the model: each driver's newest update applied anywhere.
	newest map[string]index.Driver
	// noStore runs the nodes without a store (Config.Store nil).
	noStore bool
	trace   []string
}

// eviction is one eviction on its way from a router to a node.
type eviction struct {
	to, id string
	ts     int64
}

// simNode is one matcher node.
type simNode struct {
	c       *cluster
	id      string
	ix      *index.Index
	src     *shardmap.Map // the ring its membership source has delivered
	cur     *shardmap.Map // the ring its hand-over has processed
	base    *shardmap.Map
	retired map[h3.Cell]handoff.Retired
	log     *handoff.Log
	gate    *warmup   // the latest warm-up, until it ends
	warms   []*warmup // the running warm-up first, then those waiting for it
	// unchecked are copies applied by cancelled warm-ups, which did not
	// reconcile them: the next warm-up does.
	unchecked []string
}

// warmup is one warm-up of a node.
type warmup struct {
	step      handoff.Step
	cancelled bool
	peers     []shardmap.Member
	asked     int // peers pulled from so far
	answered  map[string]bool
	covered   map[h3.Cell]bool
	applied   []string // ids applied from hand-overs, to reconcile
	stage     int
	failed    bool // the store read failed
}

// Warm-up stages after the pulls.
const (
	stagePull = iota
	stageReclaim
	stageStore
	stageReconcile
	stageEnd
)

// newCluster starts nodes ids on the ring with those members.
func newCluster(t testing.TB, ids ...string) *cluster {
	c := &cluster{now: t0, nodes: map[string]*simNode{}, store: map[h3.Cell]map[string]index.Driver{},
		newest: map[string]index.Driver{}}
	d := shardmap.Doc{Epoch: 1, ShardRes: shardRes, MaxSplitDepth: fineRes - shardRes, VNodes: 8}
	for _, id := range ids {
		d.Members = append(d.Members, shardmap.Member{ID: id, Addr: id})
	}
	if err := c.setDoc(d); err != nil {
		t.Fatal(err)
	}
	for _, id := range ids {
		c.start(t, id)
	}
	return c
}

func (c *cluster) tracef(format string, args ...any) {
	c.trace = append(c.trace, fmt.Sprintf("%6dms ", c.now.Sub(t0).Milliseconds())+fmt.Sprintf(format, args...))
}

// dump returns the last lines of the trace.
func (c *cluster) dump(lines int) string {
	from := max(0, len(c.trace)-lines)
	return strings.Join(c.trace[from:], "\n")
}

// setDoc makes d (with the next epoch) the latest ring.
func (c *cluster) setDoc(d shardmap.Doc) error {
	if c.ring != nil {
		d.Epoch = c.ring.Epoch() + 1
	}
	m, err := shardmap.NewMap(d)
	if err != nil {
		return err
	}
	c.ring, c.doc = m, m.Doc()
	return nil
}

// start starts a node process: empty, at the latest ring.
func (c *cluster) start(t testing.TB, id string) *simNode {
	cfg := index.DefaultConfig()
	cfg.TTL = simTTL
	cfg.Now = func() time.Time { return c.now }
	ix, err := index.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	n := &simNode{c: c, id: id, ix: ix, src: c.ring, retired: map[h3.Cell]handoff.Retired{}}
	c.nodes[id] = n
	n.advance()
	return n
}

// sortedNodes returns the node processes by id.
func (c *cluster) sortedNodes() []*simNode {
	out := make([]*simNode, 0, len(c.nodes))
	for _, id := range slices.Sorted(maps.Keys(c.nodes)) {
		out = append(out, c.nodes[id])
	}
	return out
}

// advance is matcher's advance: process the ring the source delivered.
func (n *simNode) advance() {
	m := n.src
	if n.cur != nil && m.Epoch() <= n.cur.Epoch() {
		return
	}
	n.cur = m
	if n.log == nil {
		n.log = handoff.NewLog(handoff.MaxLog)
	}
	var held []h3.Cell
	for _, st := range n.ix.Shards() {
		held = append(held, st.Shard)
	}
	var warming *handoff.Step
	if n.gate != nil {
		warming = &n.gate.step
	}
	st := handoff.Plan(m, n.id, handoff.Records{Base: n.base, Held: held, Retired: n.retired, Warming: warming})
	var rehome []index.Update
	for _, cell := range st.Lose {
		snap := n.ix.ShardDrivers(cell)
		n.ix.DropShard(cell)
		rehome = append(rehome, st.Rehome(cell, snap)...)
		n.retired[cell] = st.Retire(cell, snap, n.retired, n.c.now, simGrace)
		n.log.GiveUp(snap)
	}
	n.apply(rehome)
	if len(n.warms) > 0 {
		n.warms[len(n.warms)-1].cancelled = true
	}
	w := &warmup{step: st, peers: st.Peers(), answered: map[string]bool{}, covered: map[h3.Cell]bool{}}
	n.warms = append(n.warms, w)
	n.gate = w
	n.c.tracef("%s advances to %d: loses %v, base %d", n.id, m.Epoch(), st.Lose, epochOf(n.base))
}

func epochOf(m *shardmap.Map) uint64 {
	if m == nil {
		return 0
	}
	return m.Epoch()
}

// notice delivers the latest ring to n.
func (n *simNode) notice() {
	n.src = n.c.ring
	n.advance()
}

// view is matcher's view for a caller at epoch: a refresh if behind.
func (n *simNode) view(epoch uint64) {
	if epoch > n.src.Epoch() {
		n.src = n.c.ring
	}
	n.advance()
}

func (n *simNode) apply(ups []index.Update) []index.Result {
	res := make([]index.Result, len(ups))
	if len(ups) > 0 {
		n.ix.Apply(ups, res)
	}
	return res
}

// applyHandedOver is matcher's: Fence, then apply.
func (n *simNode) applyHandedOver(ups []index.Update) []string {
	kept := handoff.Fence(n.cur, n.id, n.log, ups)
	n.apply(kept)
	return ids(kept)
}

// update is a driver's location update, routed by a router at the latest
// ring to the owner of its shard. It reports false when nobody owns it.
func (c *cluster) update(id string, pos geo.LatLng, ts int64) bool { return c.send(id, pos, ts, true) }

// send applies a location update at the owner of its shard, and, when it
// claims the driver and evict is set, queues evictions to the other
// members as the router does (unset: an update applied at the matcher
// directly, which tells no other node).
func (c *cluster) send(id string, pos geo.LatLng, ts int64, evict bool) bool {
	_, shard, owner, ok := c.ring.Locate(pos)
	if !ok {
		return false
	}
	n := c.nodes[owner.ID]
	n.view(c.ring.Epoch())
	if !handoff.Owns(n.cur, n.id, shard) {
		panic(fmt.Sprintf("%s does not own %v at %d after a refresh", n.id, shard, n.cur.Epoch()))
	}
	u := index.Update{ID: id, Pos: pos, TimestampMs: ts, Shard: shard, VehicleClass: "car"}
	r := n.apply([]index.Update{u})[0]
	if r.Outcome != index.OutcomeApplied {
		panic(fmt.Sprintf("update of %s at %d on %s: %v", id, ts, n.id, r.Outcome))
	}
	c.newest[id] = index.Driver{ID: id, Pos: pos, TimestampMs: ts, Shard: shard}
	c.save(shard, u)
	if r.MovedFrom != 0 {
		c.forget(r.MovedFrom, id)
	}
	c.tracef("update %s at %d to %s in %v (claimed %v)", id, ts, n.id, shard, r.Claimed)
	if r.Claimed && evict {
		for _, m := range c.ring.Members() {
			if m.ID != n.id {
				c.evictions = append(c.evictions, eviction{to: m.ID, id: id, ts: ts})
			}
		}
	}
	return true
}

func (c *cluster) save(shard h3.Cell, u index.Update) {
	if c.store[shard] == nil {
		c.store[shard] = map[string]index.Driver{}
	}
	if cur, ok := c.store[shard][u.ID]; !ok || cur.TimestampMs <= u.TimestampMs {
		c.store[shard][u.ID] = index.Driver{ID: u.ID, Pos: u.Pos, TimestampMs: u.TimestampMs}
	}
}

func (c *cluster) forget(shard h3.Cell, id string) {
	delete(c.store[shard], id)
	if len(c.store[shard]) == 0 {
		delete(c.store, shard)
	}
}

// inFlight reports whether an eviction of driver id is on its way.
func (c *cluster) inFlight(id string) bool {
	return slices.ContainsFunc(c.evictions, func(e eviction) bool { return e.id == id })
}

// deliver delivers the i-th eviction in flight: matcher's evict.
func (c *cluster) deliver(i int) {
	e := c.evictions[i]
	c.evictions = slices.Delete(c.evictions, i, i+1)
	n := c.nodes[e.to]
	d, had := n.ix.Get(e.id)
	if n.ix.Evict(e.id, e.ts) && had {
		c.forget(d.Shard, e.id)
	}
	n.log.Supersede(e.id, e.ts)
	c.tracef("eviction of %s older than %d reaches %s (held %v at %d)", e.id, e.ts, e.to, had, d.TimestampMs)
}

// transfer is matcher's Transfer on n for the warm-up of step st.
func (n *simNode) transfer(st *handoff.Step) (drivers []index.Driver, covered []h3.Cell) {
	n.view(st.Target.Epoch())
	h := handoff.Serve(n.cur, st.Request(), n.retired)
	for _, cell := range h.Served {
		r := n.retired[cell]
		r.Served = true
		n.retired[cell] = r
	}
	for _, d := range h.Drivers() {
		_, live := n.ix.Get(d.ID)
		if !handoff.Withhold(d, live, n.log) {
			drivers = append(drivers, d)
		}
	}
	return drivers, h.Covered
}

// warming reports whether n has a warm-up running or waiting.
func (n *simNode) warming() bool { return len(n.warms) > 0 }

// warmStep runs the next stage of n's running warm-up; pick chooses the
// peer to pull from next.
func (n *simNode) warmStep(pick func(int) int) {
	w := n.warms[0]
	c := n.c
	oldest := c.now.Add(-simTTL).UnixMilli()
	switch w.stage {
	case stagePull:
		if w.asked == len(w.peers) {
			w.stage = stageReclaim
			n.warmStep(pick)
			return
		}
		// The pulls run concurrently: any peer not asked yet may be next.
		i := w.asked + pick(len(w.peers)-w.asked)
		w.peers[w.asked], w.peers[i] = w.peers[i], w.peers[w.asked]
		peer := w.peers[w.asked]
		w.asked++
		p := c.nodes[peer.ID]
		if w.cancelled || p == nil {
			c.tracef("%s warm-up to %d: no answer from %s", n.id, w.step.Target.Epoch(), peer.ID)
			return
		}
		drivers, covered := p.transfer(&w.step)
		for _, cell := range covered {
			w.covered[cell] = true
		}
		var ups []index.Update
		for _, d := range drivers {
			if s, ok := w.step.Place(d.Pos); ok {
				ups = append(ups, index.Update{ID: d.ID, Pos: d.Pos, TimestampMs: d.TimestampMs, Status: d.Status,
					VehicleClass: d.VehicleClass, Shard: s, HandedOver: true})
			}
		}
		applied := n.applyHandedOver(ups)
		w.applied = append(w.applied, applied...)
		w.answered[peer.ID] = true
		c.tracef("%s warm-up to %d: %s hands over %v (covered %v), applied %v", n.id, w.step.Target.Epoch(), peer.ID,
			driverIDs(drivers), covered, applied)
	case stageReclaim:
		applied := n.applyHandedOver(w.step.Reclaim(maps.Clone(n.retired), oldest))
		w.applied = append(w.applied, applied...)
		w.stage = stageStore
		c.tracef("%s warm-up to %d: reclaims %v", n.id, w.step.Target.Epoch(), applied)
	case stageStore:
		w.stage = stageReconcile
		if w.cancelled {
			w.failed = true
			return
		}
		if c.noStore {
			return
		}
		stored := slices.Sorted(maps.Keys(c.store))
		for _, cell := range w.step.StoreShards(stored, w.covered) {
			var ups []index.Update
			for _, id := range slices.Sorted(maps.Keys(c.store[cell])) {
				p := c.store[cell][id]
				ups = append(ups, index.Update{ID: id, Pos: p.Pos, TimestampMs: p.TimestampMs})
			}
			applied := n.applyHandedOver(w.step.FromStore(cell, ups, oldest))
			w.applied = append(w.applied, applied...)
			c.tracef("%s warm-up to %d: store %v gives %v", n.id, w.step.Target.Epoch(), cell, applied)
		}
	case stageReconcile:
		w.stage = stageEnd
		w.applied = append(w.applied, n.unchecked...)
		n.unchecked = nil
		if w.cancelled {
			n.unchecked = w.applied
			return
		}
		for _, id := range slices.Sorted(maps.Keys(w.answered)) {
			p := c.nodes[id]
			for _, d := range w.applied {
				if h, ok := p.ix.Get(d); ok && n.ix.Evict(d, h.TimestampMs) {
					c.tracef("%s reconciles %s: %s holds it at %d", n.id, d, id, h.TimestampMs)
				}
			}
		}
	case stageEnd:
		complete := !w.cancelled && !w.failed && len(w.answered) == len(w.peers)
		if n.gate == w {
			n.base = w.step.Next(complete)
			n.gate = nil
		}
		n.warms = n.warms[1:]
		c.tracef("%s warm-up to %d ends (complete %v), base %d", n.id, w.step.Target.Epoch(), complete, epochOf(n.base))
	}
}

// tick is matcher's periodic work at the simulation's clock: expiry of
// silent drivers and of snapshots past their grace.
func (n *simNode) tick() {
	n.ix.Expire()
	forget, dropLog := handoff.Expire(n.retired, n.c.now, n.gate != nil)
	for _, cell := range forget {
		delete(n.retired, cell)
	}
	if dropLog {
		n.log = nil
	}
}

// settle brings the cluster to rest: every node at the latest ring, every
// eviction delivered, every warm-up ended. pick orders what is concurrent.
func (c *cluster) settle(pick func(int) int) {
	for {
		busy := false
		for _, n := range c.sortedNodes() {
			if n.src != c.ring {
				n.notice()
				busy = true
			}
		}
		for len(c.evictions) > 0 {
			c.deliver(pick(len(c.evictions)))
			busy = true
		}
		var warm []*simNode
		for _, n := range c.sortedNodes() {
			if n.warming() {
				warm = append(warm, n)
			}
		}
		if len(warm) > 0 {
			warm[pick(len(warm))].warmStep(pick)
			busy = true
		}
		if !busy {
			return
		}
	}
}

// check verifies the invariants of a cluster at rest: every node at the
// latest ring and fully warm, holding drivers only in shards it owns, and
// every live driver held by its owner at its newest position. A driver may
// be held by another node too, at an older position, as long as that copy
// is one handed over (not confirmed by an update of the driver's): the
// driver's next update claims the newest copy and evicts it. Strict checks
// that no such copy is left: every driver held by one node, at its newest
// position. It returns the violations.
func (c *cluster) check(strict bool) []string {
	var bad []string
	layout := c.ring.Layout()
	holders := map[string][]string{}
	newestAt := map[string]string{}
	for _, n := range c.sortedNodes() {
		if n.cur != c.ring || n.warming() || n.gate != nil {
			bad = append(bad, fmt.Sprintf("%s not at rest: at %d, warming %v", n.id, epochOf(n.cur), n.warming()))
		}
		if n.base != c.ring {
			bad = append(bad, fmt.Sprintf("%s: base %d after a complete warm-up to %d", n.id, epochOf(n.base), c.ring.Epoch()))
		}
		for _, st := range n.ix.Shards() {
			if !handoff.Owns(c.ring, n.id, st.Shard) {
				bad = append(bad, fmt.Sprintf("%s holds %d drivers in %v, which it does not own", n.id, st.Drivers, st.Shard))
			}
			for _, d := range n.ix.ShardDrivers(st.Shard) {
				holders[d.ID] = append(holders[d.ID], n.id)
				if s := layout.ShardOf(d.Pos); s != st.Shard {
					bad = append(bad, fmt.Sprintf("%s holds %s under %v, its shard is %v", n.id, d.ID, st.Shard, s))
				}
				switch want := c.newest[d.ID]; {
				case d.TimestampMs == want.TimestampMs:
					newestAt[d.ID] = n.id
				case (strict && c.isLive(want)) || !d.HandedOver || d.TimestampMs > want.TimestampMs:
					bad = append(bad, fmt.Sprintf("%s holds %s at %d (handed over %v), its newest position is at %d",
						n.id, d.ID, d.TimestampMs, d.HandedOver, want.TimestampMs))
				}
			}
		}
	}
	for _, id := range slices.Sorted(maps.Keys(c.newest)) {
		d := c.newest[id]
		if !c.isLive(d) {
			continue // expired, or about to
		}
		if strict && len(holders[id]) > 1 {
			bad = append(bad, fmt.Sprintf("%s held by %v", id, holders[id]))
		}
		if _, _, owner, _ := c.ring.Locate(d.Pos); newestAt[id] != owner.ID {
			bad = append(bad, fmt.Sprintf("live driver %s (at %d in %v): its owner %s does not hold it (held by %v)", id,
				d.TimestampMs, layout.ShardOf(d.Pos), owner.ID, holders[id]))
		}
	}
	return bad
}

// isLive reports whether newest, a driver's newest position, is younger
// than the TTL (by a second: the edge is left alone).
func (c *cluster) isLive(newest index.Driver) bool {
	return c.now.Sub(time.UnixMilli(newest.TimestampMs)) < simTTL-time.Second
}

// live returns the live drivers, sorted.
func (c *cluster) live() []string {
	var out []string
	for _, id := range slices.Sorted(maps.Keys(c.newest)) {
		if c.isLive(c.newest[id]) {
			out = append(out, id)
		}
	}
	return out
}

package handoff_test

import (
	"flag"
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"github.com/uber/h3-go/v4"

	"github.com/geomatch/geomatch/shardmap"
)

// chooser picks an int in [0, n): from math/rand in the property test, from
// the fuzzer's bytes in FuzzHandoff.
type chooser func(n int) int

// gen drives a cluster with random events.
type gen struct {
	c       *cluster
	t       testing.TB
	pick    chooser
	pool    []string // member ids that may join
	drivers []string
	fine    []h3.Cell // cells drivers stand in (the centers of the area's fine cells)
	left    bool      // a member left since the cluster last settled
}

func newGen(t testing.TB, pick chooser) *gen {
	g := &gen{t: t, pick: pick, pool: []string{"a", "b", "c", "d", "e"}}
	g.c = newCluster(t, "a", "b", "c")
	for i := range 24 {
		g.drivers = append(g.drivers, fmt.Sprintf("d%02d", i))
	}
	for _, c := range area {
		g.fine = append(g.fine, kids(c)...)
	}
	return g
}

// event runs one random event.
func (g *gen) event() {
	c, p := g.c, g.pick
	c.now = c.now.Add(time.Duration(1+p(5)) * time.Millisecond)
	switch k := p(20); {
	case k < 2: // a ring change, sometimes a quick chain of them
		for range 1 + p(3) {
			g.ringChange()
			if p(2) == 0 {
				g.notice()
			}
		}
	case k < 4:
		g.notice()
	case k < 10:
		g.move()
	case k < 13:
		if len(c.evictions) > 0 {
			c.deliver(p(len(c.evictions)))
		}
	case k < 19:
		var warm []*simNode
		for _, n := range c.sortedNodes() {
			if n.warming() {
				warm = append(warm, n)
			}
		}
		if len(warm) > 0 {
			warm[p(len(warm))].warmStep(p)
		}
	default: // a node's periodic expiry, a little later
		c.now = c.now.Add(time.Duration(p(200)) * time.Millisecond)
		ns := c.sortedNodes()
		ns[p(len(ns))].tick()
	}
}

// notice delivers the latest ring to a random node (its watch fired, or a
// request at the newer epoch reached it).
func (g *gen) notice() {
	ns := g.c.sortedNodes()
	ns[g.pick(len(ns))].notice()
}

// move sends a random driver to a random place (a neighbouring fine cell,
// or anywhere in the area), unless an eviction of it is still on its way:
// a driver that crosses back before the eviction of its previous crossing
// lands is a race between a router's queues, outside the hand-over.
func (g *gen) move() {
	c, p := g.c, g.pick
	id := g.drivers[p(len(g.drivers))]
	if c.inFlight(id) {
		return
	}
	to := g.fine[p(len(g.fine))]
	if d, ok := c.newest[id]; ok && p(2) == 0 {
		here := h3.LatLngToCell(h3.LatLng{Lat: d.Pos.Lat, Lng: d.Pos.Lng}, fineRes)
		near := slices.DeleteFunc(here.GridDisk(1), func(n h3.Cell) bool { return !slices.Contains(g.fine, n) })
		if len(near) > 0 {
			to = near[p(len(near))]
		}
	}
	c.update(id, center(to), c.now.UnixMilli())
}

// ringChange applies one random change to the ring document: a member
// joins, leaves, is drained or undrained, a shard is pinned or unpinned,
// split or merged.
func (g *gen) ringChange() {
	c, p := g.c, g.pick
	d := c.doc.Clone()
	members := map[string]bool{}
	for _, m := range d.Members {
		members[m.ID] = true
	}
	drained := map[string]bool{}
	for _, id := range d.Drained {
		drained[id] = true
	}
	active := len(d.Members) - len(d.Drained)
	layout := c.ring.Layout()
	var what string
	switch p(8) {
	case 0: // join
		if g.left {
			return // see atRest: not before the warm-ups that follow a leave
		}
		var out []string
		for _, id := range g.pool {
			// A node that left comes back once it has seen itself
			// leave: evictions go to the members of the ring, so one
			// that never noticed it was out would keep copies the
			// evictions of that time missed (until they expire).
			if n := c.nodes[id]; !members[id] && (n == nil || !isMember(n.cur, id)) {
				out = append(out, id)
			}
		}
		if len(out) == 0 {
			return
		}
		id := out[p(len(out))]
		d.Members = append(d.Members, shardmap.Member{ID: id, Addr: id})
		what = "join " + id
	case 1: // leave
		i := p(len(d.Members))
		id := d.Members[i].ID
		if !drained[id] && active == 1 {
			return
		}
		if !g.atRest() {
			return
		}
		g.left = true
		d.Members = slices.Delete(d.Members, i, i+1)
		d.Drained = slices.DeleteFunc(d.Drained, func(x string) bool { return x == id })
		what = "leave " + id
	case 2: // drain
		id := d.Members[p(len(d.Members))].ID
		if drained[id] || active == 1 {
			return
		}
		d.Drained = append(d.Drained, id)
		what = "drain " + id
	case 3: // undrain
		if len(d.Drained) == 0 {
			return
		}
		i := p(len(d.Drained))
		what = "undrain " + d.Drained[i]
		d.Drained = slices.Delete(d.Drained, i, i+1)
	case 4, 5: // pin a shard of the area to an active member
		cell := area[p(len(area))]
		if !layout.IsShard(cell) {
			k := kids(cell)
			cell = k[p(len(k))]
		}
		var act []string
		for _, m := range d.Members {
			if !drained[m.ID] {
				act = append(act, m.ID)
			}
		}
		if d.Pins == nil {
			d.Pins = map[h3.Cell]string{}
		}
		d.Pins[cell] = act[p(len(act))]
		what = fmt.Sprintf("pin %v to %s", cell, d.Pins[cell])
	case 6: // unpin
		if len(d.Pins) == 0 {
			return
		}
		cells := sortedPinCells(d.Pins)
		cell := cells[p(len(cells))]
		delete(d.Pins, cell)
		what = fmt.Sprintf("unpin %v", cell)
	case 7: // split or merge
		cell := area[p(len(area))]
		if i := slices.Index(d.Splits, cell); i >= 0 {
			d.Splits = slices.Delete(d.Splits, i, i+1)
			what = fmt.Sprintf("merge %v", cell)
		} else {
			d.Splits = append(d.Splits, cell)
			what = fmt.Sprintf("split %v", cell)
		}
	}
	// Pins must name shards of the layout and active members.
	l, err := shardmap.NewLayout(d.ShardRes, d.MaxSplitDepth, d.Splits)
	if err != nil {
		g.t.Fatalf("%s: %v", what, err)
	}
	ok := map[string]bool{}
	for _, m := range d.Members {
		ok[m.ID] = !slices.Contains(d.Drained, m.ID)
	}
	for cell, id := range d.Pins {
		if !l.IsShard(cell) || !ok[id] {
			delete(d.Pins, cell)
		}
	}
	if err := c.setDoc(d); err != nil {
		g.t.Fatalf("%s: %v", what, err)
	}
	c.tracef("ring %d: %s", c.ring.Epoch(), what)
	for _, m := range d.Members {
		if c.nodes[m.ID] == nil {
			c.start(g.t, m.ID)
		}
	}
}

// atRest reports whether every node's base is the latest ring: a member
// leaves only then (and no member joins before the warm-ups that follow a
// leave have ended). A warm-up asks the members of its base and target
// rings for their snapshots; a member that leaves while some node still
// warms from an older ring, or before a joiner's first warm-up, may be
// asked by nobody, and what it held is then only in the store, under the
// keys of the layout of that time. The drivers that reported to it come
// back with their next update (see the package doc).
func (g *gen) atRest() bool {
	for _, n := range g.c.nodes {
		if n.base != g.c.ring {
			return false
		}
	}
	return true
}

func isMember(m *shardmap.Map, id string) bool {
	_, ok := m.Member(id)
	return ok
}

func sortedPinCells(pins map[h3.Cell]string) []h3.Cell {
	out := make([]h3.Cell, 0, len(pins))
	for c := range pins {
		out = append(out, c)
	}
	slices.Sort(out)
	return out
}

// run runs events, settles the cluster every so often and checks it
// (checkpoint). It returns the first violations found.
func (g *gen) run(events int) []string {
	next := 20 + g.pick(100)
	for i := 0; i < events; i++ {
		g.event()
		if i < next && i < events-1 {
			continue
		}
		next = i + 20 + g.pick(100)
		if bad := g.checkpoint(); len(bad) > 0 {
			return bad
		}
	}
	return nil
}

// checkpoint settles the cluster and checks it. Half the time every live
// driver then reports where it is, which must leave each held by its owner
// alone; a third of the time the clock then jumps ahead, so drivers and
// snapshots expire. It returns the violations found.
func (g *gen) checkpoint() []string {
	c, p := g.c, g.pick
	c.settle(p)
	g.left = false
	if bad := c.check(false); len(bad) > 0 {
		return bad
	}
	c.tracef("settled and checked at ring %d", c.ring.Epoch())
	if p(2) == 0 {
		for _, id := range c.live() {
			c.now = c.now.Add(time.Millisecond)
			c.update(id, c.newest[id].Pos, c.now.UnixMilli())
		}
		c.settle(p)
		if bad := c.check(true); len(bad) > 0 {
			return bad
		}
		c.tracef("every live driver reported; checked strictly")
	}
	if p(3) == 0 {
		c.now = c.now.Add(time.Duration(p(40)) * time.Second)
		for _, n := range c.sortedNodes() {
			n.tick()
		}
		c.tracef("clock jumps")
		if bad := c.check(false); len(bad) > 0 {
			return bad
		}
	}
	return nil
}

var (
	moreSeeds = flag.Int("handoff.seeds", 0, "TestHandoffProperty: run this many seeds after the usual ones instead")
	fullTrace = flag.Bool("handoff.trace", false, "TestHandoffProperty: print the whole trace of a failing seed")
)

// TestHandoffProperty runs random sequences of ring changes (joins,
// leaves, drains, pins, splits and merges, often in quick chains that
// cancel warm-ups), driver moves and evictions over a simulated cluster of
// nodes that follow the package's decisions, and checks after every
// warm-up (the cluster at rest) that every node holds only drivers of
// shards it owns, no driver twice, never a copy older than the newest
// position, and every live driver at its owner.
func TestHandoffProperty(t *testing.T) {
	seeds, events := 120, 600
	if raceEnabled {
		seeds = 40
	}
	if testing.Short() {
		seeds /= 4
	}
	first := 0
	if *moreSeeds > 0 {
		first, seeds = seeds, *moreSeeds
	}
	for seed := first; seed < first+seeds; seed++ {
		r := rand.New(rand.NewPCG(uint64(seed), 0x4a4d))
		g := newGen(t, r.IntN)
		if bad := g.run(events); len(bad) > 0 {
			lines := 80
			if *fullTrace {
				lines = len(g.c.trace)
			}
			t.Fatalf("seed %d: %d violations:\n  %s\ntrace:\n%s", seed, len(bad), joinLines(bad, 10), g.c.dump(lines))
		}
	}
}

func joinLines(lines []string, n int) string {
	if len(lines) > n {
		lines = append(lines[:n:n], fmt.Sprintf("... %d more", len(lines)-n))
	}
	out := ""
	for i, l := range lines {
		if i > 0 {
			out += "\n  "
		}
		out += l
	}
	return out
}

// FuzzHandoff drives the simulated cluster with events the fuzzer's bytes
// choose, then settles it and checks the invariants of TestHandoffProperty.
func FuzzHandoff(f *testing.F) {
	f.Add([]byte{})
	f.Add([]byte{0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19})
	f.Add([]byte("ring changes, moves, evictions and warm-ups"))
	for seed := range uint64(4) {
		r := rand.New(rand.NewPCG(seed, 0x4a4d))
		b := make([]byte, 300)
		for i := range b {
			b[i] = byte(r.IntN(256))
		}
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		if len(data) > 4096 {
			return
		}
		b := &bytePicker{data: data}
		g := newGen(t, b.pick)
		for len(b.data) > 0 {
			g.event()
		}
		if bad := g.checkpoint(); len(bad) > 0 {
			t.Fatalf("%d violations:\n  %s\ntrace:\n%s", len(bad), joinLines(bad, 10), g.c.dump(80))
		}
	})
}

// bytePicker turns fuzz input into choices; once the bytes are used up it
// picks 0.
type bytePicker struct{ data []byte }

func (b *bytePicker) pick(n int) int {
	if n <= 1 || len(b.data) == 0 {
		return 0
	}
	v := int(b.data[0])
	b.data = b.data[1:]
	if n > 256 && len(b.data) > 0 {
		v = v<<8 | int(b.data[0])
		b.data = b.data[1:]
	}
	return v % n
}

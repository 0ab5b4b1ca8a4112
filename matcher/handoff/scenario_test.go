package handoff_test

import (
	"maps"
	"slices"
	"testing"
	"time"

	"github.com/uber/h3-go/v4"

	"github.com/geomatch/geomatch/shardmap"
)

// scenario scripts a simulated cluster (see sim_test.go) step by step.
type scenario struct {
	t *testing.T
	c *cluster
}

// ring changes the ring document and starts the members that are new.
func (s *scenario) ring(change func(d *shardmap.Doc)) {
	s.t.Helper()
	d := s.c.doc.Clone()
	change(&d)
	if err := s.c.setDoc(d); err != nil {
		s.t.Fatal(err)
	}
	s.c.tracef("ring %d", s.c.ring.Epoch())
	for _, m := range d.Members {
		if s.c.nodes[m.ID] == nil {
			s.c.start(s.t, m.ID)
		}
	}
}

// pins returns a ring change that pins as given (and nothing else).
func pins(p map[h3.Cell]string) func(d *shardmap.Doc) {
	return func(d *shardmap.Doc) { d.Pins = p }
}

// notice delivers the latest ring to the nodes.
func (s *scenario) notice(ids ...string) {
	for _, id := range ids {
		s.c.nodes[id].notice()
	}
}

// move sends driver id's update at the center of cell through a router
// and returns its timestamp.
func (s *scenario) move(id string, cell h3.Cell) int64 {
	s.c.now = s.c.now.Add(time.Millisecond)
	s.c.update(id, center(cell), s.c.now.UnixMilli())
	return s.c.now.UnixMilli()
}

// direct applies driver id's update at the owner of cell directly (no
// router: nobody is told to evict older copies) and returns its timestamp.
func (s *scenario) direct(id string, cell h3.Cell) int64 {
	s.c.now = s.c.now.Add(time.Millisecond)
	s.c.send(id, center(cell), s.c.now.UnixMilli(), false)
	return s.c.now.UnixMilli()
}

// tick lets a second pass: every node expires what it keeps.
func (s *scenario) tick() {
	s.c.now = s.c.now.Add(time.Second)
	for _, n := range s.c.sortedNodes() {
		n.tick()
	}
}

// deliver delivers the evictions on their way.
func (s *scenario) deliver() {
	for len(s.c.evictions) > 0 {
		s.c.deliver(0)
	}
}

// first picks the first of what is concurrent: pulls in peer order.
func first(int) int { return 0 }

// warm runs k stages of node id's warm-ups (all, until none is left, when
// k < 0).
func (s *scenario) warm(id string, k int) {
	n := s.c.nodes[id]
	for ; k != 0 && n.warming(); k-- {
		n.warmStep(first)
	}
}

// settle brings the cluster to rest.
func (s *scenario) settle() { s.c.settle(first) }

// holders returns who holds driver id, and at which timestamp.
func (s *scenario) holders(id string) map[string]int64 {
	out := map[string]int64{}
	for _, n := range s.c.sortedNodes() {
		if d, ok := n.ix.Get(id); ok {
			out[n.id] = d.TimestampMs
		}
	}
	return out
}

// expect checks that node alone holds driver id, at ts.
func (s *scenario) expect(id, node string, ts int64) {
	s.t.Helper()
	if got, want := s.holders(id), map[string]int64{node: ts}; !maps.Equal(got, want) {
		s.t.Errorf("%s held by %v, want %v\ntrace:\n%s", id, got, want, s.c.dump(60))
	}
}

// TestHandoffScenarios replays, on the simulated cluster, the ring changes
// behind each hand-over fix, and checks who holds the driver once the
// cluster is at rest.
func TestHandoffScenarios(t *testing.T) {
	S, k := cC, kids(cC)
	for _, tc := range []struct {
		name    string
		noStore bool // no store to fall back on: the hand-over alone must keep the driver
		run     func(s *scenario)
	}{
		// Fix: stale copies survived a hand-over. The node taking x's old
		// shard had x's newer position itself and gives its shard up in
		// the same change: it refuses the old copy handed over.
		{"stale copy: the taker gave up the newer position", false, func(s *scenario) {
			s.ring(pins(pin(cA, "c", cB, "b")))
			s.settle()
			s.move("x", cA)
			t2 := s.direct("x", cB)
			s.ring(pins(pin(cA, "b", cB, "c")))
			s.settle()
			s.expect("x", "c", t2)
			s.t.Log(s.c.dump(100))
		}},
		// The same with a third node holding the newer position: the
		// taker applies the old copy and drops it when it reconciles.
		{"stale copy: a third node holds the newer position", false, func(s *scenario) {
			s.ring(pins(pin(cA, "c", cB, "a")))
			s.settle()
			s.move("x", cA)
			t2 := s.direct("x", cB)
			s.ring(pins(pin(cA, "b", cB, "a")))
			s.settle()
			s.expect("x", "a", t2)
		}},
		// Fix: a chain of quick ring changes lost a driver. a gives A up
		// and gets it back before b fetched it: a gates A and reclaims
		// its own snapshot.
		{"chain of quick changes: a shard regained before its taker fetched it", true, func(s *scenario) {
			s.ring(pins(pin(cA, "a")))
			s.settle()
			t1 := s.move("x", cA)
			s.ring(pins(pin(cA, "b")))
			s.notice("a")
			s.ring(pins(pin(cA, "a")))
			s.settle()
			s.expect("x", "a", t1)
		}},
		// Fix: a regained shard after a cancelled warm-up. a completes its
		// warm-up after giving A up (its base no longer has A); b's is
		// cancelled by the change that gives A back: a reclaims a snapshot
		// given up at its base epoch.
		{"regained after the taker's warm-up was cancelled", true, func(s *scenario) {
			s.ring(pins(pin(cA, "a")))
			s.settle()
			t1 := s.move("x", cA)
			s.ring(pins(pin(cA, "b")))
			s.notice("a")
			s.warm("a", -1)
			s.ring(pins(pin(cA, "a")))
			s.notice("b")
			s.settle()
			s.expect("x", "a", t1)
		}},
		// Fix: superseded timestamps. c keeps a snapshot of x at its old
		// position; x moves on to a, and the eviction reaches c: c does
		// not hand the old copy over to b, which heard of no eviction
		// and cannot tell (a gave x's shard up meanwhile; c has not
		// fetched it yet when b reconciles).
		{"superseded: an eviction that reached the snapshot's holder", false, func(s *scenario) {
			s.ring(pins(pin(cA, "c", cB, "a")))
			s.settle()
			s.tick() // nothing kept: the logs go
			s.move("x", cA)
			s.ring(pins(pin(cA, "b", cB, "a")))
			s.notice("c")
			t2 := s.move("x", cB)
			s.deliver()
			s.ring(pins(pin(cA, "b", cB, "c")))
			s.notice("a", "b")
			s.warm("b", -1)
			s.settle()
			s.expect("x", "c", t2)
		}},
		// Fix: a shard regained in part through a split and a merge. a
		// gives up the child of C that x is in, then C is merged back to
		// a, whose base still has C whole.
		{"split, then merge: a child given up is regained with its parent", false, func(s *scenario) {
			s.ring(pins(pin(S, "a")))
			s.settle()
			s.ring(func(d *shardmap.Doc) { d.Splits, d.Pins = []h3.Cell{S}, pinKids(pin(), S, "a") })
			s.notice("a")
			t1 := s.move("x", k[1])
			s.ring(func(d *shardmap.Doc) { d.Pins = pinKids(pin(k[1], "b"), S, "a") })
			s.notice("a")
			s.ring(func(d *shardmap.Doc) { d.Splits, d.Pins = nil, pin(S, "a") })
			s.settle()
			s.expect("x", "a", t1)
		}},
		// Fix: a shard given up again before its warm-up re-applied the
		// older snapshot. a gives S up (x), gets it back, receives y, and
		// gives it up again before reclaiming x.
		{"given up again while still warming: both snapshots go to the taker", true, func(s *scenario) {
			s.ring(pins(pin(S, "a")))
			s.settle()
			t1 := s.move("x", S)
			s.ring(pins(pin(S, "b")))
			s.notice("a")
			s.ring(pins(pin(S, "a")))
			s.notice("a")
			t2 := s.move("y", S)
			s.ring(pins(pin(S, "b")))
			s.settle()
			s.expect("x", "b", t1)
			s.expect("y", "b", t2)
		}},
		// Fix: a warm-up asks for every snapshot kept. b's warm-up to the
		// ring giving it S completes, but a answers by its newer ring, in
		// which S is split and b owns none of it; when b gets x's child
		// later, a's snapshot predates b's base.
		{"an answer by a newer ring: the snapshot is asked for again", true, func(s *scenario) {
			s.ring(pins(pin(S, "a")))
			s.settle()
			t1 := s.move("x", k[1])
			s.ring(pins(pin(S, "b")))
			s.notice("a", "b")
			s.ring(func(d *shardmap.Doc) { d.Splits, d.Pins = []h3.Cell{S}, pinKids(pin(), S, "c") })
			s.notice("a")
			s.warm("b", -1)
			s.ring(func(d *shardmap.Doc) { d.Pins = pinKids(pin(k[1], "b"), S, "c") })
			s.settle()
			s.expect("x", "b", t1)
		}},
		// Fix: copies applied by a cancelled warm-up are checked by the
		// next one. d joins after x moved on to b, so no eviction ever
		// reaches it; its first warm-up applies c's stale copy and is
		// cancelled before it reconciles.
		{"a stale copy applied by a cancelled warm-up is reconciled later", false, func(s *scenario) {
			s.ring(pins(pin(cA, "c", cB, "b")))
			s.settle()
			s.move("x", cA)
			s.ring(pins(pin(cA, "a", cB, "b")))
			s.notice("c")
			t2 := s.move("x", cB)
			s.ring(func(d *shardmap.Doc) {
				d.Members = append(d.Members, shardmap.Member{ID: "d", Addr: "d"})
				d.Pins = pin(cA, "d", cB, "b")
			})
			s.warm("d", 3) // pulls from a, b, c
			s.ring(func(d *shardmap.Doc) { d.Pins = pin(cA, "d", cB, "b", cD, "a") })
			s.notice("d")
			s.settle()
			s.expect("x", "b", t2)
		}},
		// Fix: a snapshot taken while its node was still warming does not
		// cover the shard. c leaves; b, S's next owner, is drained before
		// it fetched x from c; a, which owns S next and whose base no
		// longer lists c, reads x from the store.
		{"a cold snapshot: the store fills in for a member that left", false, func(s *scenario) {
			s.ring(pins(pin(S, "c")))
			s.settle()
			t1 := s.move("x", S)
			s.ring(func(d *shardmap.Doc) {
				d.Members = slices.DeleteFunc(d.Members, func(m shardmap.Member) bool { return m.ID == "c" })
				d.Pins = pin(S, "b")
			})
			s.notice("a")
			s.warm("a", -1)
			t2 := s.move("y", S)
			s.ring(func(d *shardmap.Doc) { d.Drained, d.Pins = []string{"b"}, pin(S, "a") })
			s.notice("b")
			s.settle()
			s.expect("x", "a", t1)
			s.expect("y", "a", t2)
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := newCluster(t, "a", "b", "c")
			c.noStore = tc.noStore
			tc.run(&scenario{t: t, c: c})
		})
	}
}

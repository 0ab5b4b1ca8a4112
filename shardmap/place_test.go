package shardmap

import (
	"math"
	"slices"
	"testing"
)

// shardLoads counts the active shards each member owns under m.
func shardLoads(m *Map, active []Cell) map[string]int {
	c := map[string]int{}
	for _, s := range active {
		o, _ := m.Owner(s)
		c[o.ID]++
	}
	return c
}

func TestBoundedLoadCapsEveryMember(t *testing.T) {
	nyc := nycCells(7)
	global := ringKeys(5000)
	cases := []struct {
		name    string
		members []Member
		active  []Cell
		drained []string
		pins    map[Cell]string
	}{
		{"3 members, NYC", members(3), nyc, nil, nil},
		{"4 members, NYC", members(4), nyc, nil, nil},
		{"5 members, NYC, one drained", members(5), nyc, []string{"m02"}, nil},
		{"10 members, 5000 shards", members(10), global, nil, nil},
		{"3 members, NYC, pins", members(3), nyc, nil, map[Cell]string{nyc[0]: "m00", nyc[1]: "m00", nyc[2]: "m01"}},
		{"weighted", []Member{{ID: "a", Weight: 1}, {ID: "b", Weight: 2}, {ID: "c", Weight: 1}}, nyc, nil, nil},
		{"1 member", members(1), nyc, nil, nil},
		{"no active shard", members(3), nil, nil, nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			d := DefaultDoc(tc.members)
			d.Drained, d.Pins = tc.drained, tc.pins
			over, err := BoundedLoad(d, tc.active, DefaultBalance)
			if err != nil {
				t.Fatal(err)
			}
			before := shardLoads(mustMap(t, d), tc.active)
			d.Overrides = over
			m := mustMap(t, d) // overrides must be valid
			after := shardLoads(m, tc.active)
			total := 0.0
			for _, mem := range tc.members {
				if !slices.Contains(tc.drained, mem.ID) {
					total += mem.weight()
				}
			}
			worst := 0.0
			for _, mem := range tc.members {
				if slices.Contains(tc.drained, mem.ID) {
					if after[mem.ID] != 0 {
						t.Errorf("drained %s owns %d shards", mem.ID, after[mem.ID])
					}
					continue
				}
				share := float64(len(tc.active)) * mem.weight() / total
				if limit := max(math.Floor(DefaultBalance*share), math.Ceil(share)); float64(after[mem.ID]) > limit {
					t.Errorf("%s owns %d active shards, capacity %v", mem.ID, after[mem.ID], limit)
				}
				if share > 0 {
					worst = max(worst, float64(after[mem.ID])/share)
				}
			}
			for c, id := range tc.pins {
				if o, _ := m.Owner(c); o.ID != id {
					t.Errorf("pin of %s to %s lost: owner %s", c, id, o.ID)
				}
			}
			t.Logf("%d active shards: max/avg %.3f with bounded load (ring alone %v), %d overrides", len(tc.active), worst, before, len(over))
		})
	}
}

func TestBoundedLoadDeterministic(t *testing.T) {
	active := nycCells(7)
	ms := members(5)
	a, err := BoundedLoad(DefaultDoc(ms), active, 1.05)
	if err != nil {
		t.Fatal(err)
	}
	slices.Reverse(ms)
	rev := slices.Clone(active)
	slices.Reverse(rev)
	b, err := BoundedLoad(DefaultDoc(ms), append(rev, rev[:10]...), 1.05)
	if err != nil {
		t.Fatal(err)
	}
	if len(a) != len(b) {
		t.Fatalf("%d overrides, then %d with members and shards reordered", len(a), len(b))
	}
	for c, id := range a {
		if b[c] != id {
			t.Fatalf("override of %s: %s, then %s", c, id, b[c])
		}
	}
}

func TestBoundedLoadMovement(t *testing.T) {
	active := nycCells(7)
	for n := 3; n <= 6; n++ {
		d := DefaultDoc(members(n))
		over, err := BoundedLoad(d, active, DefaultBalance)
		if err != nil {
			t.Fatal(err)
		}
		d.Overrides = over
		before := mustMap(t, d)
		d2 := DefaultDoc(members(n + 1))
		over2, err := BoundedLoad(d2, active, DefaultBalance)
		if err != nil {
			t.Fatal(err)
		}
		d2.Overrides = over2
		after := mustMap(t, d2)
		moved := 0
		for _, s := range active {
			a, _ := before.Owner(s)
			b, _ := after.Owner(s)
			if a.ID != b.ID {
				moved++
			}
		}
		frac := float64(moved) / float64(len(active))
		ideal := 1 / float64(n+1)
		t.Logf("join %d→%d members: %.3f of %d active shards move (ideal %.3f, ×%.2f)", n, n+1, frac, len(active), ideal, frac/ideal)
		if frac > 2.5*ideal {
			t.Errorf("join %d→%d moved %.3f of the shards, ideal %.3f", n, n+1, frac, ideal)
		}
	}
}

func TestBoundedLoadRefusesBadInput(t *testing.T) {
	if _, err := BoundedLoad(DefaultDoc(members(3)), nil, 0.9); err == nil {
		t.Error("balance 0.9 accepted")
	}
	if _, err := BoundedLoad(DefaultDoc(members(3)), nil, math.NaN()); err == nil {
		t.Error("balance NaN accepted")
	}
	bad := DefaultDoc(members(3))
	bad.Epoch = 0
	if _, err := BoundedLoad(bad, nil, 1.1); err == nil {
		t.Error("invalid document accepted")
	}
	all := DefaultDoc(members(2))
	all.Drained = []string{"m00", "m01"}
	if over, err := BoundedLoad(all, nycCells(7), 1.1); err != nil || over != nil {
		t.Errorf("every member drained: %v, %v; want no overrides", over, err)
	}
}

// Every driver's shard under the old layout is among the sources of its
// shard under the new one, whatever was split or merged in between.
func TestSourcesCoverEveryDriver(t *testing.T) {
	r := newRand(77)
	for trial := range 60 {
		p := randomPoint(r)
		if trial%3 == 0 {
			p = awkwardPoint(r, 7)
		}
		prev := mustLayout(t, 7, 2, splitsAround(r, p, 7, 2))
		next := mustLayout(t, 7, 2, splitsAround(r, p, 7, 2))
		for range 200 {
			q := destination(p, r.Float64()*360, r.Float64()*6000)
			fine := next.FineCell(q)
			ns, ps := next.ShardOfFine(fine), prev.ShardOfFine(fine)
			src := Sources(prev, next, ns)
			if !slices.Contains(src, ps) {
				t.Fatalf("trial %d: driver at %v: shard %s under next, %s under prev, not in sources %v", trial, q, ns, ps, src)
			}
			for _, s := range src {
				if !prev.IsShard(s) {
					t.Fatalf("source %s is not a shard of prev", s)
				}
			}
		}
	}
}

func TestSourcesTable(t *testing.T) {
	p := nycCells(7)[0]
	children := p.ImmediateChildren()
	plain := mustLayout(t, 7, 2, nil)
	split := mustLayout(t, 7, 2, []Cell{p})
	cases := []struct {
		name       string
		prev, next *Layout
		s          Cell
		want       []Cell
	}{
		{"unchanged", plain, plain, p, []Cell{p}},
		{"split since", plain, split, children[3], []Cell{p}},
		{"merged since", split, plain, p, slices.Sorted(slices.Values(children))},
		{"not a shard of next", plain, split, p, nil},
		{"other resolution", mustLayout(t, 6, 2, nil), plain, p, nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if got := Sources(tc.prev, tc.next, tc.s); !slices.Equal(got, tc.want) {
				t.Errorf("Sources = %v, want %v", got, tc.want)
			}
		})
	}
}

package shardmap

import (
	"maps"
	"math"
	"slices"
	"sync"
	"testing"
)

// sortedNYC are the resolution-7 cells of New York in ascending order.
var sortedNYC = sync.OnceValue(func() []Cell {
	c := nycCells(7)
	slices.Sort(c)
	return c
})

// load is a shard of the rebalance tables: the i-th NYC cell.
func load(i int, owner string, drivers int64) ShardLoad {
	return ShardLoad{Cell: sortedNYC()[i], Owner: owner, Drivers: drivers}
}

func TestPlanRebalanceTable(t *testing.T) {
	cell := func(i int) Cell { return sortedNYC()[i] }
	cases := []struct {
		name     string
		shards   []ShardLoad
		nodes    []string
		target   float64
		maxMoves int
		want     []Move
		total    int64
	}{
		{
			name:   "balanced: nothing moves",
			shards: []ShardLoad{load(0, "a", 10), load(1, "b", 10)},
			nodes:  []string{"a", "b"}, target: 1.1, maxMoves: 100, total: 20,
		},
		{
			name:   "one node: nothing can move",
			shards: []ShardLoad{load(0, "a", 10), load(1, "a", 30)},
			nodes:  []string{"a"}, target: 1.1, maxMoves: 100, total: 40,
		},
		{
			name:   "no drivers",
			shards: []ShardLoad{load(0, "a", 0)},
			nodes:  []string{"a", "b"}, target: 1.1, maxMoves: 100,
		},
		{
			name:   "the shard nearest half the gap moves to the idle node",
			shards: []ShardLoad{load(0, "a", 40), load(1, "a", 25), load(2, "a", 10), load(3, "b", 0)},
			nodes:  []string{"a", "b"}, target: 1.1, maxMoves: 100, total: 75,
			// gap 75: 40 is |75-80|=5 from even, 25 is 25, 10 is 55. Then
			// a=35, b=40, avg 37.5: within 1.1.
			want: []Move{{Cell: cell(0), Drivers: 40, From: "a", To: "b"}},
		},
		{
			name:   "a single hot shard never moves: moving it would only swap the max",
			shards: []ShardLoad{load(0, "a", 100), load(1, "b", 5), load(2, "c", 5)},
			nodes:  []string{"a", "b", "c"}, target: 1.1, maxMoves: 100, total: 110,
		},
		{
			name:   "max moves caps the plan",
			shards: []ShardLoad{load(0, "a", 10), load(1, "a", 10), load(2, "a", 10), load(3, "a", 10)},
			nodes:  []string{"a", "b", "c", "d"}, target: 1, maxMoves: 1, total: 40,
			want: []Move{{Cell: cell(0), Drivers: 10, From: "a", To: "b"}},
		},
		{
			name:   "equal shards spread one per idle node, smaller ids first",
			shards: []ShardLoad{load(3, "a", 10), load(2, "a", 10), load(1, "a", 10), load(0, "a", 10)},
			nodes:  []string{"d", "c", "b", "a"}, target: 1, maxMoves: 100, total: 40,
			want: []Move{
				{Cell: cell(0), Drivers: 10, From: "a", To: "b"},
				{Cell: cell(1), Drivers: 10, From: "a", To: "c"},
				{Cell: cell(2), Drivers: 10, From: "a", To: "d"},
			},
		},
		{
			name:   "a drained node's shards count in the total only",
			shards: []ShardLoad{load(0, "a", 30), load(1, "a", 30), load(2, "x", 60)},
			nodes:  []string{"a", "b"}, target: 1.1, maxMoves: 100, total: 120,
			want: []Move{{Cell: cell(0), Drivers: 30, From: "a", To: "b"}},
		},
		{
			name:   "within target: nothing moves",
			shards: []ShardLoad{load(0, "a", 12), load(1, "b", 10), load(2, "b", 1)},
			nodes:  []string{"a", "b"}, target: 1.1, maxMoves: 100, total: 23,
		},
		{
			name:   "an empty node set plans nothing",
			shards: []ShardLoad{load(0, "a", 12)},
			target: 1.1, maxMoves: 100, total: 12,
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			p := PlanRebalance(tc.shards, tc.nodes, tc.target, tc.maxMoves)
			if !slices.Equal(p.Moves, tc.want) {
				t.Fatalf("moves %+v, want %+v", p.Moves, tc.want)
			}
			if p.Total != tc.total {
				t.Fatalf("total %d, want %d", p.Total, tc.total)
			}
			for _, n := range tc.nodes {
				if _, ok := p.Before[n]; !ok {
					t.Fatalf("node %s missing from Before", n)
				}
			}
		})
	}
}

func TestPlanRebalanceFigures(t *testing.T) {
	p := PlanRebalance([]ShardLoad{load(0, "a", 40), load(1, "a", 20), load(2, "b", 0), load(3, "x", 20)}, []string{"a", "b"}, 1.1, 10)
	// a 60, b 0: max/avg 2. Both shards of a are 20 from halving the gap
	// of 60; the busier goes first: a 20, b 40, max/avg 4/3. x is not a
	// node: its 20 drivers count in the total only.
	if len(p.Moves) != 1 || p.Moves[0].Drivers != 40 {
		t.Fatalf("moves %+v", p.Moves)
	}
	if got := p.MaxOverAvgBefore(); got != 2 {
		t.Errorf("max/avg before %v, want 2", got)
	}
	if got := p.MaxOverAvgAfter(); math.Abs(got-4.0/3) > 1e-12 {
		t.Errorf("max/avg after %v, want 4/3", got)
	}
	if got := p.MovedFraction(); got != 0.5 {
		t.Errorf("moved fraction %v, want 0.5 (40 of 80)", got)
	}
	if (RebalancePlan{}).MovedFraction() != 0 || (RebalancePlan{}).MaxOverAvgBefore() != 0 {
		t.Error("an empty plan has figures")
	}
}

// TestPlanRebalanceProperties checks random plans against the rules, by
// replaying them: every move takes a shard of a busiest node to a least
// loaded one, and it is the shard nearest half their gap among those that
// fit in it; the loads after are the replay's; the plan stops only at
// maxMoves, within target or when no shard fits; and the order of the
// input does not matter.
func TestPlanRebalanceProperties(t *testing.T) {
	r := newRand(77)
	cells := sortedNYC()
	planned := 0
	for iter := range 500 {
		nNodes := 1 + r.IntN(6)
		var nodes []string
		for i := range nNodes {
			nodes = append(nodes, memberID(i))
		}
		owners := append(slices.Clone(nodes), "drained") // shards of a node not in the plan
		var shards []ShardLoad
		for i := range r.IntN(40) {
			d := int64(r.IntN(50))
			if r.IntN(8) == 0 {
				d = int64(r.IntN(2000)) // a hot shard
			}
			// A skewed owner: the first node tends to hold more.
			o := owners[min(r.IntN(len(owners)), r.IntN(len(owners)))]
			shards = append(shards, ShardLoad{Cell: cells[i], Owner: o, Drivers: d})
		}
		target := 1 + r.Float64()*0.5
		maxMoves := r.IntN(20)
		p := PlanRebalance(shards, nodes, target, maxMoves)
		planned += len(p.Moves)

		// Replay.
		owner := map[Cell]string{}
		drivers := map[Cell]int64{}
		loadOf := map[string]int64{}
		var placed, total int64
		for _, n := range nodes {
			loadOf[n] = 0
		}
		for _, s := range shards {
			total += s.Drivers
			owner[s.Cell], drivers[s.Cell] = s.Owner, s.Drivers
			if _, ok := loadOf[s.Owner]; ok {
				loadOf[s.Owner] += s.Drivers
				placed += s.Drivers
			}
		}
		if !maps.Equal(p.Before, loadOf) || p.Total != total {
			t.Fatalf("iter %d: before %v total %d, want %v %d", iter, p.Before, p.Total, loadOf, total)
		}
		extremes := func() (most, least int64) {
			least = math.MaxInt64
			for _, l := range loadOf {
				most, least = max(most, l), min(least, l)
			}
			return most, least
		}
		squares := func() (s float64) {
			for _, l := range loadOf {
				s += float64(l) * float64(l)
			}
			return s
		}
		if len(p.Moves) > maxMoves {
			t.Fatalf("iter %d: %d moves, max %d", iter, len(p.Moves), maxMoves)
		}
		for i, mv := range p.Moves {
			most, least := extremes()
			if owner[mv.Cell] != mv.From || loadOf[mv.From] != most || loadOf[mv.To] != least || mv.From == mv.To || drivers[mv.Cell] != mv.Drivers {
				t.Fatalf("iter %d move %d %+v: from owns it %v, loads %d→%d, extremes %d %d", iter, i, mv, owner[mv.Cell] == mv.From, loadOf[mv.From], loadOf[mv.To], most, least)
			}
			gap := most - least
			if mv.Drivers <= 0 || mv.Drivers >= gap {
				t.Fatalf("iter %d move %d %+v: does not fit in the gap %d", iter, i, mv, gap)
			}
			for c, o := range owner {
				if o == mv.From && drivers[c] > 0 && drivers[c] < gap && abs(gap-2*drivers[c]) < abs(gap-2*mv.Drivers) {
					t.Fatalf("iter %d move %d %+v: shard %v with %d drivers evens the gap %d better", iter, i, mv, c, drivers[c], gap)
				}
			}
			before := squares()
			owner[mv.Cell] = mv.To
			loadOf[mv.From] -= mv.Drivers
			loadOf[mv.To] += mv.Drivers
			if squares() >= before {
				t.Fatalf("iter %d move %d: sum of squared loads did not drop", iter, i)
			}
		}
		if !maps.Equal(p.After, loadOf) {
			t.Fatalf("iter %d: after %v, replay %v", iter, p.After, loadOf)
		}
		if len(p.Moves) < maxMoves && len(nodes) >= 2 && placed > 0 {
			most, least := extremes()
			if float64(most) > target*float64(placed)/float64(len(nodes)) {
				hi := ""
				for _, n := range nodes {
					if loadOf[n] == most {
						hi = n
						break
					}
				}
				for c, o := range owner {
					if o == hi && drivers[c] > 0 && drivers[c] < most-least {
						t.Fatalf("iter %d: stopped above target with shard %v (%d drivers) of %s fitting the gap %d", iter, c, drivers[c], hi, most-least)
					}
				}
			}
		}
		// The input order does not matter.
		shuffled := slices.Clone(shards)
		r.Shuffle(len(shuffled), func(i, j int) { shuffled[i], shuffled[j] = shuffled[j], shuffled[i] })
		rnodes := slices.Clone(nodes)
		slices.Reverse(rnodes)
		if q := PlanRebalance(shuffled, rnodes, target, maxMoves); !slices.Equal(q.Moves, p.Moves) {
			t.Fatalf("iter %d: shuffled input planned %+v, not %+v", iter, q.Moves, p.Moves)
		}
	}
	if planned < 500 {
		t.Fatalf("only %d moves planned in 500 plans: the generator hardly tests anything", planned)
	}
}

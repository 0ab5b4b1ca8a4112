package ui

import (
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/geomatch/geomatch/fleet"
	matcherv1 "github.com/geomatch/geomatch/proto/geomatch/matcher/v1"
	"github.com/geomatch/geomatch/shardmap"
	"github.com/geomatch/geomatch/ui/mapview"
)

func testFrame(m *shardmap.Map, stats []fleet.NodeStats, recent ...shardmap.Cell) frame {
	return frame{
		ring: m, stats: stats, recent: recent, now: time.Unix(1700000000, 0), maxShards: 1000,
		color: func(id string) string { return "#" + id },
		boundary: func(c shardmap.Cell) [][2]float64 {
			b, _ := mapview.Boundary(c)
			return b
		},
	}
}

func nodeStats(m shardmap.Member, shards ...*matcherv1.ShardStats) fleet.NodeStats {
	var drivers int64
	for _, s := range shards {
		drivers += s.GetDrivers()
	}
	return fleet.NodeStats{Member: m, Stats: &matcherv1.StatsResponse{NodeId: m.ID, Epoch: 1, Drivers: drivers, Shards: shards}}
}

// TestShardsOf maps a reported cell onto the layout's shards.
func TestShardsOf(t *testing.T) {
	shard := testShards(t)[0]
	split := testShards(t)[1]
	l, err := shardmap.NewLayout(7, 2, []shardmap.Cell{split})
	if err != nil {
		t.Fatal(err)
	}
	fine := shard.ImmediateChildren()[3]
	tests := []struct {
		name string
		cell shardmap.Cell
		want int
		one  shardmap.Cell
	}{
		{"a shard is itself", shard, 1, shard},
		{"a finer cell is its shard (a merge not yet seen)", fine, 1, shard},
		{"a split cell is its children", split, 7, 0},
		{"a coarser cell is nothing", shardmap.Parent(shard, 5), 0, 0},
		{"an invalid cell is nothing", 12345, 0, 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := shardsOf(l, tc.cell)
			if len(got) != tc.want || (tc.one != 0 && got[0] != tc.one) {
				t.Fatalf("shardsOf(%s) = %v", tc.cell, got)
			}
			for _, c := range got {
				if !l.IsShard(c) {
					t.Fatalf("%s is no shard", c)
				}
			}
		})
	}
}

// TestBuildOwnersLoadsAndShards checks a snapshot against the ring: owners
// are the ring's, loads are summed over the reporting nodes, pinned shards
// and split children are drawn even without load, recent shards stay.
func TestBuildOwnersLoadsAndShards(t *testing.T) {
	shards := testShards(t)
	d := shardmap.DefaultDoc(testMembers)
	d.Splits = []shardmap.Cell{shards[1]}
	d.Pins = map[shardmap.Cell]string{shards[2]: "m3"}
	m := ringOf(t, d)
	stats := []fleet.NodeStats{
		nodeStats(testMembers[0], &matcherv1.ShardStats{Cell: uint64(shards[0]), Drivers: 5, UpdatesPerS: 1.25}),
		// Two nodes report the same shard (a handoff in flight): summed.
		nodeStats(testMembers[1], &matcherv1.ShardStats{Cell: uint64(shards[0]), Drivers: 2, QueriesPerS: 3}),
		{Member: testMembers[2], Err: errors.New("connection refused")},
	}
	s, active := build(testFrame(m, stats, shards[4]))
	if !slices.Equal(active, []shardmap.Cell{shards[0], shards[0]}) {
		t.Fatalf("active %v", active)
	}
	byCell := map[string]mapview.Shard{}
	for _, sh := range s.Shards {
		byCell[sh.Cell] = sh
		c, _ := parseShownCell(sh.Cell)
		if o, _ := m.Owner(c); o.ID != sh.Owner {
			t.Fatalf("shard %s owner %q, ring says %q", sh.Cell, sh.Owner, o.ID)
		}
		if len(sh.Boundary) != 6 && len(sh.Boundary) != 5 {
			t.Fatalf("shard %s boundary %v", sh.Cell, sh.Boundary)
		}
	}
	// 1 loaded + 7 children + 1 pinned + 1 recent.
	if len(s.Shards) != 10 {
		t.Fatalf("%d shards drawn, want 10: %v", len(s.Shards), byCell)
	}
	if got := byCell[shards[0].String()]; got.Drivers != 7 || got.UpdatesPerS != 1.3 || got.QueriesPerS != 3 {
		t.Fatalf("loaded shard %+v", got)
	}
	if got := byCell[shards[2].String()]; !got.Pinned || got.Owner != "m3" {
		t.Fatalf("pinned shard %+v", got)
	}
	child := shards[1].ImmediateChildren()[0]
	if got := byCell[child.String()]; got.Res != 8 || got.Parent != shards[1].String() {
		t.Fatalf("split child %+v", got)
	}
	if _, ok := byCell[shards[4].String()]; !ok {
		t.Fatal("a recent shard is not drawn")
	}
	states := map[string]string{}
	total := 0
	for _, n := range s.Nodes {
		states[n.ID] = n.State
		total += n.Shards
		if n.Color != "#"+n.ID {
			t.Fatalf("node %s colour %s", n.ID, n.Color)
		}
	}
	if states["m1"] != "serving" || states["m3"] != "unreachable" || total != len(s.Shards) {
		t.Fatalf("node states %v, %d shards owned of %d", states, total, len(s.Shards))
	}
	if s.Epoch != 1 || s.ShardRes != 7 {
		t.Fatalf("epoch %d res %d", s.Epoch, s.ShardRes)
	}
}

// TestBuildBoundsShards keeps the busiest shards when there are too many.
func TestBuildBoundsShards(t *testing.T) {
	shards := testShards(t)
	m := ringOf(t, shardmap.DefaultDoc(testMembers))
	var ss []*matcherv1.ShardStats
	for i, c := range shards {
		ss = append(ss, &matcherv1.ShardStats{Cell: uint64(c), Drivers: int64(i + 1)})
	}
	f := testFrame(m, []fleet.NodeStats{nodeStats(testMembers[0], ss...)})
	f.maxShards = 3
	s, _ := build(f)
	if len(s.Shards) != 3 || s.Note == "" {
		t.Fatalf("%d shards, note %q", len(s.Shards), s.Note)
	}
	for _, sh := range s.Shards {
		if sh.Drivers < int64(len(shards)-2) {
			t.Fatalf("kept shard %+v, not among the busiest", sh)
		}
	}
}

// TestBuildIsPure: the same frame, the same snapshot.
func TestBuildIsPure(t *testing.T) {
	shards := testShards(t)
	m := ringOf(t, shardmap.DefaultDoc(testMembers))
	f := testFrame(m, []fleet.NodeStats{nodeStats(testMembers[0], &matcherv1.ShardStats{Cell: uint64(shards[0]), Drivers: 1})}, shards[3], shards[5])
	a, _ := build(f)
	b, _ := build(f)
	if !slices.EqualFunc(a.Shards, b.Shards, func(x, y mapview.Shard) bool { return x.Cell == y.Cell && x.Owner == y.Owner }) {
		t.Fatal("two builds of one frame differ")
	}
}

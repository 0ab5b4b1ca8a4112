package ui

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/uber/h3-go/v4"

	"github.com/geomatch/geomatch/shardmap"
	"github.com/geomatch/geomatch/ui/mapview"
)

// testMembers are three weight-1 matchers.
var testMembers = []shardmap.Member{{ID: "m1", Addr: "a1", Weight: 1}, {ID: "m2", Addr: "a2", Weight: 1}, {ID: "m3", Addr: "a3", Weight: 1}}

// testShards are the resolution-7 shards around Times Square.
func testShards(t testing.TB) []shardmap.Cell {
	t.Helper()
	return h3.LatLngToCell(h3.NewLatLng(40.758, -73.9855), 7).GridDisk(2)
}

// ringOf builds a Map from a document, failing the test on a bad one.
func ringOf(t testing.TB, d shardmap.Doc) *shardmap.Map {
	t.Helper()
	m, err := shardmap.NewMap(d)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func kinds(evs []string) string { return strings.Join(evs, ",") }

// TestDiffRings checks that each kind of ring change is told as the
// timeline's events, the epoch line first.
func TestDiffRings(t *testing.T) {
	shards := testShards(t)
	base := shardmap.DefaultDoc(testMembers)
	now := time.Unix(1700000000, 0)
	split := shards[0]
	pinTo := func(d shardmap.Doc, c shardmap.Cell) shardmap.Doc {
		m := ringOf(t, d)
		o, _ := m.Owner(c)
		to := "m1"
		if o.ID == to {
			to = "m2"
		}
		d.Pins = map[shardmap.Cell]string{c: to}
		return d
	}
	tests := []struct {
		name   string
		change func(d shardmap.Doc) shardmap.Doc
		want   []string // event kinds, in order
		text   string   // in some event's text
	}{
		{"epoch only", func(d shardmap.Doc) shardmap.Doc { return d }, []string{"epoch"}, "ring epoch 1 → 2"},
		{"a pin is a pin and a move", func(d shardmap.Doc) shardmap.Doc { return pinTo(d, shards[3]) }, []string{"epoch", "pin", "move"}, "pinned to"},
		{"a member gone undrained is a failover", func(d shardmap.Doc) shardmap.Doc {
			d.Members = d.Members[:2]
			return d
		}, nil, "m3 left the ring"},
		{"drain", func(d shardmap.Doc) shardmap.Doc { d.Drained = []string{"m2"}; return d }, nil, "m2 drained"},
		{"join", func(d shardmap.Doc) shardmap.Doc {
			d.Members = append(d.Members, shardmap.Member{ID: "m4", Addr: "a4", Weight: 1})
			return d
		}, nil, "m4 joined"},
		{"weight", func(d shardmap.Doc) shardmap.Doc {
			d.Members = append([]shardmap.Member(nil), d.Members...)
			d.Members[0].Weight = 2
			return d
		}, nil, "m1 weight 1 → 2"},
		{"split", func(d shardmap.Doc) shardmap.Doc { d.Splits = []shardmap.Cell{split}; return d }, []string{"epoch", "split"}, "split into its 7 children (resolution 8)"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			before := ringOf(t, base)
			d := tc.change(base.Clone())
			d.Epoch = 2
			evs := diffRings(before, ringOf(t, d), shards, now)
			var got []string
			all := ""
			for _, e := range evs {
				got = append(got, e.Kind)
				all += e.Text + "\n"
				if e.Epoch != 2 || !e.Time.Equal(now) {
					t.Fatalf("event %+v: want epoch 2 at %v", e, now)
				}
			}
			if got[0] != "epoch" {
				t.Fatalf("first event %q, want the epoch line", got[0])
			}
			if tc.want != nil && kinds(got) != kinds(tc.want) {
				t.Fatalf("kinds %v, want %v:\n%s", got, tc.want, all)
			}
			if !strings.Contains(all, tc.text) {
				t.Fatalf("no %q in:\n%s", tc.text, all)
			}
		})
	}
}

// TestDiffRingsSameEpoch: no change, no event.
func TestDiffRingsSameEpoch(t *testing.T) {
	m := ringOf(t, shardmap.DefaultDoc(testMembers))
	if evs := diffRings(m, m, testShards(t), time.Now()); len(evs) != 0 {
		t.Fatalf("events %+v", evs)
	}
	if evs := diffRings(nil, m, testShards(t), time.Now()); len(evs) != 0 {
		t.Fatalf("events %+v without a ring before", evs)
	}
}

// TestDiffRingsFailoverAndLeave tells a member that left without being
// drained (a failover) from one that was drained first.
func TestDiffRingsFailoverAndLeave(t *testing.T) {
	base := shardmap.DefaultDoc(testMembers)
	gone := base.Clone()
	gone.Epoch, gone.Members = 2, gone.Members[:2]
	evs := diffRings(ringOf(t, base), ringOf(t, gone), testShards(t), time.Now())
	if evs[1].Kind != "failover" || evs[1].Node != "m3" {
		t.Fatalf("undrained member gone: %+v", evs)
	}
	drained := base.Clone()
	drained.Drained = []string{"m3"}
	evs = diffRings(ringOf(t, drained), ringOf(t, gone), testShards(t), time.Now())
	if evs[1].Kind != "leave" {
		t.Fatalf("drained member gone: %+v", evs)
	}
}

// TestDiffRingsMergeNamesTheTop: merging a cell split twice removes two
// levels of splits; the timeline names the merged cell once.
func TestDiffRingsMergeNamesTheTop(t *testing.T) {
	top := testShards(t)[0]
	child := top.ImmediateChildren()[0]
	split := shardmap.DefaultDoc(testMembers)
	split.Splits = []shardmap.Cell{top, child}
	merged := split.Clone()
	merged.Epoch, merged.Splits = 2, nil
	evs := diffRings(ringOf(t, split), ringOf(t, merged), nil, time.Now())
	var merges []string
	for _, e := range evs {
		if e.Kind == "merge" {
			merges = append(merges, e.Cell)
		}
	}
	if len(merges) != 1 || merges[0] != top.String() {
		t.Fatalf("merge events %v, want one of %s", merges, top)
	}
}

// TestDiffRingsBoundsMoves: a change that moves many shards lists
// maxMovesPerChange and sums up the rest.
func TestDiffRingsBoundsMoves(t *testing.T) {
	many := h3.LatLngToCell(h3.NewLatLng(40.758, -73.9855), 7).GridDisk(8) // 217 shards
	base := shardmap.DefaultDoc(testMembers)
	drained := base.Clone()
	drained.Epoch, drained.Drained = 2, []string{"m1"}
	evs := diffRings(ringOf(t, base), ringOf(t, drained), many, time.Now())
	moves := 0
	var last string
	for _, e := range evs {
		if e.Kind == "move" {
			moves++
			last = e.Text
		}
	}
	if moves != maxMovesPerChange+1 || !strings.HasPrefix(last, "and ") || !strings.Contains(last, "m1 → ") {
		t.Fatalf("%d move events, the last %q", moves, last)
	}
	if !strings.Contains(evs[0].Text, "shown shards changed owner") {
		t.Fatalf("epoch line %q", evs[0].Text)
	}
}

// TestTimelineBound keeps the newest events.
func TestTimelineBound(t *testing.T) {
	tl := timeline{max: 3}
	for i := range 5 {
		tl.add(eventN(i))
	}
	got := tl.list()
	if len(got) != 3 || got[0].Text != "e2" || got[2].Text != "e4" {
		t.Fatalf("timeline %+v", got)
	}
}

func eventN(i int) mapview.Event { return mapview.Event{Text: fmt.Sprintf("e%d", i)} }

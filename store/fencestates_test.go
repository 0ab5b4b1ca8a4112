package store

import (
	"math/rand/v2"
	"slices"
	"strconv"
	"testing"
)

// TestStateTableMatchesAMap: random saves against a plain map of states;
// every state reads back the same, and the interned sets are exactly the
// distinct ones in use (none leaked, none shared wrongly).
func TestStateTableMatchesAMap(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	table := newStateTable()
	want := map[string]FenceState{}
	fences := []string{"airport", "stadium", "zone-a", "zone-b", "\x01online"}
	for step := range 20_000 {
		id := "d" + strconv.Itoa(rng.IntN(200))
		var ids []string
		for _, f := range fences {
			if rng.IntN(3) == 0 {
				ids = append(ids, f)
			}
		}
		slices.Sort(ids)
		s := FenceState{TimestampMs: int64(rng.IntN(step + 1)), IDs: ids}
		table.save(id, s)
		if cur, ok := want[id]; !ok || cur.TimestampMs <= s.TimestampMs {
			if len(ids) == 0 {
				delete(want, id)
			} else {
				want[id] = FenceState{TimestampMs: s.TimestampMs, IDs: slices.Clone(ids)}
			}
		}
		if len(ids) > 0 {
			ids[0] = "mutated by the caller" // the table keeps its own copy
		}
	}
	if len(table.drivers) != len(want) {
		t.Fatalf("table holds %d drivers, want %d", len(table.drivers), len(want))
	}
	inUse := map[string]int32{}
	for id, w := range want {
		got, ok := table.get(id)
		if !ok || got.TimestampMs != w.TimestampMs || !slices.Equal(got.IDs, w.IDs) {
			t.Fatalf("state of %s = %v, %v; want %v", id, got, ok, w)
		}
		inUse[string(table.setKey(w.IDs))]++
	}
	if len(table.byKey) != len(inUse) {
		t.Fatalf("%d sets interned, %d in use", len(table.byKey), len(inUse))
	}
	for k, n := range table.byKey {
		if table.sets[n].refs != inUse[k] {
			t.Fatalf("set %q has %d references, %d drivers use it", k, table.sets[n].refs, inUse[k])
		}
	}
	// Deleting every driver frees every set.
	for id := range want {
		table.save(id, FenceState{TimestampMs: 1 << 40})
	}
	if len(table.drivers) != 0 || len(table.byKey) != 0 || len(table.free) != len(table.sets) {
		t.Fatalf("after deleting all: %d drivers, %d sets interned, %d of %d free", len(table.drivers), len(table.byKey), len(table.free), len(table.sets))
	}
}

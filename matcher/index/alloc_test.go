package index

import (
	"math/rand/v2"
	"runtime"
	"testing"

	"github.com/geomatch/geomatch/internal/geo"
)

// TestAllocationBudgets checks the budgets stated in the docs of Nearby and
// Apply: no allocation per call once warmed up.
func TestAllocationBudgets(t *testing.T) {
	if raceEnabled {
		t.Skip("allocation counts are meaningless under the race detector")
	}
	ix := buildIndex(t, 20_000, nyc)
	queries := benchQueries(64, nyc)
	dst := make([]Neighbor, 0, 10)
	// sync.Pool keeps items per P: warm up on the single P that
	// AllocsPerRun measures on, after a GC (which empties pools).
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(1))
	runtime.GC()
	for _, bq := range queries { // warm the pools, one per tree in the R-tree package
		dst = ix.Nearby(bq.q, 2000, 10, bq.shards, Filter{Status: StatusAvailable}, dst[:0])
	}
	i := 0
	nearby := testing.AllocsPerRun(500, func() {
		bq := &queries[i%len(queries)]
		dst = ix.Nearby(bq.q, 2000, 10, bq.shards, Filter{Status: StatusAvailable}, dst[:0])
		i++
	})
	if nearby > 0.05 { // a GC may empty a pool now and then
		t.Errorf("Nearby: %.2f allocations per call, budget 0", nearby)
	}

	r := rand.New(rand.NewPCG(1, 1))
	d := ix.ShardDrivers(ix.Shards()[0].Shard)[0]
	one := []Update{{ID: d.ID, Pos: d.Pos, TimestampMs: d.TimestampMs, Shard: d.Shard}}
	res := make([]Result, 1)
	apply := testing.AllocsPerRun(500, func() {
		one[0].TimestampMs++
		one[0].Pos = geo.LatLng{Lat: d.Pos.Lat + (r.Float64()-0.5)*1e-6, Lng: d.Pos.Lng}
		ix.Apply(one, res)
	})
	if apply > 0.05 {
		t.Errorf("Apply of a known driver: %.2f allocations per call, budget 0", apply)
	}
}

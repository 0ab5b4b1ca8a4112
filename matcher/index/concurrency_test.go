package index

import (
	"math"
	"math/rand/v2"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/uber/h3-go/v4"

	"github.com/geomatch/geomatch/internal/geo"
)

// TestConcurrentApplyNearbyExpire runs writers (Apply with cross-shard moves,
// Remove, Evict, Expire, DropShard) against readers (Nearby, Get, Shards)
// and checks every answer is well-formed while it runs: sorted, no driver
// twice, within the radius and k, distances exact for the positions
// returned, filters respected. Afterwards the index must equal the oracle.
func TestConcurrentApplyNearbyExpire(t *testing.T) {
	ix, clk := newTestIndex(t, 2*time.Second, 0)
	const drivers = 2000
	box := func(r *rand.Rand) geo.LatLng {
		return geo.LatLng{Lat: 40.70 + 0.1*r.Float64(), Lng: -74.0 + 0.1*r.Float64()}
	}
	cells := h3.GridDisk(cellOf(geo.LatLng{Lat: 40.75, Lng: -73.95}, 7), 4)
	rounds := 300
	if testing.Short() {
		rounds = 60
	}

	var stop atomic.Bool
	var failed atomic.Value
	fail := func(msg string) {
		failed.CompareAndSwap(nil, msg)
		stop.Store(true)
	}
	var writers, readers sync.WaitGroup
	writers.Add(2)
	go func() { // updates
		defer writers.Done()
		r := rand.New(rand.NewPCG(1, 1))
		batch := make([]Update, 64)
		res := make([]Result, 64)
		for round := 0; round < rounds && !stop.Load(); round++ {
			for i := range batch {
				p := box(r)
				batch[i] = Update{
					ID:           "d" + strconv.Itoa(r.IntN(drivers)),
					Pos:          p,
					TimestampMs:  int64(round*100 + i),
					Status:       Status(r.IntN(5)),
					VehicleClass: testClasses[r.IntN(len(testClasses))],
					Shard:        cellOf(p, 7),
				}
			}
			ix.Apply(batch, res)
			for i := range batch {
				if res[i].Outcome == OutcomeFull || res[i].Outcome == OutcomeInvalid {
					fail("unexpected outcome " + res[i].Outcome.String())
				}
			}
		}
	}()
	go func() { // removals and expiry
		defer writers.Done()
		r := rand.New(rand.NewPCG(2, 2))
		for round := 0; round < rounds && !stop.Load(); round++ {
			id := "d" + strconv.Itoa(r.IntN(drivers))
			switch round % 4 {
			case 0:
				ix.Remove(id)
			case 1:
				ix.Evict(id, int64(round*100))
			case 2:
				clk.Advance(100 * time.Millisecond)
				ix.Expire()
			case 3:
				if round%40 == 3 {
					ix.DropShard(cells[r.IntN(len(cells))])
				}
			}
		}
	}()
	for g := range 3 {
		readers.Add(1)
		go func() {
			defer readers.Done()
			r := rand.New(rand.NewPCG(uint64(10+g), 3))
			var dst []Neighbor
			for !stop.Load() {
				q := box(r)
				radius := 500 + 5000*r.Float64()
				k := 1 + r.IntN(50)
				f := randomFilter(r, testClasses)
				dst = ix.Nearby(q, radius, k, cells, f, dst[:0])
				if msg := wellFormed(dst, q, radius, k, f); msg != "" {
					fail(msg)
				}
				if d, ok := ix.Get("d" + strconv.Itoa(r.IntN(drivers))); ok && d.Shard != cellOf(d.Pos, 7) {
					fail("Get returned a driver under the wrong shard")
				}
				ix.Shards()
			}
		}()
	}
	writers.Wait()
	stop.Store(true)
	readers.Wait()
	if msg := failed.Load(); msg != nil {
		t.Fatal(msg)
	}

	// At rest the index must be exact again.
	m := model{}
	for _, st := range ix.Shards() {
		for _, d := range ix.ShardDrivers(st.Shard) {
			if _, dup := m[d.ID]; dup {
				t.Fatalf("driver %s in two shards", d.ID)
			}
			m[d.ID] = d
		}
	}
	if len(m) != ix.Len() {
		t.Fatalf("shards hold %d drivers, Len says %d", len(m), ix.Len())
	}
	r := rand.New(rand.NewPCG(5, 5))
	all := shardCells(ix)
	for range 200 {
		q, radius, k, f := box(r), randomRadius(r), randomK(r), randomFilter(r, testClasses)
		got := ix.Nearby(q, radius, k, all, f, nil)
		if diff := sameAnswer(m, got, m.brute(q, radius, k, f)); diff != "" {
			t.Fatalf("at rest (q=%v r=%v k=%d f=%+v): %s", q, radius, k, f, diff)
		}
	}
}

// wellFormed checks what any answer must satisfy, even one racing writes.
func wellFormed(ns []Neighbor, q geo.LatLng, radius float64, k int, f Filter) string {
	if len(ns) > k {
		return "more than k results"
	}
	seen := make(map[string]bool, len(ns))
	for i, n := range ns {
		if seen[n.Driver.ID] {
			return "driver " + n.Driver.ID + " twice"
		}
		seen[n.Driver.ID] = true
		if n.DistanceM > radius || n.DistanceM != geo.DistanceM(q, n.Driver.Pos) || math.IsNaN(n.DistanceM) {
			return "bad distance for " + n.Driver.ID
		}
		if !passes(n.Driver, f) {
			return "driver " + n.Driver.ID + " does not pass the filter"
		}
		if i > 0 && compareNeighbors(ns[i-1], n) >= 0 {
			return "not sorted"
		}
	}
	return ""
}

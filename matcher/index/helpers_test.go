package index

import (
	"math"
	"math/rand/v2"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/uber/h3-go/v4"

	"github.com/geomatch/geomatch/internal/geo"
)

// fakeClock is a settable clock for TTL tests.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func newFakeClock() *fakeClock { return &fakeClock{t: time.Unix(1_700_000_000, 0)} }

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// newTestIndex returns an index on a fake clock with the given TTL and
// bound (zero: defaults).
func newTestIndex(t testing.TB, ttl time.Duration, maxDrivers int) (*Index, *fakeClock) {
	t.Helper()
	clk := newFakeClock()
	ix, err := New(Config{TTL: ttl, MaxDrivers: maxDrivers, Now: clk.Now})
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return ix, clk
}

// cellOf is the shard of p at resolution res.
func cellOf(p geo.LatLng, res int) h3.Cell {
	return h3.LatLngToCell(h3.LatLng{Lat: p.Lat, Lng: p.Lng}, res)
}

// apply1 applies one update and returns its result.
func apply1(ix *Index, u Update) Result {
	var r [1]Result
	ix.Apply([]Update{u}, r[:])
	return r[0]
}

// shardCells lists the shards of ix.
func shardCells(ix *Index) []h3.Cell {
	var cells []h3.Cell
	for _, s := range ix.Shards() {
		cells = append(cells, s.Shard)
	}
	return cells
}

// model is what the test believes the index holds: live drivers by id.
type model map[string]Driver

// brute is the oracle: geo.NearestBrute over the model's drivers that pass f.
func (m model) brute(q geo.LatLng, radiusM float64, k int, f Filter) []geo.Hit {
	pts := make([]geo.Point, 0, len(m))
	for _, d := range m {
		if passes(d, f) {
			pts = append(pts, geo.Point{ID: d.ID, Pos: d.Pos})
		}
	}
	return geo.NearestBrute(pts, q, radiusM, k)
}

func passes(d Driver, f Filter) bool {
	if f.Status == StatusUnspecified {
		if d.Status == StatusOffline {
			return false
		}
	} else if d.Status != f.Status {
		return false
	}
	return f.VehicleClass == "" || d.VehicleClass == f.VehicleClass
}

// sameAnswer reports the first difference between Nearby's answer and the
// oracle's, or "" if they are identical (ids, order, bit-equal distances and
// positions), and checks each neighbor against the model.
func sameAnswer(m model, got []Neighbor, want []geo.Hit) string {
	if len(got) != len(want) {
		return "length " + itoa(len(got)) + ", want " + itoa(len(want)) + firstDiff(got, want)
	}
	for i := range want {
		g, w := got[i], want[i]
		if g.Driver.ID != w.ID || math.Float64bits(g.DistanceM) != math.Float64bits(w.DistanceM) || g.Driver.Pos != w.Pos {
			return "at " + itoa(i) + ": got " + g.Driver.ID + " " + ftoa(g.DistanceM) + ", want " + w.ID + " " + ftoa(w.DistanceM)
		}
		if md := m[g.Driver.ID]; md != g.Driver {
			return "at " + itoa(i) + ": driver " + g.Driver.ID + " is not the model's copy"
		}
	}
	return ""
}

func firstDiff(got []Neighbor, want []geo.Hit) string {
	for i := 0; i < len(got) && i < len(want); i++ {
		if got[i].Driver.ID != want[i].ID {
			return "; first difference at " + itoa(i) + ": " + got[i].Driver.ID + " vs " + want[i].ID
		}
	}
	return ""
}

func itoa(i int) string { return strconv.Itoa(i) }

func ftoa(f float64) string { return strconv.FormatFloat(f, 'g', -1, 64) }

// randomFilter picks a filter among statuses and the classes (or an unknown
// class, rarely).
func randomFilter(r *rand.Rand, classes []string) Filter {
	var f Filter
	if r.IntN(2) == 0 {
		f.Status = Status(r.IntN(int(StatusOffline) + 1))
	}
	switch n := r.IntN(8); {
	case n < 4:
	case n == 7:
		f.VehicleClass = "hovercraft"
	default:
		f.VehicleClass = classes[r.IntN(len(classes))]
	}
	return f
}

// randomK is log-uniform in [1, 1000].
func randomK(r *rand.Rand) int { return int(math.Pow(1000, r.Float64())) }

// randomRadius is 0 now and then, else log-uniform up to 100 km.
func randomRadius(r *rand.Rand) float64 {
	if r.IntN(20) == 0 {
		return 0
	}
	return math.Pow(10, 1+4*r.Float64())
}

func sortedIDs(m model) []string {
	ids := make([]string, 0, len(m))
	for id := range m {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	return ids
}

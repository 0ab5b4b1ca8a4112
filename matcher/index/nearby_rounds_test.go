package index

import (
	"math/rand/v2"
	"strconv"
	"testing"

	"github.com/geomatch/geomatch/internal/geo"
)

// TestNearbyRoundsMatchBrute stresses the growing rounds of Nearby: a dense
// cluster makes the first reach far too small for queries outside it, and
// rare filters make rounds find fewer than k matches, so searches take
// several rounds; answers must still equal the brute force bit for bit.
func TestNearbyRoundsMatchBrute(t *testing.T) {
	drivers, queries := 20000, 400
	if testing.Short() {
		drivers, queries = 5000, 100
	}
	r := rand.New(rand.NewPCG(11, 12))
	ix, _ := newTestIndex(t, 0, 0)
	m := model{}
	center := geo.LatLng{Lat: 48.85, Lng: 2.35}
	for i := range drivers {
		p := geo.LatLng{Lat: center.Lat + (r.Float64()-0.5)*0.4, Lng: center.Lng + (r.Float64()-0.5)*0.6}
		if i%10 != 0 { // most in a cluster of about 100 m
			p = geo.LatLng{Lat: center.Lat + (r.Float64()-0.5)*0.001, Lng: center.Lng + (r.Float64()-0.5)*0.0015}
		}
		status := StatusAvailable
		if r.IntN(50) != 0 {
			status = StatusOnTrip
		}
		id := "d" + strconv.Itoa(i)
		u := Update{ID: id, Pos: p, TimestampMs: 1, Status: status, VehicleClass: testClasses[r.IntN(len(testClasses))], Shard: cellOf(p, 7)}
		if res := apply1(ix, u); res.Outcome != OutcomeApplied {
			t.Fatalf("apply %s: %v", id, res.Outcome)
		}
		m[id] = Driver{ID: id, Pos: p, TimestampMs: 1, Status: status, VehicleClass: u.VehicleClass, Shard: u.Shard}
	}
	cells := shardCells(ix)
	var dst []Neighbor
	for qi := range queries {
		q := geo.LatLng{Lat: center.Lat + (r.Float64()-0.5)*0.5, Lng: center.Lng + (r.Float64()-0.5)*0.7}
		if qi%3 == 0 { // at the cluster's edge
			q = geo.LatLng{Lat: center.Lat + (r.Float64()-0.5)*0.004, Lng: center.Lng + (r.Float64()-0.5)*0.006}
		}
		k := []int{1, 2, 5, 10, 40}[r.IntN(5)]
		radius := []float64{300, 3000, 30000, 1e9}[r.IntN(4)]
		f := Filter{}
		switch r.IntN(3) {
		case 0:
			f.Status = StatusAvailable // 1 in 50
		case 1:
			f = randomFilter(r, testClasses)
		}
		dst = ix.Nearby(q, radius, k, cells, f, dst[:0])
		if diff := sameAnswer(m, dst, m.brute(q, radius, k, f)); diff != "" {
			t.Fatalf("query %d (q=%v r=%v k=%d f=%+v): %s", qi, q, radius, k, f, diff)
		}
	}
}

package dispatch_test

import (
	"sync"
	"testing"
	"time"

	"github.com/uber/h3-go/v4"

	"github.com/geomatch/geomatch/cluster"
	"github.com/geomatch/geomatch/dispatch"
	"github.com/geomatch/geomatch/internal/geo"
	geomatchv1 "github.com/geomatch/geomatch/proto/geomatch/v1"
	"github.com/geomatch/geomatch/shardmap"
)

// crossing is the classic case where first-come greedy is worse: on one
// street (inside one shard, so both requests share a batch), D0 at 0 m, D1
// at 400 m; rider R0 at 220 m asks first and greedy gives it the nearer D1
// (180 m), leaving R1 at 500 m with D0 (500 m): 680 m in all. The optimum
// is R0–D0 (220) and R1–D1 (100): 320 m.
func crossing(t *testing.T, mode dispatch.Mode) float64 {
	cfg := dispatch.DefaultConfig()
	cfg.Mode, cfg.BatchWindow = mode, 400*time.Millisecond
	c := start(t, cluster.DevConfig{Matchers: 1, Dispatch: cfg})
	center := h3.LatLngToCell(h3.LatLng{Lat: 40.7, Lng: -74.0}, shardmap.DefaultShardRes).LatLng()
	base := offset(geo.LatLng{Lat: center.Lat, Lng: center.Lng}, -0.25)
	c.place(t, map[string]geo.LatLng{"D0": base, "D1": offset(base, 0.4)}, "")
	c.connect(t, "D0", always(true), nil)
	c.connect(t, "D1", always(true), nil)
	ask := func(id string, km float64) *geomatchv1.Trip {
		tr, err := c.riders.RequestRide(ctxT(t, 20*time.Second), rideReq(id, id, offset(base, km), 10000))
		if err != nil {
			t.Fatal(err)
		}
		return tr
	}
	var trips []*geomatchv1.Trip
	if mode == dispatch.Greedy {
		trips = append(trips, ask("R0", 0.22), ask("R1", 0.5)) // R0 first
	} else {
		var wg sync.WaitGroup
		trips = make([]*geomatchv1.Trip, 2)
		for i, km := range []float64{0.22, 0.5} {
			wg.Add(1)
			go func() { defer wg.Done(); trips[i] = ask([]string{"R0", "R1"}[i], km) }()
		}
		wg.Wait()
	}
	total := 0.0
	for _, tr := range trips {
		if tr.GetState() != geomatchv1.TripState_TRIP_STATE_ASSIGNED {
			t.Fatalf("%s mode: trip %v not assigned", mode, tr)
		}
		total += tr.GetPickupDistanceM()
	}
	t.Logf("%s: R0→%s, R1→%s, total pickup distance %.0f m", mode, trips[0].GetDriverId(), trips[1].GetDriverId(), total)
	return total
}

// TestBatchBeatsGreedyOnCrossing: batch mode assigns the crossing case with
// the lower total pickup distance.
func TestBatchBeatsGreedyOnCrossing(t *testing.T) {
	greedy := crossing(t, dispatch.Greedy)
	batch := crossing(t, dispatch.Batch)
	if greedy < 670 || greedy > 690 {
		t.Fatalf("greedy total %.0f m, want ~680", greedy)
	}
	if batch < 310 || batch > 330 {
		t.Fatalf("batch total %.0f m, want ~320", batch)
	}
}

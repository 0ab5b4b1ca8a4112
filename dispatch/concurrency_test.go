package dispatch_test

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/geomatch/geomatch/cluster"
	"github.com/geomatch/geomatch/dispatch"
	"github.com/geomatch/geomatch/internal/geo"
	"github.com/geomatch/geomatch/internal/redistest"
	geomatchv1 "github.com/geomatch/geomatch/proto/geomatch/v1"
	"github.com/geomatch/geomatch/shardmap"
	"github.com/geomatch/geomatch/store"
)

// stormResult is what one storm of requests produced.
type stormResult struct {
	trips []*geomatchv1.Trip
}

// storm: 200 concurrent RequestRide calls for 50 available drivers spread
// over Midtown (several shards and nodes), drivers accepting at random
// after a short think; midway, change (if not nil) moves the ring.
func storm(t *testing.T, c *testCluster, change func(pos map[string]geo.LatLng)) stormResult {
	const drivers, riders = 50, 200
	r := newRand(42)
	pos := map[string]geo.LatLng{}
	for i := 0; i < drivers; i++ {
		pos[name("drv", i)] = geo.LatLng{Lat: midtown.Lat + (r.Float64()-0.5)*0.04, Lng: midtown.Lng + (r.Float64()-0.5)*0.05}
	}
	c.place(t, pos, "")
	var mu sync.Mutex
	for i := 0; i < drivers; i++ {
		seed := uint64(i)
		rr := newRand(seed)
		c.connect(t, name("drv", i), func(*geomatchv1.RideOffer) bool {
			mu.Lock()
			defer mu.Unlock()
			return rr.Float64() < 0.7
		}, func() time.Duration {
			mu.Lock()
			defer mu.Unlock()
			return time.Duration(rr.IntN(50)) * time.Millisecond
		})
	}
	res := stormResult{trips: make([]*geomatchv1.Trip, riders)}
	var wg sync.WaitGroup
	var started atomic.Int32
	for i := 0; i < riders; i++ {
		p := geo.LatLng{Lat: midtown.Lat + (r.Float64()-0.5)*0.04, Lng: midtown.Lng + (r.Float64()-0.5)*0.05}
		wg.Add(1)
		go func() {
			defer wg.Done()
			started.Add(1)
			tr, err := c.riders.RequestRide(ctxT(t, 60*time.Second), rideReq(fmt.Sprintf("storm-%d", i), name("rider", i), p, 30000))
			if err != nil {
				t.Errorf("request %d: %v", i, err)
				return
			}
			res.trips[i] = tr
		}()
	}
	if change != nil {
		eventually(t, 10*time.Second, "requests under way", func() bool { return started.Load() == riders })
		time.Sleep(50 * time.Millisecond)
		change(pos)
	}
	wg.Wait()
	return res
}

// checkStorm: every trip is assigned or ended, no driver holds two trips,
// and the store agrees with the trips.
func checkStorm(t *testing.T, c *testCluster, res stormResult) {
	t.Helper()
	byDriver := map[string]string{}
	counts := map[geomatchv1.TripState]int{}
	for i, tr := range res.trips {
		if tr == nil {
			continue // already reported
		}
		// Re-read: the RequestRide answer may predate the final state.
		got, err := c.riders.GetTrip(ctxT(t, 5*time.Second), &geomatchv1.GetTripRequest{TripId: tr.GetTripId()})
		if err != nil {
			t.Fatalf("trip %d: %v", i, err)
		}
		counts[got.GetState()]++
		switch got.GetState() {
		case geomatchv1.TripState_TRIP_STATE_ASSIGNED:
			if other, dup := byDriver[got.GetDriverId()]; dup {
				t.Fatalf("driver %s holds two trips: %s and %s", got.GetDriverId(), other, got.GetTripId())
			}
			byDriver[got.GetDriverId()] = got.GetTripId()
		case geomatchv1.TripState_TRIP_STATE_NO_DRIVER, geomatchv1.TripState_TRIP_STATE_CANCELLED:
		default:
			t.Fatalf("trip %s is %v, want assigned or ended", got.GetTripId(), got.GetState())
		}
	}
	total := 0
	for _, n := range counts {
		total += n
	}
	if total != len(res.trips) {
		t.Fatalf("%d trips accounted for, want %d", total, len(res.trips))
	}
	for i := 0; i < 50; i++ {
		id := name("drv", i)
		d, err := c.Store.Driver(context.Background(), id)
		if err != nil {
			t.Fatal(err)
		}
		tripID, assigned := byDriver[id]
		switch {
		case assigned && (d.Status != store.StatusOnTrip || d.TripID != tripID):
			t.Fatalf("driver %s is assigned %s but its record says %+v", id, tripID, d)
		case !assigned && d.Status == store.StatusOnTrip:
			t.Fatalf("driver %s is on trip %s that is not assigned to it", id, d.TripID)
		}
	}
	t.Logf("200 requests, 50 drivers: %d assigned, %d no_driver, %d cancelled",
		counts[geomatchv1.TripState_TRIP_STATE_ASSIGNED], counts[geomatchv1.TripState_TRIP_STATE_NO_DRIVER], counts[geomatchv1.TripState_TRIP_STATE_CANCELLED])
	if counts[geomatchv1.TripState_TRIP_STATE_ASSIGNED] == 0 {
		t.Fatal("no trip was assigned")
	}
}

func stormConfig() dispatch.Config {
	cfg := dispatch.DefaultConfig()
	cfg.OfferTimeout = 2 * time.Second
	cfg.MaxOffers = 5
	return cfg
}

// TestConcurrentRequestsNeverDoubleAssign is the matching safety property
// on the in-memory store, with a steady ring and with the ring changing
// mid-storm.
func TestConcurrentRequestsNeverDoubleAssign(t *testing.T) {
	t.Run("steady", func(t *testing.T) {
		c := start(t, cluster.DevConfig{Matchers: 3, Dispatch: stormConfig()})
		checkStorm(t, c, storm(t, c, nil))
	})
	t.Run("ring-change", func(t *testing.T) {
		c := start(t, cluster.DevConfig{Matchers: 3, Dispatch: stormConfig()})
		checkStorm(t, c, storm(t, c, drainM1(t, c)))
	})
}

// drainM1 returns a mid-storm ring change: m1 is drained (its shards and
// their rides move to m2 and m3) and the drivers report again.
func drainM1(t *testing.T, c *testCluster) func(pos map[string]geo.LatLng) {
	return func(pos map[string]geo.LatLng) {
		if _, err := c.Membership.Update(func(d *shardmap.Doc) error {
			d.Drained = []string{"m1"}
			return nil
		}); err != nil {
			t.Error(err)
		}
		// m1's drivers report again, now to the shards' new owners (shard
		// handoff will do this without the drivers' help).
		c.place(t, pos, "")
	}
}

// TestConcurrentRequestsNeverDoubleAssignRedis: the same on a real Redis,
// with the ring changing (a matcher drained, so its shards and their rides
// move) in the middle of the storm.
func TestConcurrentRequestsNeverDoubleAssignRedis(t *testing.T) {
	addr := redistest.Start(t)
	st, err := store.NewRedis(context.Background(), store.RedisOptions{Addr: addr})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() }) // after the cluster stops
	c := start(t, cluster.DevConfig{Matchers: 3, Dispatch: stormConfig(), Store: st})
	checkStorm(t, c, storm(t, c, drainM1(t, c)))
}

package main

import (
	"fmt"
	"regexp"
	"testing"
	"time"

	geomatchv1 "github.com/geomatch/geomatch/proto/geomatch/v1"
)

// TestDriverCompletesARide: `geomatch driver` against `geomatch dev`
// takes a ride end to end: a rider requests it, the driver process prints
// the offer, accepts it, drives to the pickup and the drop-off, reports
// both, and exits after --max-trips 1; the trip reads COMPLETED.
func TestDriverCompletesARide(t *testing.T) {
	dev := start(t, "geomatch dev", "dev", "--listen", "127.0.0.1:0", "--matchers", "2")
	addr := dev.waitFor(listening, 20*time.Second)[1]
	drv := start(t, "geomatch driver", "driver", "--target", addr, "--id", "cab-7", "--at", "40.7580,-73.9855",
		"--every", "100ms", "--speed-kmh", "200", "--max-trips", "1", "--duration", "60s")
	drv.waitFor(regexp.MustCompile(`cab-7: connected as cab-7`), 10*time.Second)

	riders := geomatchv1.NewRiderServiceClient(dial(t, addr))
	var trip *geomatchv1.Trip
	deadline := time.Now().Add(20 * time.Second)
	for i := 0; ; i++ {
		// The driver's first position may still be on its way: ask again
		// until a driver is found.
		var err error
		trip, err = riders.RequestRide(ctxFor(t, 15*time.Second), &geomatchv1.RequestRideRequest{
			RequestId: fmt.Sprintf("r-%d", i), RiderId: "rider-1",
			Pickup:  &geomatchv1.LatLng{Lat: 40.7590, Lng: -73.9845},
			Dropoff: &geomatchv1.LatLng{Lat: 40.7620, Lng: -73.9800},
			WaitMs:  10000,
		})
		if err != nil {
			t.Fatalf("RequestRide: %v", err)
		}
		if trip.GetState() == geomatchv1.TripState_TRIP_STATE_ASSIGNED || time.Now().After(deadline) {
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
	if trip.GetState() != geomatchv1.TripState_TRIP_STATE_ASSIGNED || trip.GetDriverId() != "cab-7" {
		t.Fatalf("trip %s is %s with driver %q, want ASSIGNED to cab-7 (%s)", trip.GetTripId(), trip.GetState(), trip.GetDriverId(), trip.GetReason())
	}
	id := regexp.QuoteMeta(trip.GetTripId())
	drv.waitFor(regexp.MustCompile(`offer \S+: trip `+id+`, pickup`), 5*time.Second)
	drv.waitFor(regexp.MustCompile(`at the pickup of trip `+id+`: picked up`), 20*time.Second)
	drv.waitFor(regexp.MustCompile(`at the drop-off of trip `+id+`: completed`), 20*time.Second)
	drv.waitFor(regexp.MustCompile(`done: 1 trips completed`), 10*time.Second)
	select {
	case <-drv.done:
		if drv.err != nil {
			t.Fatalf("geomatch driver exited with %v", drv.err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("geomatch driver did not exit after its trip")
	}
	got, err := riders.GetTrip(ctxFor(t, 5*time.Second), &geomatchv1.GetTripRequest{TripId: trip.GetTripId()})
	if err != nil {
		t.Fatal(err)
	}
	if got.GetState() != geomatchv1.TripState_TRIP_STATE_COMPLETED {
		t.Fatalf("trip %s is %s after the driver completed it", got.GetTripId(), got.GetState())
	}
	dev.stop(15 * time.Second)
}

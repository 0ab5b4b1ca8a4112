package main

import (
	"context"
	"testing"
	"time"

	"github.com/geomatch/geomatch/internal/redistest"
	geomatchv1 "github.com/geomatch/geomatch/proto/geomatch/v1"
	"github.com/geomatch/geomatch/store"
)

// driverApp is a minimal driver app: it connects, and answers every offer
// with accept (or never, when silent).
func driverApp(t *testing.T, drivers geomatchv1.DriverServiceClient, id string, accept bool) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	stream, err := drivers.Connect(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := stream.Send(&geomatchv1.DriverMessage{Msg: &geomatchv1.DriverMessage_Hello{Hello: &geomatchv1.DriverHello{DriverId: id}}}); err != nil {
		t.Fatal(err)
	}
	if _, err := stream.Recv(); err != nil {
		t.Fatalf("connect %s: %v", id, err)
	}
	go func() {
		for {
			ev, err := stream.Recv()
			if err != nil {
				return
			}
			if off := ev.GetOffer(); off != nil && accept {
				stream.Send(&geomatchv1.DriverMessage{Msg: &geomatchv1.DriverMessage_OfferAnswer{OfferAnswer: &geomatchv1.OfferAnswer{
					OfferId: off.GetOfferId(), TripId: off.GetTrip().GetTripId(), Accept: true}}})
			}
		}
	}()
}

// TestMatcherSIGKILLKeepsTripsAndFreesReservations kills the matcher that
// coordinates rides (and holds the reservations) with SIGKILL and restarts
// it on the same Redis: the assigned trip survives, the driver reserved for
// an unanswered offer becomes available again after its lease, and the
// restarted matcher finishes the orphaned trip.
func TestMatcherSIGKILLKeepsTripsAndFreesReservations(t *testing.T) {
	redisAddr := redistest.Start(t)
	addr := freeAddr(t, "127.0.0.2")
	peers := "m1=" + addr
	args := []string{"matcher", "--id", "m1", "--peers", peers, "--redis", redisAddr, "--offer-timeout", "1s", "--insecure-internal"}
	m1 := start(t, "matcher m1", args...)
	m1.waitFor(listening, 20*time.Second)
	rp := start(t, "router", "router", "--listen", "127.0.0.1:0", "--peers", peers, "--redis", redisAddr, "--auth=off", "--insecure-internal")
	conn := dial(t, rp.waitFor(listening, 20*time.Second)[1])
	drivers, riders := geomatchv1.NewDriverServiceClient(conn), geomatchv1.NewRiderServiceClient(conn)

	// The apps connect first: only drivers holding a stream are offered
	// rides (their updates through this router say so).
	driverApp(t, drivers, "taker", true)
	driverApp(t, drivers, "silent", false)
	now := time.Now().UnixMilli()
	resp, err := drivers.UpdateLocations(ctxFor(t, 10*time.Second), &geomatchv1.UpdateLocationsRequest{Updates: []*geomatchv1.LocationUpdate{
		{DriverId: "taker", Position: &geomatchv1.LatLng{Lat: 40.7581, Lng: -73.9855}, TimestampMs: now},
		{DriverId: "silent", Position: &geomatchv1.LatLng{Lat: 40.7600, Lng: -73.9855}, TimestampMs: now},
	}})
	if err != nil || resp.GetAccepted() != 2 {
		t.Fatalf("UpdateLocations: %v %v", resp, err)
	}
	pickup := &geomatchv1.LatLng{Lat: 40.7580, Lng: -73.9855}
	assigned, err := riders.RequestRide(ctxFor(t, 20*time.Second), &geomatchv1.RequestRideRequest{
		RequestId: "kept", RiderId: "r1", Pickup: pickup, Dropoff: pickup, WaitMs: 10000})
	if err != nil || assigned.GetState() != geomatchv1.TripState_TRIP_STATE_ASSIGNED || assigned.GetDriverId() != "taker" {
		t.Fatalf("first ride: %v %v, want assigned to taker", assigned, err)
	}
	// The second ride can only go to the silent driver: it stays offered.
	pending, err := riders.RequestRide(ctxFor(t, 20*time.Second), &geomatchv1.RequestRideRequest{
		RequestId: "pending", RiderId: "r2", Pickup: pickup, Dropoff: pickup, WaitMs: 300})
	if err != nil || pending.GetState() != geomatchv1.TripState_TRIP_STATE_OFFERED {
		t.Fatalf("second ride: %v %v, want offered", pending, err)
	}
	st, err := store.NewRedis(context.Background(), store.RedisOptions{Addr: redisAddr})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	if d, _ := st.Driver(context.Background(), "silent"); d.Status != store.StatusReserved {
		t.Fatalf("silent driver %+v, want reserved", d)
	}

	m1.kill()
	killed := time.Now()
	m1 = start(t, "matcher m1 (restarted)", args...)
	m1.waitFor(listening, 20*time.Second)

	got, err := riders.GetTrip(ctxFor(t, 10*time.Second), &geomatchv1.GetTripRequest{TripId: assigned.GetTripId()})
	if err != nil || got.GetState() != geomatchv1.TripState_TRIP_STATE_ASSIGNED || got.GetDriverId() != "taker" {
		t.Fatalf("assigned trip after the restart: %v %v", got, err)
	}
	if d, _ := st.Driver(context.Background(), "taker"); d.Status != store.StatusOnTrip || d.TripID != assigned.GetTripId() {
		t.Fatalf("taker after the restart: %+v, want on its trip", d)
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		d, _ := st.Driver(context.Background(), "silent")
		p, _ := riders.GetTrip(ctxFor(t, 5*time.Second), &geomatchv1.GetTripRequest{TripId: pending.GetTripId()})
		if d.Status == store.StatusAvailable && p.GetState() == geomatchv1.TripState_TRIP_STATE_NO_DRIVER {
			t.Logf("reserved driver available and orphaned trip ended %v after the kill (%s)", time.Since(killed).Round(100*time.Millisecond), p.GetReason())
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("after the restart: silent driver %+v, pending trip %v", d, p)
		}
		time.Sleep(100 * time.Millisecond)
	}
	rp.stop(15 * time.Second)
	m1.stop(15 * time.Second)
}

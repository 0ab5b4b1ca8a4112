package client_test

import (
	"context"
	"fmt"
	"log"
	"time"

	"google.golang.org/grpc/status"

	"github.com/geomatch/geomatch/client"
	geomatchv1 "github.com/geomatch/geomatch/proto/geomatch/v1"
)

// A rider app looks for the drivers near a pickup. Here two drivers are
// put on the map first, with one batch call.
func ExampleConn_Nearby() {
	conn, err := client.Dial(routerAddr, client.Insecure()) // a loopback dev cluster; use WithCAFile and WithToken elsewhere
	if err != nil {
		log.Fatal(err)
	}
	defer conn.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	now := time.Now().UnixMilli()
	_, err = conn.UpdateLocations(ctx, []*geomatchv1.LocationUpdate{
		{DriverId: "lisbon-1", Position: &geomatchv1.LatLng{Lat: 38.7100, Lng: -9.1400}, TimestampMs: now},
		{DriverId: "lisbon-2", Position: &geomatchv1.LatLng{Lat: 38.7120, Lng: -9.1400}, TimestampMs: now},
	})
	if err != nil {
		log.Fatal(err)
	}
	resp, err := conn.Nearby(ctx, &geomatchv1.NearbyDriversRequest{
		Position: &geomatchv1.LatLng{Lat: 38.7101, Lng: -9.1400}, Limit: 5, RadiusM: 1000,
	})
	if err != nil {
		log.Fatal(err)
	}
	for _, d := range resp.GetDrivers() {
		fmt.Printf("%s %.0f m\n", d.GetDriverId(), d.GetDistanceM())
	}
	// Output:
	// lisbon-1 11 m
	// lisbon-2 211 m
}

// A driver app goes online: it opens a session, reports its position, and
// waits until the router has applied it.
func ExampleConn_ConnectDriver() {
	conn, err := client.Dial(routerAddr, client.Insecure())
	if err != nil {
		log.Fatal(err)
	}
	defer conn.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	sess, err := conn.ConnectDriver(ctx, client.DriverConfig{
		DriverID:     "oslo-1",
		VehicleClass: "xl",
		OnConnected:  func(ack *geomatchv1.ConnectAck) { fmt.Println("connected as", ack.GetDriverId()) },
		OnRejected:   func(r *geomatchv1.Rejection) { fmt.Println("not applied:", r.GetReason()) },
	})
	if err != nil {
		log.Fatal(err)
	}
	pos := &geomatchv1.LatLng{Lat: 59.9139, Lng: 10.7522}
	if err := sess.SendLocation(&geomatchv1.LocationUpdate{Position: pos, TimestampMs: time.Now().UnixMilli()}); err != nil {
		log.Fatal(err)
	}
	if err := sess.Flush(ctx); err != nil { // wait for the router's acknowledgement
		log.Fatal(err)
	}
	st := sess.Stats()
	fmt.Println("acknowledged:", st.Acked, "pending:", st.Pending)

	resp, err := conn.Nearby(ctx, &geomatchv1.NearbyDriversRequest{Position: pos, Limit: 1, RadiusM: 100, VehicleClass: "xl"})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("nearest:", resp.GetDrivers()[0].GetDriverId())
	if err := sess.Close(); err != nil {
		log.Fatal(err)
	}
	// Output:
	// connected as oslo-1
	// acknowledged: 1 pending: 0
	// nearest: oslo-1
}

// A ride end to end: a driver app that accepts every offer, a rider who
// requests a ride and waits for the assignment, and the driver reporting
// the pickup and the drop-off.
func ExampleConn_RequestRide() {
	conn, err := client.Dial(routerAddr, client.Insecure())
	if err != nil {
		log.Fatal(err)
	}
	defer conn.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	trips := make(chan *geomatchv1.Trip, 16)
	sess, err := conn.ConnectDriver(ctx, client.DriverConfig{
		DriverID: "rome-1",
		OnOffer: func(o *geomatchv1.RideOffer) bool {
			fmt.Printf("offer: pickup %.0f m away\n", o.GetPickupDistanceM())
			return true
		},
		OnTrip: func(t *geomatchv1.Trip) { trips <- t },
	})
	if err != nil {
		log.Fatal(err)
	}
	defer sess.Close()
	err = sess.SendLocation(&geomatchv1.LocationUpdate{
		Position: &geomatchv1.LatLng{Lat: 41.9000, Lng: 12.4960}, TimestampMs: time.Now().UnixMilli(),
		Status: geomatchv1.DriverStatus_DRIVER_STATUS_AVAILABLE,
	})
	if err != nil {
		log.Fatal(err)
	}
	if err := sess.Flush(ctx); err != nil {
		log.Fatal(err)
	}

	trip, err := conn.RequestRide(ctx, &geomatchv1.RequestRideRequest{
		RequestId: fmt.Sprintf("rome-%d", time.Now().UnixNano()), RiderId: "rider-9", // the idempotency key
		Pickup:  &geomatchv1.LatLng{Lat: 41.9009, Lng: 12.4960},
		Dropoff: &geomatchv1.LatLng{Lat: 41.8902, Lng: 12.4922},
		WaitMs:  10000, // wait for the assignment
	})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("rider:", trip.GetState(), "driver", trip.GetDriverId())

	// The driver hears of the assignment, picks the rider up and drops
	// them off; the router confirms each step.
	for want := geomatchv1.TripState_TRIP_STATE_ASSIGNED; ; {
		t := <-trips
		if t.GetTripId() != trip.GetTripId() || t.GetState() != want {
			continue // a repeat of an earlier state
		}
		fmt.Println("driver:", t.GetState())
		switch want {
		case geomatchv1.TripState_TRIP_STATE_ASSIGNED:
			want = geomatchv1.TripState_TRIP_STATE_PICKED_UP
		case geomatchv1.TripState_TRIP_STATE_PICKED_UP:
			want = geomatchv1.TripState_TRIP_STATE_COMPLETED
		default:
			final, err := conn.GetTrip(ctx, trip.GetTripId())
			if err != nil {
				log.Fatal(err)
			}
			fmt.Println("trip:", final.GetState())
			return
		}
		if err := sess.Progress(trip.GetTripId(), want); err != nil {
			log.Fatal(err)
		}
	}
	// Output:
	// offer: pickup 100 m away
	// rider: TRIP_STATE_ASSIGNED driver rome-1
	// driver: TRIP_STATE_ASSIGNED
	// driver: TRIP_STATE_PICKED_UP
	// driver: TRIP_STATE_COMPLETED
	// trip: TRIP_STATE_COMPLETED
}

// A dispatch back end asks many nearby questions over one stream; the
// answers are matched to the questions for you.
func ExampleNearbyStream() {
	conn, err := client.Dial(routerAddr, client.Insecure())
	if err != nil {
		log.Fatal(err)
	}
	defer conn.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	now := time.Now().UnixMilli()
	_, err = conn.UpdateLocations(ctx, []*geomatchv1.LocationUpdate{
		{DriverId: "cairo-1", Position: &geomatchv1.LatLng{Lat: 30.0444, Lng: 31.2357}, TimestampMs: now},
		{DriverId: "giza-1", Position: &geomatchv1.LatLng{Lat: 29.9792, Lng: 31.1342}, TimestampMs: now},
	})
	if err != nil {
		log.Fatal(err)
	}
	ns, err := conn.OpenNearbyStream(ctx)
	if err != nil {
		log.Fatal(err)
	}
	defer ns.Close()
	for _, p := range []*geomatchv1.LatLng{{Lat: 30.0450, Lng: 31.2357}, {Lat: 29.9790, Lng: 31.1342}} {
		resp, err := ns.Nearby(ctx, &geomatchv1.NearbyDriversRequest{Position: p, Limit: 1, RadiusM: 500})
		if err != nil {
			log.Fatal(err)
		}
		fmt.Println(resp.GetDrivers()[0].GetDriverId())
	}
	_, err = ns.Nearby(ctx, &geomatchv1.NearbyDriversRequest{Position: &geomatchv1.LatLng{Lat: 30, Lng: 31}, Limit: 0, RadiusM: 500})
	fmt.Println(status.Code(err))
	// Output:
	// cairo-1
	// giza-1
	// InvalidArgument
}

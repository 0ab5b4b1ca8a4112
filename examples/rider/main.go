// Command rider is a minimal rider app built on package client: it lists
// the drivers near a pickup, requests a ride, waits for the assignment,
// and follows the trip until it ends.
//
//	go run ./examples/rider -addr 127.0.0.1:50051 -lat 40.759 -lng -73.9845
package main

import (
	"context"
	"flag"
	"fmt"
	"log"
	"os"
	"os/signal"
	"time"

	"github.com/geomatch/geomatch/client"
	geomatchv1 "github.com/geomatch/geomatch/proto/geomatch/v1"
)

func main() {
	addr := flag.String("addr", "127.0.0.1:50051", "router address")
	ca := flag.String("ca", "", "PEM CA file of the router's certificate (empty: plaintext, loopback only)")
	token := flag.String("token", os.Getenv("GEOMATCH_TOKEN"), "bearer token naming the rider (default $GEOMATCH_TOKEN)")
	id := flag.String("id", "rider-1", "rider id")
	lat := flag.Float64("lat", 40.7590, "pickup latitude")
	lng := flag.Float64("lng", -73.9845, "pickup longitude")
	toLat := flag.Float64("to-lat", 40.7620, "drop-off latitude")
	toLng := flag.Float64("to-lng", -73.9800, "drop-off longitude")
	flag.Parse()

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	pickup, dropoff := &geomatchv1.LatLng{Lat: *lat, Lng: *lng}, &geomatchv1.LatLng{Lat: *toLat, Lng: *toLng}
	if err := run(ctx, *addr, *ca, *token, *id, pickup, dropoff); err != nil {
		log.Fatal(err)
	}
}

func run(ctx context.Context, addr, ca, token, id string, pickup, dropoff *geomatchv1.LatLng) error {
	opts := []client.Option{client.WithUserAgent("example-rider/1")}
	if ca != "" {
		opts = append(opts, client.WithCAFile(ca))
	} else {
		opts = append(opts, client.Insecure())
	}
	if token != "" {
		opts = append(opts, client.WithToken(token))
	}
	conn, err := client.Dial(addr, opts...)
	if err != nil {
		return err
	}
	defer conn.Close()

	cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	near, err := conn.Nearby(cctx, &geomatchv1.NearbyDriversRequest{Position: pickup, Limit: 5, RadiusM: 2000})
	cancel()
	if err != nil {
		return err
	}
	fmt.Printf("%d drivers within 2 km\n", len(near.GetDrivers()))
	for _, d := range near.GetDrivers() {
		fmt.Printf("  %s at %.0f m\n", d.GetDriverId(), d.GetDistanceM())
	}

	req := &geomatchv1.RequestRideRequest{
		RequestId: fmt.Sprintf("%s-%d", id, time.Now().UnixNano()), RiderId: id,
		Pickup: pickup, Dropoff: dropoff, WaitMs: 20000,
	}
	cctx, cancel = context.WithTimeout(ctx, 30*time.Second)
	trip, err := conn.RequestRide(cctx, req)
	cancel()
	if err != nil {
		return err
	}
	fmt.Printf("trip %s: %s %s\n", trip.GetTripId(), trip.GetState(), trip.GetDriverId())
	if trip.GetState() != geomatchv1.TripState_TRIP_STATE_ASSIGNED {
		return nil
	}
	// Follow the trip until it ends.
	last := trip.GetState()
	for {
		select {
		case <-ctx.Done():
			cctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			t, err := conn.CancelTrip(cctx, trip.GetTripId(), id, "rider left")
			if err != nil {
				return err
			}
			fmt.Printf("trip %s: %s\n", t.GetTripId(), t.GetState())
			return nil
		case <-time.After(time.Second):
		}
		cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		t, err := conn.GetTrip(cctx, trip.GetTripId())
		cancel()
		if err != nil {
			return err
		}
		if t.GetState() != last {
			last = t.GetState()
			fmt.Printf("trip %s: %s\n", t.GetTripId(), last)
		}
		if last == geomatchv1.TripState_TRIP_STATE_COMPLETED || last == geomatchv1.TripState_TRIP_STATE_CANCELLED {
			return nil
		}
	}
}

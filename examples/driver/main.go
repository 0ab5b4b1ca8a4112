// Command driver is a minimal driver app built on package client: it goes
// online at a position, reports it every few seconds, accepts every ride
// offer, drives each assigned trip (a few seconds to the pickup, a few to
// the drop-off, reporting both), and goes offline on Ctrl-C.
//
//	geomatch dev &                       # a cluster on 127.0.0.1:50051
//	go run ./examples/driver -addr 127.0.0.1:50051 -id cab-1 -lat 40.758 -lng -73.9855
//	go run ./examples/rider  -addr 127.0.0.1:50051 -lat 40.759 -lng -73.9845
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
	token := flag.String("token", os.Getenv("GEOMATCH_TOKEN"), "bearer token naming the driver (default $GEOMATCH_TOKEN)")
	id := flag.String("id", "cab-1", "driver id")
	lat := flag.Float64("lat", 40.7580, "latitude")
	lng := flag.Float64("lng", -73.9855, "longitude")
	every := flag.Duration("every", 2*time.Second, "how often to report the position")
	flag.Parse()

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	if err := run(ctx, *addr, *ca, *token, *id, &geomatchv1.LatLng{Lat: *lat, Lng: *lng}, *every); err != nil {
		log.Fatal(err)
	}
}

func run(ctx context.Context, addr, ca, token, id string, pos *geomatchv1.LatLng, every time.Duration) error {
	opts := []client.Option{client.WithUserAgent("example-driver/1")}
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

	trips := make(chan *geomatchv1.Trip, 16)
	sess, err := conn.ConnectDriver(ctx, client.DriverConfig{
		DriverID:    id,
		OnConnected: func(a *geomatchv1.ConnectAck) { log.Printf("connected as %s", a.GetDriverId()) },
		OnDisconnected: func(err error, in time.Duration) {
			log.Printf("stream lost (%v); reconnecting in %v", err, in.Round(time.Millisecond))
		},
		OnOffer: func(o *geomatchv1.RideOffer) bool {
			log.Printf("offer %s: trip %s, pickup %.0f m away; accepting", o.GetOfferId(), o.GetTrip().GetTripId(), o.GetPickupDistanceM())
			return true
		},
		OnTrip: func(t *geomatchv1.Trip) { trips <- t },
		OnRejected: func(r *geomatchv1.Rejection) {
			log.Printf("position not applied: %s %s", r.GetReason(), r.GetMessage())
		},
	})
	if err != nil {
		return err
	}
	status := geomatchv1.DriverStatus_DRIVER_STATUS_AVAILABLE
	report := func() error {
		return sess.SendLocation(&geomatchv1.LocationUpdate{Position: pos, TimestampMs: time.Now().UnixMilli(), Status: status})
	}
	if err := report(); err != nil {
		return err
	}
	tick := time.NewTicker(every)
	defer tick.Stop()
	var driving *geomatchv1.Trip
	var lastTrip string
	var lastState geomatchv1.TripState
	var legEnds <-chan time.Time
	for {
		select {
		case <-ctx.Done():
			status = geomatchv1.DriverStatus_DRIVER_STATUS_OFFLINE
			_ = report()
			return sess.Close()
		case <-sess.Done():
			return fmt.Errorf("session ended: %w", sess.Err())
		case <-tick.C:
			if err := report(); err != nil {
				return err
			}
		case t := <-trips:
			if t.GetTripId() == lastTrip && t.GetState() == lastState {
				continue // the same state may come twice (the answer, then the event)
			}
			lastTrip, lastState = t.GetTripId(), t.GetState()
			log.Printf("trip %s: %s", t.GetTripId(), t.GetState())
			switch t.GetState() {
			case geomatchv1.TripState_TRIP_STATE_ASSIGNED:
				if driving == nil {
					driving, status = t, geomatchv1.DriverStatus_DRIVER_STATUS_ON_TRIP
					legEnds = time.After(3 * time.Second)
				}
			case geomatchv1.TripState_TRIP_STATE_CANCELLED, geomatchv1.TripState_TRIP_STATE_COMPLETED:
				if driving != nil && driving.GetTripId() == t.GetTripId() {
					driving, legEnds, status = nil, nil, geomatchv1.DriverStatus_DRIVER_STATUS_AVAILABLE
				}
			}
		case <-legEnds:
			if driving.GetState() == geomatchv1.TripState_TRIP_STATE_ASSIGNED {
				pos = driving.GetPickup()
				driving.State = geomatchv1.TripState_TRIP_STATE_PICKED_UP
				legEnds = time.After(3 * time.Second)
			} else {
				pos = driving.GetDropoff()
				driving.State = geomatchv1.TripState_TRIP_STATE_COMPLETED
				legEnds = nil
			}
			if err := sess.Progress(driving.GetTripId(), driving.GetState()); err != nil {
				log.Printf("progress of trip %s: %v", driving.GetTripId(), err)
			}
		}
	}
}

package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"math/rand/v2"
	"sync"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"

	geomatchv1 "github.com/geomatch/geomatch/proto/geomatch/v1"
)

// demoInterval is how often the demo fleet reports; well inside the TTL.
const demoInterval = 5 * time.Second

// runDemoFleet keeps n demo drivers moving over New York through the public
// API (UpdateLocations in batches) until ctx is done, and prints one sample
// nearby query after the first load. It is what `make run` shows. opts
// secure the connection (TLS, a token); plaintext without them.
func runDemoFleet(ctx context.Context, target string, n int, stdout io.Writer, log *slog.Logger, opts ...grpc.DialOption) error {
	if n > 1_000_000 {
		return fmt.Errorf("--demo-drivers: %d, at most 1000000", n)
	}
	conn, err := grpc.NewClient(target, append([]grpc.DialOption{grpc.WithTransportCredentials(insecure.NewCredentials())}, opts...)...)
	if err != nil {
		return fmt.Errorf("demo fleet: %w", err)
	}
	defer conn.Close()
	drivers := geomatchv1.NewDriverServiceClient(conn)
	riders := geomatchv1.NewRiderServiceClient(conn)
	rng := rand.New(rand.NewPCG(42, 7))
	type car struct{ lat, lng float64 }
	fleet := make([]car, n)
	for i := range fleet {
		fleet[i] = car{40.55 + 0.40*rng.Float64(), -74.10 + 0.40*rng.Float64()}
	}
	classes := []string{"standard", "standard", "standard", "xl", "premium"}
	tick := time.NewTicker(demoInterval)
	defer tick.Stop()
	var apps sync.WaitGroup
	defer apps.Wait()
	for round := 0; ; round++ {
		start := time.Now()
		accepted, rejected := 0, 0
		for lo := 0; lo < n; lo += 1000 {
			hi := min(lo+1000, n)
			req := &geomatchv1.UpdateLocationsRequest{Updates: make([]*geomatchv1.LocationUpdate, 0, hi-lo)}
			for i := lo; i < hi; i++ {
				c := &fleet[i]
				// A random walk of about 50 m per report.
				c.lat = math.Max(40.55, math.Min(40.95, c.lat+(rng.Float64()-0.5)*0.0009))
				c.lng = math.Max(-74.10, math.Min(-73.70, c.lng+(rng.Float64()-0.5)*0.0012))
				req.Updates = append(req.Updates, &geomatchv1.LocationUpdate{
					DriverId:     fmt.Sprintf("demo-%06d", i),
					Position:     &geomatchv1.LatLng{Lat: c.lat, Lng: c.lng},
					TimestampMs:  time.Now().UnixMilli(),
					VehicleClass: classes[i%len(classes)],
				})
			}
			cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
			resp, err := drivers.UpdateLocations(cctx, req)
			cancel()
			if ctx.Err() != nil {
				return nil
			}
			if err != nil {
				log.Warn("demo fleet: update failed", "err", err)
				rejected += hi - lo
				continue
			}
			accepted += int(resp.GetAccepted())
			rejected += len(resp.GetRejected())
		}
		if round == 0 {
			fmt.Fprintf(stdout, "demo fleet: %d drivers loaded in %v (%d accepted, %d rejected); they report every %v\n",
				n, time.Since(start).Round(time.Millisecond), accepted, rejected, demoInterval)
			printSampleQuery(ctx, riders, stdout)
			connectDemoApps(ctx, drivers, min(n, demoApps), &apps, log)
			printSampleRide(ctx, riders, stdout)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
		}
	}
}

func printSampleQuery(ctx context.Context, riders geomatchv1.RiderServiceClient, stdout io.Writer) {
	q := &geomatchv1.NearbyDriversRequest{Position: &geomatchv1.LatLng{Lat: 40.7580, Lng: -73.9855}, Limit: 5, RadiusM: 2000}
	cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	start := time.Now()
	resp, err := riders.NearbyDrivers(cctx, q)
	if err != nil {
		fmt.Fprintf(stdout, "sample query failed: %v\n", err)
		return
	}
	fmt.Fprintf(stdout, "5 nearest available drivers to Times Square (40.7580,-73.9855) within 2 km, answered in %v:\n", time.Since(start).Round(time.Microsecond))
	for i, d := range resp.GetDrivers() {
		fmt.Fprintf(stdout, "  %d. %-12s %-9s %8.1f m  (%.5f, %.5f)\n", i+1, d.GetDriverId(), d.GetVehicleClass(), d.GetDistanceM(), d.GetPosition().GetLat(), d.GetPosition().GetLng())
	}
}

// demoApps bounds the demo drivers that run a driver app answering offers.
const demoApps = 5000

// connectDemoApps opens a Connect stream for the first n demo drivers; each
// accepts every offer after half a second. The streams end with ctx.
func connectDemoApps(ctx context.Context, drivers geomatchv1.DriverServiceClient, n int, wg *sync.WaitGroup, log *slog.Logger) {
	for i := 0; i < n; i++ {
		id := fmt.Sprintf("demo-%06d", i)
		stream, err := drivers.Connect(ctx)
		if err == nil {
			err = stream.Send(&geomatchv1.DriverMessage{Msg: &geomatchv1.DriverMessage_Hello{Hello: &geomatchv1.DriverHello{DriverId: id}}})
		}
		if err != nil {
			log.Warn("demo fleet: driver app could not connect", "driver", id, "err", err)
			return
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				ev, err := stream.Recv()
				if err != nil {
					return
				}
				off := ev.GetOffer()
				if off == nil {
					continue
				}
				select {
				case <-time.After(500 * time.Millisecond):
				case <-ctx.Done():
					return
				}
				if err := stream.Send(&geomatchv1.DriverMessage{Msg: &geomatchv1.DriverMessage_OfferAnswer{OfferAnswer: &geomatchv1.OfferAnswer{
					OfferId: off.GetOfferId(), TripId: off.GetTrip().GetTripId(), Accept: true}}}); err != nil {
					return
				}
			}
		}()
	}
}

func printSampleRide(ctx context.Context, riders geomatchv1.RiderServiceClient, stdout io.Writer) {
	pickup := &geomatchv1.LatLng{Lat: 40.7580, Lng: -73.9855}
	req := &geomatchv1.RequestRideRequest{
		RequestId: fmt.Sprintf("demo-ride-%d", time.Now().UnixNano()), RiderId: "demo-rider",
		Pickup: pickup, Dropoff: &geomatchv1.LatLng{Lat: 40.7061, Lng: -74.0087}, WaitMs: 15000,
	}
	cctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	start := time.Now()
	t, err := riders.RequestRide(cctx, req)
	switch {
	case status.Code(err) == codes.Unimplemented:
		return
	case err != nil && !errors.Is(ctx.Err(), context.Canceled):
		fmt.Fprintf(stdout, "sample ride failed: %v\n", err)
	case err == nil:
		fmt.Fprintf(stdout, "sample ride from Times Square: trip %s %s, driver %s %.0f m away, after %v\n",
			t.GetTripId(), t.GetState(), t.GetDriverId(), t.GetPickupDistanceM(), time.Since(start).Round(time.Millisecond))
	}
}

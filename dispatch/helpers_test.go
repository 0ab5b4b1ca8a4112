package dispatch_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/geomatch/geomatch/cluster"
	"github.com/geomatch/geomatch/internal/geo"
	"github.com/geomatch/geomatch/matcher"
	geomatchv1 "github.com/geomatch/geomatch/proto/geomatch/v1"
)

type testCluster struct {
	*cluster.Dev
	conn    *grpc.ClientConn
	drivers geomatchv1.DriverServiceClient
	riders  geomatchv1.RiderServiceClient

	mu     sync.Mutex
	placed map[string]*geomatchv1.LocationUpdate // the last position place reported, by driver
}

func start(t *testing.T, cfg cluster.DevConfig) *testCluster {
	t.Helper()
	if cfg.Matcher == nil {
		cfg.Matcher = func(mc *matcher.Config) { mc.Index.TTL = time.Hour }
	}
	c, err := cluster.StartDev(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := c.Stop(); err != nil {
			t.Errorf("stop cluster: %v", err)
		}
	})
	conn, err := grpc.NewClient(c.RouterAddr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return &testCluster{Dev: c, conn: conn, drivers: geomatchv1.NewDriverServiceClient(conn), riders: geomatchv1.NewRiderServiceClient(conn)}
}

func ctxT(t *testing.T, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

func ll(p geo.LatLng) *geomatchv1.LatLng { return &geomatchv1.LatLng{Lat: p.Lat, Lng: p.Lng} }

// place reports driver positions through the public API.
func (c *testCluster) place(t *testing.T, pos map[string]geo.LatLng, class string) {
	t.Helper()
	req := &geomatchv1.UpdateLocationsRequest{}
	now := time.Now().UnixMilli()
	c.mu.Lock()
	if c.placed == nil {
		c.placed = map[string]*geomatchv1.LocationUpdate{}
	}
	for id, p := range pos {
		u := &geomatchv1.LocationUpdate{DriverId: id, Position: ll(p), TimestampMs: now, VehicleClass: class}
		req.Updates = append(req.Updates, u)
		c.placed[id] = u
	}
	c.mu.Unlock()
	resp, err := c.drivers.UpdateLocations(ctxT(t, 10*time.Second), req)
	if err != nil || int(resp.GetAccepted()) != len(pos) {
		t.Fatalf("place drivers: %v %v", resp, err)
	}
}

// app is a driver app on a Connect stream that answers offers with
// decide.
type app struct {
	id     string
	stream geomatchv1.DriverService_ConnectClient
	mu     sync.Mutex
	offers []*geomatchv1.RideOffer
	trips  map[string]*geomatchv1.Trip // latest trip events by id
	closed []*geomatchv1.OfferClosed
	done   chan struct{}
}

// connect opens the app's stream; decide answers each offer (nil: never
// answer); think delays each answer.
func (c *testCluster) connect(t *testing.T, id string, decide func(*geomatchv1.RideOffer) bool, think func() time.Duration) *app {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	stream, err := c.drivers.Connect(ctx)
	if err != nil {
		t.Fatal(err)
	}
	a := &app{id: id, stream: stream, trips: map[string]*geomatchv1.Trip{}, done: make(chan struct{})}
	if err := stream.Send(&geomatchv1.DriverMessage{Msg: &geomatchv1.DriverMessage_Hello{Hello: &geomatchv1.DriverHello{DriverId: id}}}); err != nil {
		t.Fatal(err)
	}
	if ev, err := stream.Recv(); err != nil || ev.GetConnected() == nil {
		t.Fatalf("connect %s: %v %v", id, ev, err)
	}
	// As an app does once connected, report where the driver is on the
	// stream: only drivers with a stream are offered rides.
	c.mu.Lock()
	last := c.placed[id]
	c.mu.Unlock()
	if last != nil {
		u := &geomatchv1.LocationUpdate{DriverId: id, Position: last.GetPosition(), TimestampMs: last.GetTimestampMs() + 1, VehicleClass: last.GetVehicleClass()}
		if err := stream.Send(&geomatchv1.DriverMessage{Msg: &geomatchv1.DriverMessage_Location{Location: u}}); err != nil {
			t.Fatal(err)
		}
		c.waitOnStream(t, id, u.GetTimestampMs())
	}
	var sendMu sync.Mutex
	go func() {
		defer close(a.done)
		for {
			ev, err := stream.Recv()
			if err != nil {
				return
			}
			switch e := ev.GetEvent().(type) {
			case *geomatchv1.DriverEvent_Offer:
				a.mu.Lock()
				a.offers = append(a.offers, e.Offer)
				a.mu.Unlock()
				if decide == nil {
					continue
				}
				off := e.Offer
				go func() {
					if think != nil {
						time.Sleep(think())
					}
					sendMu.Lock()
					defer sendMu.Unlock()
					stream.Send(&geomatchv1.DriverMessage{Msg: &geomatchv1.DriverMessage_OfferAnswer{OfferAnswer: &geomatchv1.OfferAnswer{
						OfferId: off.GetOfferId(), TripId: off.GetTrip().GetTripId(), Accept: decide(off)}}})
				}()
			case *geomatchv1.DriverEvent_Trip:
				a.mu.Lock()
				a.trips[e.Trip.GetTripId()] = e.Trip
				a.mu.Unlock()
			case *geomatchv1.DriverEvent_OfferClosed:
				a.mu.Lock()
				a.closed = append(a.closed, e.OfferClosed)
				a.mu.Unlock()
			}
		}
	}()
	t.Cleanup(func() {
		cancel()
		<-a.done
	})
	return a
}

func (a *app) send(t *testing.T, m *geomatchv1.DriverMessage) {
	t.Helper()
	if err := a.stream.Send(m); err != nil {
		t.Fatal(err)
	}
}

func (a *app) offerCount() int {
	a.mu.Lock()
	defer a.mu.Unlock()
	return len(a.offers)
}

// eventually polls cond until it holds or d passes.
func eventually(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", d, what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// offset returns p moved east by km kilometers.
func offset(p geo.LatLng, km float64) geo.LatLng {
	return geo.LatLng{Lat: p.Lat, Lng: p.Lng + km/(111.32*0.7578)} // cos(40.7°)
}

var midtown = geo.LatLng{Lat: 40.7580, Lng: -73.9855}

func newRand(seed uint64) *rand.Rand { return rand.New(rand.NewPCG(seed, 1)) }

func rideReq(id, rider string, p geo.LatLng, waitMs int32) *geomatchv1.RequestRideRequest {
	return &geomatchv1.RequestRideRequest{RequestId: id, RiderId: rider, Pickup: ll(p), Dropoff: ll(offset(p, 3)), WaitMs: waitMs}
}

func name(prefix string, i int) string { return fmt.Sprintf("%s%03d", prefix, i) }

// waitOnStream waits until a nearby search sees driver id's update of ts
// (sent on its stream, which an offer needs).
func (c *testCluster) waitOnStream(t *testing.T, id string, ts int64) {
	t.Helper()
	c.mu.Lock()
	pos := c.placed[id].GetPosition()
	c.mu.Unlock()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		resp, err := c.riders.NearbyDrivers(ctxT(t, 5*time.Second), &geomatchv1.NearbyDriversRequest{Position: pos, Limit: 100, RadiusM: 50})
		if err == nil {
			for _, d := range resp.GetDrivers() {
				if d.GetDriverId() == id && d.GetTimestampMs() >= ts {
					return
				}
			}
		}
		time.Sleep(5 * time.Millisecond)
	}
	t.Fatalf("driver %s: its stream update of %d never showed", id, ts)
}

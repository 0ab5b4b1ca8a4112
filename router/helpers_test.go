package router_test

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/uber/h3-go/v4"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/geomatch/geomatch/cluster"
	"github.com/geomatch/geomatch/internal/geo"
	"github.com/geomatch/geomatch/matcher"
	geomatchv1 "github.com/geomatch/geomatch/proto/geomatch/v1"
)

// testCluster is an in-process cluster plus clients of its public API.
type testCluster struct {
	*cluster.Dev
	drivers geomatchv1.DriverServiceClient
	riders  geomatchv1.RiderServiceClient
	admin   geomatchv1.AdminServiceClient
}

// startCluster starts an in-process cluster. Drivers never expire during a
// test (a 1 h TTL) unless cfg.Matcher says otherwise: slow runs (the race
// detector) must not lose drivers halfway through a comparison.
func startCluster(t *testing.T, cfg cluster.DevConfig) *testCluster {
	t.Helper()
	if cfg.Matcher == nil {
		cfg.Matcher = func(mc *matcher.Config) { mc.Index.TTL = time.Hour }
	}
	if cfg.Fleet.QueryTimeout == 0 {
		// Correctness, not speed: 100 km searches over res-8 shards under
		// the race detector on a loaded machine take seconds.
		cfg.Fleet.QueryTimeout = 30 * time.Second
	}
	c, err := cluster.StartDev(cfg)
	if err != nil {
		t.Fatalf("start cluster: %v", err)
	}
	t.Cleanup(func() {
		if err := c.Stop(); err != nil {
			t.Errorf("stop cluster: %v", err)
		}
	})
	conn, err := grpc.NewClient(c.RouterAddr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatalf("dial router: %v", err)
	}
	t.Cleanup(func() { conn.Close() })
	return &testCluster{
		Dev:     c,
		drivers: geomatchv1.NewDriverServiceClient(conn),
		riders:  geomatchv1.NewRiderServiceClient(conn),
		admin:   geomatchv1.NewAdminServiceClient(conn),
	}
}

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// fleetDriver is what the test knows of one driver.
type fleetDriver struct {
	id    string
	pos   geo.LatLng
	class string
	ts    int64
}

// upload sends the drivers in batches and fails the test on any rejection.
func (c *testCluster) upload(t *testing.T, fleet []fleetDriver) {
	t.Helper()
	for lo := 0; lo < len(fleet); lo += 5000 {
		hi := min(lo+5000, len(fleet))
		req := &geomatchv1.UpdateLocationsRequest{}
		for _, d := range fleet[lo:hi] {
			req.Updates = append(req.Updates, &geomatchv1.LocationUpdate{
				DriverId: d.id, Position: &geomatchv1.LatLng{Lat: d.pos.Lat, Lng: d.pos.Lng},
				TimestampMs: d.ts, VehicleClass: d.class,
			})
		}
		resp, err := c.drivers.UpdateLocations(ctxT(t), req)
		if err != nil {
			t.Fatalf("UpdateLocations: %v", err)
		}
		if len(resp.GetRejected()) > 0 || int(resp.GetAccepted()) != hi-lo {
			t.Fatalf("UpdateLocations: accepted %d of %d, first rejection %v", resp.GetAccepted(), hi-lo, resp.GetRejected()[0])
		}
	}
}

// waitSettled waits until every driver of the fleet is held by exactly one
// node (evictions of copies left behind by cross-node moves are
// asynchronous), failing after a deadline.
func (c *testCluster) waitSettled(t *testing.T, fleet []fleetDriver) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		bad := ""
		for _, d := range fleet {
			var holders []string
			for _, n := range c.Nodes {
				if got, ok := n.Index().Get(d.id); ok {
					holders = append(holders, fmt.Sprintf("%s (shard %s, ts %d)", n.ID(), got.Shard, got.TimestampMs))
				}
			}
			if len(holders) != 1 {
				bad = fmt.Sprintf("driver %s (ts %d) held by %d nodes: %v", d.id, d.ts, len(holders), holders)
				break
			}
		}
		if bad == "" {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("cluster did not settle: %s", bad)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// jitter returns a point about up to meters away from p, in a random
// direction, clamped to valid coordinates and wrapped across ±180°.
func jitter(r *rand.Rand, p geo.LatLng, meters float64) geo.LatLng {
	d := meters * math.Sqrt(r.Float64()) / geo.EarthRadiusM * 180 / math.Pi
	a := r.Float64() * 2 * math.Pi
	lat := p.Lat + d*math.Cos(a)
	lng := p.Lng + d*math.Sin(a)/math.Max(math.Cos(p.Lat*math.Pi/180), 1e-3)
	lat = math.Max(-90, math.Min(90, lat))
	for lng > 180 {
		lng -= 360
	}
	for lng < -180 {
		lng += 360
	}
	return geo.LatLng{Lat: lat, Lng: lng}
}

// points of the globe the property tests crowd drivers around.
var hotspots = []struct {
	name   string
	center geo.LatLng
	spread float64 // meters
}{
	{"manhattan", geo.LatLng{Lat: 40.7580, Lng: -73.9855}, 6000},
	{"fiji-antimeridian", geo.LatLng{Lat: -16.8, Lng: 180}, 5000},
	{"chukotka-antimeridian", geo.LatLng{Lat: 65.5, Lng: -179.99}, 3000},
	{"north-pole", geo.LatLng{Lat: 89.99, Lng: 0}, 3000},
	{"south-pole", geo.LatLng{Lat: -89.995, Lng: 45}, 2000},
	{"pentagon-res0", geo.LatLng{Lat: 64.7, Lng: 10.536}, 4000}, // near an icosahedron vertex
}

func newRand() *rand.Rand { return rand.New(rand.NewPCG(11, 13)) }

func cellFromString(t *testing.T, s string) h3.Cell {
	t.Helper()
	var c h3.Cell
	if err := c.UnmarshalText([]byte(s)); err != nil {
		t.Fatalf("cell %q: %v", s, err)
	}
	return c
}

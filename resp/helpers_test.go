package resp_test

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"net"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/uber/h3-go/v4"

	"github.com/geomatch/geomatch/cluster"
	"github.com/geomatch/geomatch/internal/geo"
	"github.com/geomatch/geomatch/matcher"
	"github.com/geomatch/geomatch/resp"
)

// testDoor is an in-process cluster with the RESP front door of its
// router on a free loopback port.
type testDoor struct {
	*cluster.Dev
	addr string
}

// startDoor starts a cluster of cfg (three matchers unless told) and its
// RESP door. Drivers never expire during a test.
func startDoor(t testing.TB, cfg cluster.DevConfig) *testDoor {
	t.Helper()
	if cfg.Matchers == 0 {
		cfg.Matchers = 3
	}
	if cfg.Matcher == nil {
		cfg.Matcher = func(mc *matcher.Config) { mc.Index.TTL = time.Hour }
	}
	if cfg.Fleet.QueryTimeout == 0 {
		cfg.Fleet.QueryTimeout = 30 * time.Second // correctness, not speed
	}
	c, err := cluster.StartDev(cfg)
	if err != nil {
		t.Fatalf("start cluster: %v", err)
	}
	srv, err := resp.New(resp.Config{}, c.Router, nil)
	if err != nil {
		t.Fatalf("resp.New: %v", err)
	}
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("listen: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ctx, lis) }()
	t.Cleanup(func() {
		cancel()
		if err := <-served; err != nil {
			t.Errorf("resp serve: %v", err)
		}
		if err := c.Stop(); err != nil {
			t.Errorf("stop cluster: %v", err)
		}
	})
	return &testDoor{Dev: c, addr: lis.Addr().String()}
}

// client returns a go-redis client of the door (RESP2, as Tile38 clients
// use).
func (d *testDoor) client(t *testing.T, opts ...func(*redis.Options)) *redis.Client {
	t.Helper()
	o := &redis.Options{Addr: d.addr, Protocol: 2, DisableIdentity: true, MaxRetries: -1, ReadTimeout: time.Minute}
	for _, f := range opts {
		f(o)
	}
	c := redis.NewClient(o)
	t.Cleanup(func() { c.Close() })
	return c
}

// startDoorB is startDoor for a benchmark.
func startDoorB(b *testing.B) *testDoor { return startDoor(b, cluster.DevConfig{}) }

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// driverAt is what a test knows of one driver.
type driverAt struct {
	id  string
	pos geo.LatLng
}

// hotspots of the globe the exactness tests crowd drivers around.
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
}

// jitter returns a point up to about meters from p, clamped and wrapped.
func jitter(r *rand.Rand, p geo.LatLng, meters float64) geo.LatLng {
	d := meters * math.Sqrt(r.Float64()) / geo.EarthRadiusM * 180 / math.Pi
	a := r.Float64() * 2 * math.Pi
	lat := math.Max(-90, math.Min(90, p.Lat+d*math.Cos(a)))
	lng := p.Lng + d*math.Sin(a)/math.Max(math.Cos(p.Lat*math.Pi/180), 1e-3)
	for lng > 180 {
		lng -= 360
	}
	for lng < -180 {
		lng += 360
	}
	return geo.LatLng{Lat: lat, Lng: lng}
}

// makeFleet spreads n drivers over the hotspots, every fifth a few meters
// from a vertex of its res-7 shard cell (a shard border).
func makeFleet(r *rand.Rand, n int) []driverAt {
	out := make([]driverAt, 0, n)
	for i := 0; i < n; i++ {
		h := hotspots[r.IntN(len(hotspots))]
		p := jitter(r, h.center, h.spread)
		if i%5 == 0 {
			b := h3.LatLngToCell(h3.LatLng{Lat: p.Lat, Lng: p.Lng}, 7).Boundary()
			v := b[r.IntN(len(b))]
			p = jitter(r, geo.LatLng{Lat: v.Lat, Lng: v.Lng}, 20)
		}
		out = append(out, driverAt{id: fmt.Sprintf("d%05d", i), pos: p})
	}
	return out
}

// points returns the fleet as the brute-force oracle takes it.
func points(fleet []driverAt) []geo.Point {
	pts := make([]geo.Point, len(fleet))
	for i, d := range fleet {
		pts[i] = geo.Point{ID: d.id, Pos: d.pos}
	}
	return pts
}

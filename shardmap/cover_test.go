package shardmap

import (
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/uber/h3-go/v4"

	"github.com/geomatch/geomatch/internal/geo"
)

// coverCase is one search: a layout, a center and a radius.
type coverCase struct {
	res, depth int
	splits     []Cell
	p          geo.LatLng
	radiusM    float64
}

func (c coverCase) String() string {
	return fmt.Sprintf("layout (%d, %d) with %d splits, p=%v, radius %.6g m", c.res, c.depth, len(c.splits), c.p, c.radiusM)
}

// randomRadius picks the radii the spec names, scaled down for fine shard
// resolutions so the cover stays a few hundred cells. Radii of 50 and 100
// km are rarer: each costs about 10 ms (TestCoverSpecialPlaces runs them at
// every named place).
func randomRadius(r *rand.Rand, res int) float64 {
	var radius float64
	switch k := r.IntN(40); {
	case k < 4:
		radius = 0
	case k < 10:
		radius = r.Float64() * 10 // tiny
	case k < 16:
		radius = r.Float64() * 500
	case k < 26:
		radius = 2000
	case k < 38:
		radius = 2000 + r.Float64()*8000
	case k < 39:
		radius = 50000
	default:
		radius = 100000
	}
	return math.Min(radius, 15*h3.HexagonEdgeLengthAvgM(res))
}

// pointsInCircle samples points x with DistanceM(p, x) <= radiusM: random
// bearings and distances, points exactly on the circle, and p itself.
func pointsInCircle(r *rand.Rand, p geo.LatLng, radiusM float64, n int) []geo.LatLng {
	out := []geo.LatLng{p}
	for i := range n {
		d := radiusM * math.Sqrt(r.Float64())
		if i%4 == 0 {
			d = radiusM // on the circle
		}
		out = append(out, destination(p, 2*math.Pi*r.Float64(), d))
	}
	return out
}

// checkCover asserts that the shard of every sampled point of the circle is
// in cover, and that cover is sorted, unique, and made of shards.
func checkCover(t testing.TB, l *Layout, c coverCase, cover []Cell, points []geo.LatLng) {
	t.Helper()
	if !slices.IsSorted(cover) || len(slices.Compact(slices.Clone(cover))) != len(cover) {
		t.Fatalf("%v: cover is not sorted and unique: %v", c, cover)
	}
	for _, s := range cover {
		if !l.IsShard(s) {
			t.Fatalf("%v: cover holds %s, which is not a shard", c, s)
		}
	}
	for _, x := range points {
		s := l.ShardOf(x)
		if _, ok := slices.BinarySearch(cover, s); !ok {
			t.Fatalf("%v: MISS: point %v at %.6f m has shard %s, not in the cover of %d shards",
				c, x, geo.DistanceM(c.p, x), s, len(cover))
		}
	}
}

// checkRoute asserts that Route's targets hold the shard of every sampled
// point, each under its owner, with targets sorted by id and shards sorted.
func checkRoute(t testing.TB, m *Map, c coverCase, p geo.LatLng, points []geo.LatLng) {
	t.Helper()
	ts := m.Route(p, c.radiusM)
	where := map[Cell]string{}
	for i, tg := range ts {
		if i > 0 && ts[i-1].Member.ID >= tg.Member.ID {
			t.Fatalf("%v: targets not sorted by member id", c)
		}
		if !slices.IsSorted(tg.Shards) || len(tg.Shards) == 0 {
			t.Fatalf("%v: target %s has unsorted or no shards", c, tg.Member.ID)
		}
		for _, s := range tg.Shards {
			if o, ok := m.Owner(s); !ok || o != tg.Member {
				t.Fatalf("%v: Route lists %s under %s, Owner says %v %v", c, s, tg.Member.ID, o, ok)
			}
			where[s] = tg.Member.ID
		}
	}
	for _, x := range points {
		if s := m.Layout().ShardOf(x); where[s] == "" {
			t.Fatalf("%v: route from %v: MISS: point %v at %.6f m has shard %s, not routed", c, p, x, geo.DistanceM(p, x), s)
		}
	}
}

// TestCoverIsExactSafe is the exact-cover property: for thousands of
// searches, biased to poles, the antimeridian and pentagons, with radii from
// 0 to 100 km, with and without splits around the center, the cover and the
// route hold the shard of every sampled point within the radius.
func TestCoverIsExactSafe(t *testing.T) {
	cases := 3000
	if testing.Short() {
		cases = 300
	}
	r := newRand(20)
	configs := []struct{ res, depth int }{{7, 2}, {7, 2}, {7, 2}, {7, 0}, {0, 3}, {3, 3}, {5, 1}, {10, 3}, {13, 2}}
	for i := range cases {
		cfg := configs[i%len(configs)]
		c := coverCase{res: cfg.res, depth: cfg.depth, p: awkwardPoint(r, cfg.res)}
		c.radiusM = randomRadius(r, cfg.res)
		if r.IntN(4) != 0 {
			c.splits = splitsAround(r, c.p, cfg.res, cfg.depth)
		}
		d := DefaultDoc(members(1 + r.IntN(6)))
		d.ShardRes, d.MaxSplitDepth, d.Splits = c.res, c.depth, c.splits
		m := mustMap(t, d)
		l := m.Layout()
		points := pointsInCircle(r, c.p, c.radiusM, 64)
		checkCover(t, l, c, l.Cover(c.p, c.radiusM), points)
		checkRoute(t, m, c, c.p, points)
		// A second search from a nearby point often hits the route cache
		// entry the first one made.
		if c.radiusM > 10000 {
			continue
		}
		q := destination(c.p, 2*math.Pi*r.Float64(), r.Float64()*circMaxM(cfg.res))
		checkRoute(t, m, c, q, pointsInCircle(r, q, c.radiusM, 32))
	}
}

// TestCoverSpecialPlaces runs the property at the named places and radii.
func TestCoverSpecialPlaces(t *testing.T) {
	r := newRand(21)
	places := map[string]geo.LatLng{
		"north pole":               northPole,
		"south pole":               southPole,
		"near the north pole":      {Lat: 89.95, Lng: 123},
		"near the south pole":      {Lat: -89.99, Lng: -45},
		"antimeridian east side":   {Lat: 10, Lng: 179.999},
		"antimeridian west side":   {Lat: -10, Lng: -179.999},
		"antimeridian exactly":     {Lat: 65, Lng: 180},
		"antimeridian exactly -":   {Lat: -65, Lng: -180},
		"new york":                 nyc,
		"null island":              {},
		"pentagon 0 center, res 7": center(h3.Pentagons(7)[0]),
		"pentagon 7 center, res 7": center(h3.Pentagons(7)[7]),
		"pentagon 4 center, res 9": center(h3.Pentagons(9)[4]),
	}
	for name, p := range places {
		t.Run(name, func(t *testing.T) {
			for _, radius := range []float64{0, 1e-3, 1, 2000, 50000, 100000} {
				for _, split := range []bool{false, true} {
					c := coverCase{res: 7, depth: 2, p: p, radiusM: radius}
					if split {
						c.splits = splitsAround(r, p, 7, 2)
					}
					l := mustLayout(t, c.res, c.depth, c.splits)
					checkCover(t, l, c, l.Cover(p, radius), pointsInCircle(r, p, radius, 400))
				}
			}
		})
	}
}

func TestCoverSmallCases(t *testing.T) {
	l := mustLayout(t, 7, 2, nil)
	if got, want := l.Cover(nyc, 0), []Cell{l.ShardOf(nyc)}; !slices.Contains(got, want[0]) {
		t.Fatalf("Cover(nyc, 0) = %v, want it to hold %v", got, want)
	}
	if got := l.Cover(nyc, -5); !slices.Equal(got, l.Cover(nyc, 0)) {
		t.Fatalf("Cover with a negative radius = %v, want Cover with 0", got)
	}
	for _, bad := range []struct {
		p geo.LatLng
		r float64
	}{{geo.LatLng{Lat: math.NaN()}, 1}, {nyc, math.NaN()}, {nyc, math.Inf(1)}, {geo.LatLng{Lng: 200}, 1}} {
		if got := l.Cover(bad.p, bad.r); got != nil {
			t.Fatalf("Cover(%v, %v) = %v, want nil", bad.p, bad.r, got)
		}
	}
}

// TestCoverSizeReport logs how many shards and members searches touch, the
// price of the exact-safe margins.
func TestCoverSizeReport(t *testing.T) {
	m := mustMap(t, DefaultDoc(members(10)))
	r := newRand(22)
	for _, radius := range []float64{0, 500, 2000, 5000, 50000} {
		var cover, route, targets int
		const n = 50
		for range n {
			p := geo.LatLng{Lat: nycMinLat + (nycMaxLat-nycMinLat)*r.Float64(), Lng: nycMinLng + (nycMaxLng-nycMinLng)*r.Float64()}
			cover += len(m.Layout().Cover(p, radius))
			ts := m.Route(p, radius)
			targets += len(ts)
			for _, tg := range ts {
				route += len(tg.Shards)
			}
		}
		t.Logf("radius %6.0f m, New York, 10 members: Cover %.1f shards; Route %.1f shards on %.1f members",
			radius, float64(cover)/n, float64(route)/n, float64(targets)/n)
	}
}

func BenchmarkCoverUncached(b *testing.B) {
	b.ReportAllocs()
	l := mustLayout(b, 7, 2, nil)
	for b.Loop() {
		l.Cover(nyc, 2000)
	}
}

// FuzzCover checks the exact-cover property for any center and radius up
// to 100 km, with splits around the center.
func FuzzCover(f *testing.F) {
	f.Add(nyc.Lat, nyc.Lng, 2000.0)
	f.Add(90.0, 0.0, 100000.0)
	f.Add(-89.95, 179.999, 50000.0)
	f.Add(0.0, -180.0, 0.0)
	f.Add(center(h3.Pentagons(7)[2]).Lat, center(h3.Pentagons(7)[2]).Lng, 3000.0)
	f.Fuzz(func(t *testing.T, lat, lng, radius float64) {
		p := geo.LatLng{Lat: lat, Lng: lng}
		if p.Validate() != nil || math.IsNaN(radius) || radius < 0 || radius > 100000 {
			t.Skip()
		}
		seed := math.Float64bits(lat) ^ math.Float64bits(lng)<<1 ^ math.Float64bits(radius)<<2
		r := newRand(seed)
		c := coverCase{res: 7, depth: 2, p: p, radiusM: radius, splits: splitsAround(r, p, 7, 2)}
		d := DefaultDoc(members(3))
		d.Splits = c.splits
		m := mustMap(t, d)
		points := pointsInCircle(r, p, radius, 16)
		checkCover(t, m.Layout(), c, m.Layout().Cover(p, radius), points)
		checkRoute(t, m, c, p, points)
	})
}

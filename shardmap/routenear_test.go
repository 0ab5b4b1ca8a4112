package shardmap

import (
	"math"
	"slices"
	"testing"

	"github.com/geomatch/geomatch/internal/geo"
)

// checkRouteNear asserts that RouteNear's targets hold the shard of every
// sampled point, each under its owner, that they are a subset of Route's,
// sorted like them, and that no target is empty.
func checkRouteNear(t testing.TB, m *Map, c coverCase, p geo.LatLng, points []geo.LatLng) {
	t.Helper()
	checkNarrow(t, m, c, p, m.Route(p, c.radiusM), m.RouteNear(p, c.radiusM), points)
}

// checkNarrow asserts that near, the narrowing of wide for a search of
// c.radiusM around p, holds the shard of every sampled point, each under
// its owner, that it is a subset of wide, sorted like it, and that no
// target is empty.
func checkNarrow(t testing.TB, m *Map, c coverCase, p geo.LatLng, routed, near []Target, points []geo.LatLng) {
	t.Helper()
	wide := map[Cell]string{}
	for _, tg := range routed {
		for _, s := range tg.Shards {
			wide[s] = tg.Member.ID
		}
	}
	where := map[Cell]string{}
	for i, tg := range near {
		if i > 0 && near[i-1].Member.ID >= tg.Member.ID {
			t.Fatalf("%v: RouteNear targets not sorted by member id", c)
		}
		if len(tg.Shards) == 0 || !slices.IsSorted(tg.Shards) {
			t.Fatalf("%v: RouteNear target %s has no or unsorted shards", c, tg.Member.ID)
		}
		for _, s := range tg.Shards {
			if wide[s] != tg.Member.ID {
				t.Fatalf("%v: RouteNear lists %s under %s, Route under %q", c, s, tg.Member.ID, wide[s])
			}
			where[s] = tg.Member.ID
		}
	}
	for _, x := range points {
		if s := m.Layout().ShardOf(x); where[s] == "" {
			t.Fatalf("%v: RouteNear from %v: MISS: point %v at %.6f m has shard %s, not routed", c, p, x, geo.DistanceM(p, x), s)
		}
	}
}

// TestRouteNearIsExactSafe is the exact-cover property of RouteNear, on the
// searches of TestCoverIsExactSafe plus small radii (the ones a router
// narrows a search to: the k-th distance of a first answer).
func TestRouteNearIsExactSafe(t *testing.T) {
	cases := 2000
	if testing.Short() {
		cases = 200
	}
	r := newRand(23)
	configs := []struct{ res, depth int }{{7, 2}, {7, 2}, {7, 2}, {7, 0}, {0, 3}, {3, 3}, {5, 1}, {10, 3}, {13, 2}}
	for i := range cases {
		cfg := configs[i%len(configs)]
		c := coverCase{res: cfg.res, depth: cfg.depth, p: awkwardPoint(r, cfg.res)}
		c.radiusM = randomRadius(r, cfg.res)
		if i%2 == 0 {
			c.radiusM = math.Min(c.radiusM, 400*r.Float64())
		}
		if r.IntN(4) != 0 {
			c.splits = splitsAround(r, c.p, cfg.res, cfg.depth)
		}
		d := DefaultDoc(members(1 + r.IntN(6)))
		d.ShardRes, d.MaxSplitDepth, d.Splits = c.res, c.depth, c.splits
		m := mustMap(t, d)
		n := 64
		if c.radiusM <= circMaxM(cfg.res) {
			n = 160 // narrowed: sample the circle more densely
		}
		checkRouteNear(t, m, c, c.p, pointsInCircle(r, c.p, c.radiusM, n))
		if c.radiusM > 10000 {
			continue
		}
		q := destination(c.p, 2*math.Pi*r.Float64(), r.Float64()*circMaxM(cfg.res))
		checkRouteNear(t, m, c, q, pointsInCircle(r, q, c.radiusM, 32))
		if cfg.res < 5 {
			continue // coarse shards: thousands of fine cells each, slow to narrow
		}
		// A nearby search narrows its first, wider answer to the k-th
		// distance.
		wide := m.Route(q, c.radiusM)
		c.radiusM *= r.Float64()
		checkNarrow(t, m, c, q, wide, m.Narrow(wide, q, c.radiusM), pointsInCircle(r, q, c.radiusM, n))
	}
}

// TestRouteNearNarrows checks that RouteNear is what it is for: in New York
// at the defaults, a 200 m search routes to fewer shards than Route's.
func TestRouteNearNarrows(t *testing.T) {
	m := mustMap(t, DefaultDoc(members(3)))
	r := newRand(24)
	wide, near := 0, 0
	for range 500 {
		p := nycPoint(r)
		for _, tg := range m.Route(p, 200) {
			wide += len(tg.Shards)
		}
		for _, tg := range m.RouteNear(p, 200) {
			near += len(tg.Shards)
		}
	}
	t.Logf("200 m searches in New York: Route %.2f shards, RouteNear %.2f", float64(wide)/500, float64(near)/500)
	if near*2 > wide {
		t.Errorf("RouteNear kept %d of Route's %d shards, want at most half", near, wide)
	}
}

func TestRouteNearInvalid(t *testing.T) {
	m := mustMap(t, DefaultDoc(members(3)))
	for _, bad := range []struct {
		p geo.LatLng
		r float64
	}{{geo.LatLng{Lat: math.NaN()}, 1}, {nyc, math.NaN()}, {nyc, math.Inf(1)}, {geo.LatLng{Lng: 200}, 1}} {
		if got := m.RouteNear(bad.p, bad.r); got != nil {
			t.Errorf("RouteNear(%v, %v) = %v, want nil", bad.p, bad.r, got)
		}
		if got := m.Narrow(m.Route(nyc, 2000), bad.p, bad.r); got != nil {
			t.Errorf("Narrow(Route(nyc, 2000), %v, %v) = %v, want nil", bad.p, bad.r, got)
		}
	}
	if got := m.RouteNear(nyc, -1); len(got) != 1 || len(got[0].Shards) != 1 || got[0].Shards[0] != m.Layout().ShardOf(nyc) {
		t.Errorf("RouteNear(nyc, -1) = %v, want nyc's shard alone", got)
	}
}

// TestRegionCacheIsBounded fills a small region cache with more shards than
// it holds.
func TestRegionCacheIsBounded(t *testing.T) {
	l := mustLayout(t, 7, 2, nil)
	c := newRegionCache(50 * 2 * routeStripes * 4) // about 4 regions per stripe generation
	cells := nycCells(7)
	for _, s := range cells {
		if g := c.get(l, s); len(g.centers) != 49 {
			t.Fatalf("region of %s has %d centers, want 49", s, len(g.centers))
		}
	}
	points := 0
	for i := range c.stripes {
		st := &c.stripes[i]
		for _, g := range st.cur {
			points += 1 + len(g.centers)
		}
		for _, g := range st.prev {
			points += 1 + len(g.centers)
		}
	}
	if limit := 2 * routeStripes * c.genSize; points > limit || len(cells) < 100 {
		t.Errorf("%d cells: cache holds %d points, limit %d", len(cells), points, limit)
	}
}

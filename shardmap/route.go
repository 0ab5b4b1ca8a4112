package shardmap

import (
	"math"
	"sort"
	"sync"

	"github.com/geomatch/geomatch/internal/geo"
)

// Route cache parameters.
const (
	// routeCacheEntries bounds the number of cached answers of a Map.
	routeCacheEntries = 1 << 16
	// routeCacheCells bounds the total size of the cached answers, in
	// shards (8 bytes each, plus a target header per member): 4 Mi shards,
	// about 40 MB, however large the radii clients ask for (a 100 km
	// answer holds about 7,000 shards).
	routeCacheCells = 1 << 22
	// routeStripes spreads the cache over independently locked stripes so
	// concurrent routers do not queue on one mutex.
	routeStripes = 16
	// Radii are rounded up to bucket k = minRouteBucketM * 2^(k/4): at most
	// 19% more radius than asked, 45 buckets from 50 m to MaxCachedRadiusM.
	minRouteBucketM   = 50
	routeBucketsPerX2 = 4
	numRouteBuckets   = 45
	// MaxCachedRadiusM is the largest search radius Route answers from its
	// cache (the last bucket, 102.4 km); larger radii are computed on every
	// call, at the cost of Cover.
	MaxCachedRadiusM = minRouteBucketM << ((numRouteBuckets - 1) / routeBucketsPerX2)
)

// Route returns the members to ask, with the shards each owns, for a search
// of radius radiusM meters around p. Like Cover it is exact-safe: the
// shards of all targets include ShardOf(x) for every x within radiusM of p,
// and each shard is listed under its Owner. Targets are sorted by member
// id, their shards sorted; shards nobody can own (every member drained) are
// left out. A negative radius counts as 0; an invalid p or a NaN or
// infinite radius gives nil.
//
// Answers are cached by (cell of p at Res+1, radius rounded up to a
// bucket), so one answer serves every point of the cell: it is the cover of
// the cell's center with the bucket radius plus the cell's circumradius
// bound. That makes cached answers a little wider than Cover(p, radiusM):
// at the defaults, a 2 km search in New York gets about 15 shards instead
// of 9 (keying by the cell at Res would give 19, on more members; see
// TestCoverSizeReport), and New York's ~2,000 cells at Res+1 times a few
// radius buckets fit the cache many times over. A hit costs the cell of p
// (through the fine-cell locator: pure Go for positions near ones seen
// before, a cgo call otherwise) and one map lookup under a striped mutex,
// and allocates nothing. Radii above
// MaxCachedRadiusM are not cached.
//
// The returned slice and the Shards slices in it are shared by all callers:
// they are read-only.
func (m *Map) Route(p geo.LatLng, radiusM float64) []Target {
	if p.Validate() != nil || math.IsNaN(radiusM) || math.IsInf(radiusM, 0) {
		return nil
	}
	return m.route(p, radiusM)
}

// RouteHome is Route with the home target: the index in the answer of the
// target that owns the shard of p itself (-1 when no target does, e.g.
// every member is drained). Both go through the locators (pure Go for
// positions near ones seen before), so a warm path makes no cgo call. The answer is shared and read-only, as
// Route's.
func (m *Map) RouteHome(p geo.LatLng, radiusM float64) (ts []Target, home int) {
	if p.Validate() != nil || math.IsNaN(radiusM) || math.IsInf(radiusM, 0) {
		return nil, -1
	}
	fine := m.layout.FineCell(p)
	ts = m.route(p, radiusM)
	home = -1
	if shard := m.layout.ShardOfFine(fine); shard != 0 {
		if o, ok := m.owner(shard); ok {
			for i := range ts {
				if ts[i].Member.ID == o.ID {
					home = i
					break
				}
			}
		}
	}
	return ts, home
}

// route is Route for a valid p and radius.
func (m *Map) route(p geo.LatLng, radiusM float64) []Target {
	radiusM = max(radiusM, 0)
	b := m.routes.bucket(radiusM)
	if b < 0 {
		return m.targets(m.layout.cover(p, radiusM))
	}
	k := routeKey{cell: m.keyCell(p), bucket: uint8(b)}
	if ts, ok := m.routes.get(k); ok {
		return ts
	}
	ts := m.routeKeyed(k)
	m.routes.put(k, ts)
	return ts
}

// keyCell returns the route-cache key cell of p: h3.LatLngToCell's cell at
// the cache's key resolution, through that resolution's locator (pure Go
// for positions near ones seen before). The parent of p's fine cell would
// not do: H3's cells do not nest exactly, and p may lie outside the
// hexagon of its fine cell's ancestor, beyond the circumradius bound the
// cached answer is widened by.
func (m *Map) keyCell(p geo.LatLng) Cell {
	return locatorFor(m.routes.keyRes).cell(p.Lat, p.Lng)
}

// routeKeyed computes the answer cached under k: the targets of the cover
// of k's cell center with the bucket radius plus the cell's circumradius
// bound, which contains the circle of the bucket radius around any point
// of the cell.
func (m *Map) routeKeyed(k routeKey) []Target {
	r := m.routes.buckets[k.bucket] + m.layout.circ[m.routes.keyRes]
	return m.targets(m.layout.cover(center(k.cell), r))
}

// bucket returns the smallest bucket whose radius is at least r, -1 when r
// is above MaxCachedRadiusM.
func (c *routeCache) bucket(r float64) int {
	b := sort.SearchFloat64s(c.buckets[:], r)
	if b == numRouteBuckets {
		return -1
	}
	return b
}

// routeKey is the cache key of Route.
type routeKey struct {
	cell   Cell
	bucket uint8
}

// routeCache is a bounded map from routeKey to Route answers, split into
// stripes. Each stripe keeps two generations: lookups promote entries from
// the old generation to the current one, and when the current one is full
// (in entries or in cells) it becomes the old one and the previous old one
// is dropped. That keeps what is used, like an LRU, at the cost of one map
// swap per generation.
type routeCache struct {
	keyRes  int
	genCap  int                      // entries per generation of a stripe
	genSize int                      // cells per generation of a stripe
	buckets [numRouteBuckets]float64 // bucket radii, increasing
	stripes [routeStripes]routeStripe
}

type routeStripe struct {
	mu        sync.Mutex
	cur, prev map[routeKey][]Target
	curSize   int      // cells in cur
	_         [32]byte // keep stripes on separate cache lines
}

// newRouteCache returns a cache of at most entries answers holding at most
// cells shards in all, keyed by cells one resolution finer than l's
// shards.
func newRouteCache(l *Layout, entries, cells int) *routeCache {
	c := &routeCache{
		keyRes:  min(l.res+1, maxRes),
		genCap:  max(1, entries/(2*routeStripes)),
		genSize: max(1, cells/(2*routeStripes)),
	}
	for b := range c.buckets {
		c.buckets[b] = minRouteBucketM * math.Exp2(float64(b)/routeBucketsPerX2)
	}
	c.buckets[numRouteBuckets-1] = MaxCachedRadiusM // exactly, despite rounding
	for i := range c.stripes {
		c.stripes[i].cur = make(map[routeKey][]Target)
	}
	return c
}

func (c *routeCache) stripe(k routeKey) *routeStripe {
	return &c.stripes[(splitmix64(uint64(k.cell))^uint64(k.bucket))%routeStripes]
}

func (c *routeCache) get(k routeKey) ([]Target, bool) {
	s := c.stripe(k)
	s.mu.Lock()
	defer s.mu.Unlock()
	if ts, ok := s.cur[k]; ok {
		return ts, true
	}
	ts, ok := s.prev[k]
	if ok {
		c.insertLocked(s, k, ts)
	}
	return ts, ok
}

func (c *routeCache) put(k routeKey, ts []Target) {
	s := c.stripe(k)
	s.mu.Lock()
	defer s.mu.Unlock()
	c.insertLocked(s, k, ts)
}

func (c *routeCache) insertLocked(s *routeStripe, k routeKey, ts []Target) {
	size := answerSize(ts)
	if size > c.genSize {
		return // too large to cache: Route computes it every time
	}
	if len(s.cur) >= c.genCap || s.curSize+size > c.genSize {
		s.prev, s.cur, s.curSize = s.cur, make(map[routeKey][]Target), 0
	}
	s.cur[k] = ts
	s.curSize += size
}

// answerSize is the size of a Route answer in cells: its shards plus one
// per target and one for the entry.
func answerSize(ts []Target) int {
	n := 1 + len(ts)
	for _, t := range ts {
		n += len(t.Shards)
	}
	return n
}

// len returns the number of cached answers.
func (c *routeCache) len() int {
	n := 0
	for i := range c.stripes {
		s := &c.stripes[i]
		s.mu.Lock()
		n += len(s.cur) + len(s.prev)
		s.mu.Unlock()
	}
	return n
}

// size returns the number of cells of the cached answers.
func (c *routeCache) size() int {
	n := 0
	for i := range c.stripes {
		s := &c.stripes[i]
		s.mu.Lock()
		for _, ts := range s.cur {
			n += answerSize(ts)
		}
		for _, ts := range s.prev {
			n += answerSize(ts)
		}
		s.mu.Unlock()
	}
	return n
}

// Region cache parameters.
const (
	// regionCachePoints bounds the fine-cell centers the region cache of a
	// Map holds: 1 Mi points of 24 bytes, about 24 MB; a shard at the
	// defaults has 49 (7 at resolution 8, 1 at 9), so about 20,000 shards,
	// several cities' worth.
	regionCachePoints = 1 << 20
)

// RouteNear is Route narrowed by a finer test, for small radii:
// Narrow(Route(p, radiusM), p, radiusM).
func (m *Map) RouteNear(p geo.LatLng, radiusM float64) []Target {
	return m.Narrow(m.Route(p, radiusM), p, radiusM)
}

// Narrow returns the targets of ts, a Route answer for p with a radius of
// at least radiusM, that own a shard whose region comes within radiusM of
// p by the centers of its fine cells (every point of a shard's region lies
// within circMaxM(FineRes) of the center of one of its fine cells, so a
// shard none of whose fine-cell centers is within radiusM +
// circMaxM(FineRes) of p holds no point within radiusM), each with those
// shards only; targets left without a shard are dropped. It is exact-safe
// like Route: for every x within radiusM of p, the answer lists ShardOf(x)
// under its owner.
//
// Route answers from a cache keyed by the cell of p and a radius bucket,
// and its cover is exact-safe through bounds that are loose for radii below
// the shard size: a 200 m search routes to the 7 or so shards around p,
// usually on every member. Narrow cuts that to the shards that come within
// about radiusM + 120 m of p (the fine cells' circumradius bound less their
// inradius), one or two, so a router asks fewer members. Narrowing the
// answer of a larger search that was routed anyway (the first step of a
// nearby search) costs no second Route, and no cover computation when that
// radius's bucket is not cached yet.
//
// Radii above circMaxM(Res), the shards' own size bound, are not narrowed:
// the answer is a copy of ts.
//
// Cost: one box test per listed shard and up to one haversine term per
// fine cell of the shards that pass it (about 1 µs for a shard of 49 fine
// cells), with each shard's fine-cell centers cached (computed once with 50
// cgo calls). The answer is newly allocated (two allocations) and the
// caller's to keep; it shares nothing with ts.
func (m *Map) Narrow(ts []Target, p geo.LatLng, radiusM float64) []Target {
	if len(ts) == 0 || p.Validate() != nil || math.IsNaN(radiusM) || math.IsInf(radiusM, 0) {
		return nil
	}
	radiusM = max(radiusM, 0)
	n := 0
	for _, t := range ts {
		n += len(t.Shards)
	}
	// Above the shards' size, the test would keep nearly every shard of
	// the answer, and the answer grows with the square of the radius:
	// keep it as it is.
	narrow := radiusM <= m.layout.circ[m.layout.res]
	near := newNearTest(p, radiusM+m.layout.circ[m.layout.fineRes])
	cells := make([]Cell, 0, n)
	var out []Target
	for _, t := range ts {
		from := len(cells)
		for _, s := range t.Shards {
			if !narrow || near.reaches(m.regions.get(m.layout, s)) {
				cells = append(cells, s)
			}
		}
		if len(cells) > from {
			if out == nil {
				out = make([]Target, 0, len(ts))
			}
			out = append(out, Target{Member: t.Member, Shards: cells[from:len(cells):len(cells)]})
		}
	}
	return out
}

// nearTest decides whether a point of a shard's fine-cell centers lies
// within reach of q, through the haversine term of geo.DistanceM (the same
// formula, before its arcsine), with slack far above rounding error.
type nearTest struct {
	q          geo.LatLng
	lat, lng   float64 // q in radians
	cos        float64 // cos(lat)
	reachM     float64
	h          float64 // haversine term of reachM, with slack
	everywhere bool    // reachM is at least half the circumference
}

func newNearTest(q geo.LatLng, reachM float64) nearTest {
	const radPerDeg = math.Pi / 180
	t := nearTest{q: q, lat: q.Lat * radPerDeg, lng: q.Lng * radPerDeg, reachM: reachM}
	t.cos = math.Cos(t.lat)
	half := reachM / (2 * geo.EarthRadiusM)
	if half >= math.Pi/2 {
		t.everywhere = true
		return t
	}
	s := math.Sin(half)
	// A relative 1e-9 covers the rounding of both sides (about 1e-15) and
	// of the distances the caller's radius came from; the absolute term
	// covers radii of a few µm.
	t.h = s*s*(1+1e-9) + 1e-24
	return t
}

// reaches reports whether some fine-cell center of r may be within the
// test's reach of q.
func (t *nearTest) reaches(r *region) bool {
	if t.everywhere {
		return true
	}
	if r.boxed && geo.BoxLowerBoundM(t.q, r.minLat, r.minLng, r.maxLat, r.maxLng) > t.reachM {
		return false
	}
	for _, c := range r.centers {
		sdlat := math.Sin((c.lat - t.lat) / 2)
		sdlng := math.Sin((c.lng - t.lng) / 2)
		if sdlat*sdlat+t.cos*c.cos*sdlng*sdlng <= t.h {
			return true
		}
	}
	return false
}

// region is what RouteNear knows of one shard: the centers of its fine
// cells and, unless they straddle the antimeridian or surround a pole, their
// bounding box.
type region struct {
	centers                        []regionPoint
	boxed                          bool
	minLat, minLng, maxLat, maxLng float64 // degrees
}

// regionPoint is a fine-cell center in radians, with the cosine of its
// latitude.
type regionPoint struct{ lat, lng, cos float64 }

// newRegion computes the region of shard s under layout l (one cgo call for
// its fine descendants, one per descendant for its center).
func newRegion(l *Layout, s Cell) *region {
	const radPerDeg = math.Pi / 180
	fine := []Cell{s}
	if r := Resolution(s); r < l.fineRes {
		fine = s.Children(l.fineRes)
	}
	g := &region{centers: make([]regionPoint, 0, len(fine))}
	g.minLat, g.minLng, g.maxLat, g.maxLng = math.Inf(1), math.Inf(1), math.Inf(-1), math.Inf(-1)
	for _, f := range fine {
		if f == 0 {
			continue
		}
		c := center(f)
		g.centers = append(g.centers, regionPoint{lat: c.Lat * radPerDeg, lng: c.Lng * radPerDeg, cos: math.Cos(c.Lat * radPerDeg)})
		g.minLat, g.maxLat = min(g.minLat, c.Lat), max(g.maxLat, c.Lat)
		g.minLng, g.maxLng = min(g.minLng, c.Lng), max(g.maxLng, c.Lng)
	}
	// Centers spread over more than half the longitudes straddle the
	// antimeridian or surround a pole: no box (every center is tested).
	g.boxed = len(g.centers) > 0 && g.maxLng-g.minLng <= 180
	return g
}

// regionCache maps shards to their regions, bounded in points, split into
// stripes of two generations each like routeCache.
type regionCache struct {
	genSize int // points per generation of a stripe
	stripes [routeStripes]regionStripe
}

type regionStripe struct {
	mu        sync.Mutex
	cur, prev map[Cell]*region
	curSize   int      // points in cur
	_         [32]byte // keep stripes on separate cache lines
}

func newRegionCache(points int) *regionCache {
	c := &regionCache{genSize: max(1, points/(2*routeStripes))}
	for i := range c.stripes {
		c.stripes[i].cur = make(map[Cell]*region)
	}
	return c
}

// get returns the region of shard s, computing it on a miss (outside the
// stripe's lock: two callers may both compute it, and one wins).
func (c *regionCache) get(l *Layout, s Cell) *region {
	st := &c.stripes[splitmix64(uint64(s))%routeStripes]
	st.mu.Lock()
	g, ok := st.cur[s]
	if !ok {
		if g, ok = st.prev[s]; ok {
			c.insertLocked(st, s, g)
		}
	}
	st.mu.Unlock()
	if ok {
		return g
	}
	g = newRegion(l, s)
	st.mu.Lock()
	c.insertLocked(st, s, g)
	st.mu.Unlock()
	return g
}

func (c *regionCache) insertLocked(st *regionStripe, s Cell, g *region) {
	size := 1 + len(g.centers)
	if size > c.genSize {
		return
	}
	if st.curSize+size > c.genSize {
		st.prev, st.cur, st.curSize = st.cur, make(map[Cell]*region), 0
	}
	st.cur[s] = g
	st.curSize += size
}

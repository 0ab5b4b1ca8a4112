package shardmap

import (
	"math"
	"sort"
	"sync"

	"github.com/uber/h3-go/v4"

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
// radius buckets fit the cache many times over. A hit costs one cgo call
// (the cell of p, with h3-go's two small allocations) and one map lookup
// under a striped mutex, and allocates nothing else. Radii above
// MaxCachedRadiusM are not cached.
//
// The returned slice and the Shards slices in it are shared by all callers:
// they are read-only.
func (m *Map) Route(p geo.LatLng, radiusM float64) []Target {
	if p.Validate() != nil || math.IsNaN(radiusM) || math.IsInf(radiusM, 0) {
		return nil
	}
	radiusM = max(radiusM, 0)
	b := m.routes.bucket(radiusM)
	if b < 0 {
		return m.targets(m.layout.cover(p, radiusM))
	}
	k := routeKey{cell: h3.LatLngToCell(h3.LatLng{Lat: p.Lat, Lng: p.Lng}, m.routes.keyRes), bucket: uint8(b)}
	if ts, ok := m.routes.get(k); ok {
		return ts
	}
	ts := m.routeKeyed(k)
	m.routes.put(k, ts)
	return ts
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

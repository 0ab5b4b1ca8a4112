package index

import (
	"cmp"
	"math"
	"slices"

	"github.com/uber/h3-go/v4"

	"github.com/geomatch/geomatch/internal/geo"
)

// nearbyRetries is how many times Nearby re-runs a search that overlapped a
// driver leaving a shard (which could show the driver twice) before it
// settles for de-duplicating the answer.
const nearbyRetries = 2

// maxPooledHeap bounds the result heap a pooled search keeps, so one huge
// query does not pin memory.
const maxPooledHeap = 4096

// Nearby appends to dst the k drivers nearest to q within radiusM meters
// (inclusive) among the given shards (unknown or empty shards are skipped,
// repeated ones searched once) that pass f, nearest first, ties broken by
// driver id, and returns dst. The answer equals geo.NearestBrute over the
// same drivers exactly: ids, order and float distances (geo.DistanceM). A
// non-positive k, a negative or NaN radius or an invalid q give nothing.
//
// Nearby never takes the writer lock: it read-locks one shard at a time
// while searching it, so it runs concurrently with updates, and reflects for
// each shard its state at the time it was searched. A driver that leaves one
// of the shards while the call runs is never returned twice: the search
// re-runs (up to nearbyRetries times) and then de-duplicates; under moves
// overlapping every run, such a driver may be missing from the answer.
//
// Allocation budget: zero allocations per call once warmed up, when dst has
// room for the answer: the search state and its heap are pooled here, the
// R-tree keeps a pooled queue per tree (and, like any sync.Pool, per P).
// When garbage collections empty those pools, the next search of each shard
// allocates its queue again: a few allocations per shard, amortized to
// nothing in BenchmarkNearby.
func (ix *Index) Nearby(q geo.LatLng, radiusM float64, k int, shards []h3.Cell, f Filter, dst []Neighbor) []Neighbor {
	if k <= 0 || !(radiusM >= 0) || len(shards) == 0 || !validPoint(q) {
		return dst
	}
	classes := ix.classes.Load()
	class, anyClass := uint16(0), f.VehicleClass == ""
	if !anyClass {
		id, ok := classes.ids[f.VehicleClass]
		if !ok {
			return dst // no driver has this class
		}
		class = id
	}
	s := ix.searches.Get().(*search)
	s.q, s.radius, s.k = q, radiusM, k
	s.cosQ = math.Cos(q.Lat * degToRad)
	s.status, s.class, s.anyClass, s.classes = f.Status, class, anyClass, classes
	for attempt := 0; ; attempt++ {
		seq := ix.relocs.Load()
		s.run(shards)
		if ix.relocs.Load() == seq {
			break
		}
		if attempt == nearbyRetries {
			s.dedupe()
			break
		}
	}
	slices.SortFunc(s.heap, compareNeighbors)
	dst = append(dst, s.heap...)
	s.release()
	return dst
}

// search is the state of one Nearby call, pooled per Index. distFn and
// visitFn are method values bound once, when the search is made, so passing
// them to the R-tree does not allocate.
type search struct {
	ix       *Index
	q        geo.LatLng
	radius   float64
	k        int
	limit    float64 // min(radius, k-th best distance so far)
	sinLimit float64 // sin(limit/R), when lngPrune
	lngPrune bool    // the longitude bound of beyond applies at this limit
	cosQ     float64 // cos of the query's latitude
	status   Status
	class    uint16
	anyClass bool
	classes  *classTable
	cur      *shard      // shard being searched
	heap     []Neighbor  // max-heap by (distance, id): heap[0] is the worst kept
	cands    []candidate // shards to search

	distFn  func(min, max [2]float64, it item, isItem bool) float64
	visitFn func(min, max [2]float64, it item, d float64) bool
}

// candidate is a shard to search and the lower bound of its distance to q.
type candidate struct {
	sh     *shard
	bound  float64 // lower bound of the distance from q to the shard's drivers
	center float64 // squared distance (in degrees, flattened) from q to its box's center, to order ties
}

func (ix *Index) newSearch() *search {
	s := &search{ix: ix}
	s.distFn = s.dist
	s.visitFn = s.visit
	return s
}

// release returns s to the pool without references to drivers or shards.
func (s *search) release() {
	clear(s.heap)
	s.heap = s.heap[:0]
	if cap(s.heap) > maxPooledHeap {
		s.heap = nil
	}
	clear(s.cands)
	s.cands = s.cands[:0]
	s.cur, s.classes = nil, nil
	s.ix.searches.Put(s)
}

// run searches the shards from scratch.
func (s *search) run(cells []h3.Cell) {
	clear(s.heap)
	s.heap = s.heap[:0]
	s.setLimit(s.radius)
	s.collect(cells)
	for _, c := range s.cands {
		if c.bound > s.limit {
			break // sorted by bound: the rest are farther still
		}
		if s.ix.testBetweenShards != nil {
			s.ix.testBetweenShards()
		}
		s.cur = c.sh
		c.sh.mu.RLock()
		c.sh.tree.Nearby(s.distFn, s.visitFn)
		c.sh.mu.RUnlock()
	}
	s.cur = nil
}

// collect fills s.cands with the distinct known shards of cells that may
// hold a driver within the radius, nearest bound first.
func (s *search) collect(cells []h3.Cell) {
	clear(s.cands)
	s.cands = s.cands[:0]
	ix := s.ix
	ix.shardsMu.RLock()
	for _, c := range cells {
		if sh := ix.shards[c]; sh != nil {
			s.cands = append(s.cands, candidate{sh: sh})
		}
	}
	ix.shardsMu.RUnlock()
	slices.SortFunc(s.cands, func(a, b candidate) int { return cmp.Compare(a.sh.cell, b.sh.cell) })
	s.cands = slices.CompactFunc(s.cands, func(a, b candidate) bool { return a.sh == b.sh })
	n := 0
	for _, c := range s.cands {
		c.sh.mu.RLock()
		size := c.sh.tree.Len()
		min, max := c.sh.tree.Bounds()
		c.sh.mu.RUnlock()
		if size == 0 || s.beyond(min[1], min[0], max[1], max[0]) {
			continue
		}
		c.bound = geo.BoxLowerBoundM(s.q, min[1], min[0], max[1], max[0])
		if c.bound > s.radius {
			continue
		}
		// Bounding boxes of neighboring shards overlap, so several often
		// have bound 0; the one whose box is centered nearest q usually
		// holds the nearest drivers and shrinks the limit soonest.
		dLat := (min[1]+max[1])/2 - s.q.Lat
		dLng := lngGap((min[0]+max[0])/2, s.q.Lng) * s.cosQ
		c.center = dLat*dLat + dLng*dLng
		s.cands[n] = c
		n++
	}
	clear(s.cands[n:])
	s.cands = s.cands[:n]
	slices.SortFunc(s.cands, func(a, b candidate) int {
		if c := cmp.Compare(a.bound, b.bound); c != 0 {
			return c
		}
		if c := cmp.Compare(a.center, b.center); c != 0 {
			return c
		}
		return cmp.Compare(a.sh.cell, b.sh.cell)
	})
}

const (
	degToRad = math.Pi / 180
	// metersPerDegreeLat is the length of one degree of latitude on the
	// sphere of geo.DistanceM.
	metersPerDegreeLat = geo.EarthRadiusM * degToRad
)

// dist is the R-tree's distance function: for a node's box a lower bound of
// the distance of anything inside, for a driver its exact distance, both as
// geo computes them. Boxes and drivers that a cheap test proves farther than
// the limit get +Inf instead, which sinks them to the end of the queue
// without trigonometry: the limit only shrinks, so they can never be needed.
// Drivers the filter rejects get +Inf too, from the copy of their status and
// class in the tree item, without touching their entries. Tree rectangles
// are {lng, lat}. Called with the shard read-locked.
func (s *search) dist(min, max [2]float64, it item, isItem bool) float64 {
	if s.beyond(min[1], min[0], max[1], max[0]) {
		return math.Inf(1)
	}
	if !isItem {
		return geo.BoxLowerBoundM(s.q, min[1], min[0], max[1], max[0])
	}
	if !s.match(it) {
		return math.Inf(1)
	}
	return geo.DistanceM(s.q, geo.LatLng{Lat: min[1], Lng: min[0]})
}

// beyond reports, cheaply and conservatively, that every point of the box
// is farther from q than the limit. Two bounds, each shrunk by margins far
// above rounding error (as geo.BoxLowerBoundM does):
//   - the latitude gap: no path between two latitudes is shorter than the
//     meridian arc between them;
//   - the longitude gap g to the nearer edge: every point of the box is at
//     least as far as the great circle of that edge's meridian, which is at
//     R·asin(cos φq·sin g) ≥ R·asin(cos φq·(g − g³/6)).
func (s *search) beyond(minLat, minLng, maxLat, maxLng float64) bool {
	q := s.q
	gapLat := 0.0
	if q.Lat < minLat {
		gapLat = minLat - q.Lat
	} else if q.Lat > maxLat {
		gapLat = q.Lat - maxLat
	}
	if gapLat*metersPerDegreeLat*(1-1e-9)-1e-6 > s.limit {
		return true
	}
	if !s.lngPrune || (q.Lng >= minLng && q.Lng <= maxLng) {
		return false
	}
	g := math.Min(lngGap(q.Lng, minLng), lngGap(q.Lng, maxLng)) * degToRad
	return s.cosQ*(g-g*g*g/6)*(1-1e-9)-1e-12 > s.sinLimit
}

// setLimit sets the pruning distance and what beyond derives from it.
func (s *search) setLimit(limit float64) {
	s.limit = limit
	a := limit / geo.EarthRadiusM
	s.lngPrune = a < math.Pi/2 // beyond a quarter circle the sine bound no longer holds
	if s.lngPrune {
		s.sinLimit = math.Sin(a)
	}
}

// lngGap is the absolute longitude difference in degrees, wrapped to [0, 180].
func lngGap(a, b float64) float64 {
	d := math.Abs(a - b)
	if d > 180 {
		d = 360 - d
	}
	return d
}

// visit receives drivers in non-decreasing distance. It stops the shard at
// the first one strictly beyond the limit: a driver at exactly the k-th
// distance can still win on its id. Drivers the filter rejects arrive only
// with an infinite radius (dist gives them +Inf). Called with the shard
// read-locked.
func (s *search) visit(min, _ [2]float64, it item, d float64) bool {
	if d > s.limit {
		return false
	}
	if !s.match(it) {
		return true
	}
	if len(s.heap) < s.k {
		s.heap = append(s.heap, s.neighbor(min, it, d))
		s.up(len(s.heap) - 1)
	} else {
		top := &s.heap[0]
		if d > top.DistanceM || (d == top.DistanceM && it.e.id >= top.Driver.ID) {
			return true
		}
		*top = s.neighbor(min, it, d)
		s.down(0)
	}
	if len(s.heap) == s.k && s.heap[0].DistanceM < s.limit {
		s.setLimit(s.heap[0].DistanceM)
	}
	return true
}

// match applies the filter to the copy of status and class in the item.
func (s *search) match(it item) bool {
	if s.status == StatusUnspecified {
		if it.status == StatusOffline {
			return false
		}
	} else if it.status != s.status {
		return false
	}
	return s.anyClass || it.class == s.class
}

// neighbor copies the driver found in the tree at pt. Called with the shard
// read-locked.
func (s *search) neighbor(pt [2]float64, it item, d float64) Neighbor {
	return Neighbor{
		Driver: Driver{
			ID:           it.e.id,
			Pos:          geo.LatLng{Lat: pt[1], Lng: pt[0]},
			TimestampMs:  it.e.ts,
			Status:       it.status,
			VehicleClass: s.ix.className(&s.classes, it.class),
			Shard:        s.cur.cell,
		},
		DistanceM: d,
	}
}

// worse orders the heap: a is worse than b if it is farther, or as far with
// a larger id.
func worse(a, b *Neighbor) bool {
	if a.DistanceM != b.DistanceM {
		return a.DistanceM > b.DistanceM
	}
	return a.Driver.ID > b.Driver.ID
}

func (s *search) up(i int) {
	h := s.heap
	for i > 0 {
		p := (i - 1) / 2
		if !worse(&h[i], &h[p]) {
			return
		}
		h[i], h[p] = h[p], h[i]
		i = p
	}
}

func (s *search) down(i int) {
	h := s.heap
	for {
		w, l, r := i, 2*i+1, 2*i+2
		if l < len(h) && worse(&h[l], &h[w]) {
			w = l
		}
		if r < len(h) && worse(&h[r], &h[w]) {
			w = r
		}
		if w == i {
			return
		}
		h[i], h[w] = h[w], h[i]
		i = w
	}
}

// dedupe keeps one copy of each driver, the nearer one. Only used when a
// search kept overlapping drivers leaving their shards.
func (s *search) dedupe() {
	slices.SortFunc(s.heap, func(a, b Neighbor) int {
		if c := cmp.Compare(a.Driver.ID, b.Driver.ID); c != 0 {
			return c
		}
		return cmp.Compare(a.DistanceM, b.DistanceM)
	})
	s.heap = slices.CompactFunc(s.heap, func(a, b Neighbor) bool { return a.Driver.ID == b.Driver.ID })
}

// compareNeighbors is geo.CompareHits for neighbors: nearest first, ties by id.
func compareNeighbors(a, b Neighbor) int {
	if c := cmp.Compare(a.DistanceM, b.DistanceM); c != 0 {
		return c
	}
	return cmp.Compare(a.Driver.ID, b.Driver.ID)
}

// validPoint is geo.LatLng.Validate without building an error.
func validPoint(p geo.LatLng) bool {
	return p.Lat >= -90 && p.Lat <= 90 && p.Lng >= -180 && p.Lng <= 180
}

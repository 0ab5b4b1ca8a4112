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
// room for the answer: the search state and its heap are pooled here (like
// any sync.Pool, per P), and the grid search allocates nothing. When
// a garbage collection empties the pool, the next call allocates its state
// again, amortized to nothing in BenchmarkNearby.
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
	s.origin = geo.NewOrigin(q)
	s.status, s.class, s.anyClass, s.classes = f.Status, class, anyClass, classes
	s.onStreamOnly = f.OnStreamOnly
	for attempt := 0; ; attempt++ {
		seq := ix.relocs.Load()
		s.run(shards)
		s.results()
		if ix.relocs.Load() == seq {
			break
		}
		if attempt == nearbyRetries {
			s.dedupe()
			slices.SortFunc(s.res, compareNeighbors)
			break
		}
	}
	dst = append(dst, s.res...)
	s.release()
	return dst
}

// search is the state of one Nearby call, pooled per Index.
type search struct {
	ix       *Index
	q        geo.LatLng
	radius   float64
	k        int
	limit    float64 // min(radius, k-th best distance so far)
	sinLimit float64 // sin(limit/R), when lngPrune
	lngPrune bool    // the longitude bound of beyond applies at this limit
	cosQ     float64 // cos of the query's latitude
	origin   geo.Origin
	status   Status
	class    uint16
	anyClass bool
	// onStreamOnly keeps drivers whose last update came on a stream.
	onStreamOnly bool
	classes      *classTable
	curCell      h3.Cell     // cell of the shard being searched
	heap         []kept      // max-heap by (distance, id): heap[0] is the worst kept
	nbs          []Neighbor  // copies of kept drivers, indexed by slot.nb
	free         []int32     // indexes of nbs no slot uses
	res          []Neighbor  // the answer
	cands        []candidate // shards to search

	boxes [2]box // the current round's search boxes
}

// candidate is a shard to search, the cell it was found under, and the
// lower bound of its distance to q.
type candidate struct {
	sh     *shard
	cell   h3.Cell
	bound  float64 // lower bound of the distance from q to the shard's drivers (cheapBound of its box)
	center float64 // squared distance (in degrees, flattened) from q to its box's center, to order ties
}

// before orders candidates by bound, then center, then cell.
func (c *candidate) before(o *candidate) bool {
	if c.bound != o.bound {
		return c.bound < o.bound
	}
	if c.center != o.center {
		return c.center < o.center
	}
	return c.cell < o.cell
}

func (ix *Index) newSearch() *search {
	return &search{ix: ix}
}

// release returns s to the pool without references to drivers or shards.
func (s *search) release() {
	clear(s.heap)
	s.heap = s.heap[:0]
	clear(s.nbs)
	s.nbs = s.nbs[:0]
	s.free = s.free[:0]
	clear(s.res)
	s.res = s.res[:0]
	if max(cap(s.heap), cap(s.nbs), cap(s.res)) > maxPooledHeap {
		s.heap, s.nbs, s.free, s.res = nil, nil, nil, nil
	}
	clear(s.cands)
	s.cands = s.cands[:0]
	s.classes = nil
	s.ix.searches.Put(s)
}

// run searches the shards from scratch, in rounds over a growing circle.
//
// A round with reach d (≤ the radius) collects every matching driver within
// d of q: for each shard whose bound is within the limit, a grid search of
// a latitude/longitude box that provably contains the spherical cap of
// radius d (it compares coordinates, no trigonometry, no queue). Each
// driver in the box is tested cheaply against the shrinking limit
// (min(d, k-th best)) and only the survivors get their exact geo.DistanceM.
// The round is conclusive when it kept k drivers (the k-th is within d, and
// every driver not seen is farther than d) or when d is the radius (the
// search is then the complete one). Otherwise d grows and the round is
// redone from scratch. The first d comes from the density of the nearest
// shard, so a round usually suffices and each one reads a few grid cells.
func (s *search) run(cells []h3.Cell) {
	s.setLimit(s.radius) // for collect
	total := s.collect(cells)
	d := s.radius
	if total > smallSearch*s.k && len(s.cands) > 0 {
		d = s.firstReach()
	}
	for {
		if !(d < s.radius) || d > maxReach {
			d = s.radius
		}
		s.round(d)
		if len(s.heap) == s.k || d == s.radius {
			break
		}
		d = s.grow(d)
	}
}

const (
	// smallSearch is the number of drivers (times k) in the shards of a
	// query up to which Nearby searches the whole radius at once.
	smallSearch = 4
	// maxReach is the reach beyond which a round searches the whole radius
	// (box formulas stay far from the poles' and antimeridian's corner cases
	// for the reaches that matter).
	maxReach = 1e6
	// firstRoundFactor is how many drivers (times k) the first round
	// expects in its circle, from the density of the nearest shard.
	firstRoundFactor = 2
)

// firstReach estimates the reach of the first round: the radius of a
// circle expected to hold firstRoundFactor·k drivers at the density of the
// nearest shard's bounding box, plus that box's distance.
func (s *search) firstReach() float64 {
	c := s.cands[0]
	c.sh.mu.RLock()
	n := c.sh.len()
	minLat, minLng, maxLat, maxLng := c.sh.minLat, c.sh.minLng, c.sh.maxLat, c.sh.maxLng
	c.sh.mu.RUnlock()
	if n == 0 {
		return s.radius // emptied meanwhile
	}
	h := (maxLat - minLat) * metersPerDegreeLat
	w := lngGap(maxLng, minLng) * metersPerDegreeLat * s.cosQ
	area := math.Max(h*w, 1)
	d := c.bound + math.Sqrt(firstRoundFactor*float64(s.k)*area/(math.Pi*float64(n+1)))
	if !(d >= 1) {
		d = 1
	}
	return d
}

// grow returns the reach of the next round after one with reach d that kept
// only len(s.heap) < k drivers: enough, at the density of matches seen, for
// about twice k, between 1.5 and 4 times d.
func (s *search) grow(d float64) float64 {
	f := 4.0
	if m := len(s.heap); m > 0 {
		f = math.Sqrt(2 * float64(s.k) / float64(m))
		f = math.Min(4, math.Max(1.5, f))
	}
	return math.Max(d*f, 1)
}

// round searches the candidate shards for the matching drivers within d,
// keeping the k best in s.heap.
func (s *search) round(d float64) {
	clear(s.heap)
	s.heap = s.heap[:0]
	clear(s.nbs)
	s.nbs = s.nbs[:0]
	s.free = s.free[:0]
	s.setLimit(d)
	for _, c := range s.cands {
		if c.bound > s.limit {
			break // sorted by bound: the rest are farther still
		}
		if s.ix.testBetweenShards != nil {
			s.ix.testBetweenShards()
		}
		s.curCell = c.cell
		nb := s.capBoxes(s.limit) // the limit shrinks as shards are searched
		c.sh.mu.RLock()
		if c.sh.cell == c.cell { // else forgotten and recycled meanwhile
			for _, b := range s.boxes[:nb] {
				s.scan(c.sh, &b)
			}
			s.materialize()
		}
		c.sh.mu.RUnlock()
	}
}

// box is a search rectangle in {lng, lat} coordinates.
type box struct{ min, max [2]float64 }

// capBoxes sets s.boxes to one or two boxes (two when it wraps around the
// antimeridian) that hold every point whose geo.DistanceM from q is at most
// d, and returns how many. The latitude band is d's meridian arc; the
// longitude half-width is the spherical cap's, asin(sin(d/R)/cos φq), or the
// whole circle when the cap comes near a pole. Both are widened by margins
// far above the rounding error of DistanceM (relative 1e-9, plus 1e-9° ≈
// 0.1 mm), so rounding can never put a point the box misses within d.
func (s *search) capBoxes(d float64) int {
	q := s.q
	a := d / geo.EarthRadiusM
	dLat := a/degToRad*(1+1e-9) + 1e-9
	minLat, maxLat := math.Max(-90, q.Lat-dLat), math.Min(90, q.Lat+dLat)
	phi := math.Abs(q.Lat) * degToRad
	dLng := 360.0 // the whole circle
	if a < 1 && phi+a*(1+1e-9)+1e-6 < math.Pi/2 {
		if x := math.Sin(a) / math.Cos(phi); x < 1-1e-6 {
			dLng = math.Asin(x)/degToRad*(1+1e-9) + 1e-9
		}
	}
	lo, hi := q.Lng-dLng, q.Lng+dLng
	switch {
	case dLng >= 180:
		s.boxes[0] = box{[2]float64{-180, minLat}, [2]float64{180, maxLat}}
		return 1
	case lo < -180:
		s.boxes[0] = box{[2]float64{-180, minLat}, [2]float64{hi, maxLat}}
		s.boxes[1] = box{[2]float64{lo + 360, minLat}, [2]float64{180, maxLat}}
		return 2
	case hi > 180:
		s.boxes[0] = box{[2]float64{lo, minLat}, [2]float64{180, maxLat}}
		s.boxes[1] = box{[2]float64{-180, minLat}, [2]float64{hi - 360, maxLat}}
		return 2
	}
	s.boxes[0] = box{[2]float64{lo, minLat}, [2]float64{hi, maxLat}}
	return 1
}

// scan offers the drivers of sh in the grid cells covering box b, in no
// particular order. Points outside b are skipped (they are farther than the
// limit b was made for), the filter is checked from the point's status and
// class, the limit with beyond's cheap bounds, and only then is the exact
// distance computed. Called with the shard read-locked.
func (s *search) scan(sh *shard, b *box) {
	minLng, minLat, maxLng, maxLat := b.min[0], b.min[1], b.max[0], b.max[1]
	c0, c1, r0, r1 := sh.cells(minLat, minLng, maxLat, maxLng)
	for r := r0; r <= r1; r++ {
		row := sh.heads[r*sh.cols : (r+1)*sh.cols]
		for c := c0; c <= c1; c++ {
			for i := row[c]; i >= 0; i = sh.link[i] {
				p := &sh.pts[i]
				if p.lat < minLat || p.lat > maxLat || p.lng < minLng || p.lng > maxLng ||
					!s.match(p) || s.beyond(p.lat, p.lng, p.lat, p.lng) {
					continue
				}
				s.offer(p, s.origin.DistanceM(geo.LatLng{Lat: p.lat, Lng: p.lng}))
			}
		}
	}
}

// collect fills s.cands with the distinct known shards of cells that may
// hold a driver within the radius, nearest bound first, and returns how many
// drivers they hold.
func (s *search) collect(cells []h3.Cell) (total int) {
	clear(s.cands)
	s.cands = s.cands[:0]
	ix := s.ix
	ix.shardsMu.RLock()
next:
	for _, c := range cells {
		if sh := ix.shards[c]; sh != nil {
			for _, o := range s.cands { // a handful of cells: no map needed
				if o.sh == sh {
					continue next
				}
			}
			s.cands = append(s.cands, candidate{sh: sh, cell: c})
		}
	}
	ix.shardsMu.RUnlock()
	n := 0
	for _, c := range s.cands {
		c.sh.mu.RLock()
		size := c.sh.len()
		if c.sh.cell != c.cell {
			size = 0 // forgotten and recycled meanwhile
		}
		minLat, minLng, maxLat, maxLng := c.sh.minLat, c.sh.minLng, c.sh.maxLat, c.sh.maxLng
		c.sh.mu.RUnlock()
		if size == 0 || s.beyond(minLat, minLng, maxLat, maxLng) {
			continue
		}
		c.bound = s.cheapBound(minLat, minLng, maxLat, maxLng)
		total += size
		// Bounding boxes of neighboring shards overlap, so several often
		// have bound 0; the one whose box is centered nearest q usually
		// holds the nearest drivers and shrinks the limit soonest.
		dLat := (minLat+maxLat)/2 - s.q.Lat
		dLng := lngGap((minLng+maxLng)/2, s.q.Lng) * s.cosQ
		c.center = dLat*dLat + dLng*dLng
		s.cands[n] = c
		n++
	}
	clear(s.cands[n:])
	s.cands = s.cands[:n]
	// Insertion sort: a handful of shards, mostly few with a small bound.
	for i := 1; i < len(s.cands); i++ {
		for j := i; j > 0 && s.cands[j].before(&s.cands[j-1]); j-- {
			s.cands[j], s.cands[j-1] = s.cands[j-1], s.cands[j]
		}
	}
	return total
}

const (
	degToRad = math.Pi / 180
	// metersPerDegreeLat is the length of one degree of latitude on the
	// sphere of geo.DistanceM.
	metersPerDegreeLat = geo.EarthRadiusM * degToRad
)

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

// cheapBound is a lower bound of the distance from q to any point of the
// box, from the two bounds of beyond without trigonometry: asin(x) ≥ x, and
// at a longitude gap of 90° or more a point is at least as far as at 90°
// (g is capped at 1.4 rad, where g − g³/6 still grows and stays below
// sin g). It orders and prunes the shards; it need not be tight.
func (s *search) cheapBound(minLat, minLng, maxLat, maxLng float64) float64 {
	q := s.q
	gapLat := 0.0
	if q.Lat < minLat {
		gapLat = minLat - q.Lat
	} else if q.Lat > maxLat {
		gapLat = q.Lat - maxLat
	}
	b := gapLat*metersPerDegreeLat*(1-1e-9) - 1e-6
	if !(q.Lng >= minLng && q.Lng <= maxLng) {
		g := math.Min(1.4, math.Min(lngGap(q.Lng, minLng), lngGap(q.Lng, maxLng))*degToRad)
		b = math.Max(b, geo.EarthRadiusM*(s.cosQ*(g-g*g*g/6)*(1-1e-9)-1e-12))
	}
	return math.Max(b, 0)
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

// kept is a driver kept in the heap: a copy of its point and its exact
// distance. nb is the index in s.nbs of its copy as a Neighbor, made while
// its shard is still read-locked (see materialize), or -1 before that.
type kept struct {
	d  float64
	p  point
	nb int32
}

// offer keeps the driver of point p, at exact distance d, if it is within
// the limit and among the k best so far by (distance, id): a driver at
// exactly the k-th distance can still win on its id. Called with the shard
// read-locked.
func (s *search) offer(p *point, d float64) {
	if d > s.limit {
		return
	}
	if len(s.heap) < s.k {
		s.heap = append(s.heap, kept{d: d, p: *p, nb: -1})
		s.up(len(s.heap) - 1)
	} else {
		top := &s.heap[0]
		if d > top.d || (d == top.d && s.ix.idOf(p.slot) >= s.id(top)) {
			return
		}
		if top.nb >= 0 {
			s.free = append(s.free, top.nb)
		}
		*top = kept{d: d, p: *p, nb: -1}
		s.down(0)
	}
	if len(s.heap) == s.k && s.heap[0].d < s.limit {
		s.setLimit(s.heap[0].d)
	}
}

// id is the driver id of a kept driver: from its copy once made, since the
// slot's id may only be read under its shard's lock.
func (s *search) id(k *kept) string {
	if k.nb >= 0 {
		return s.nbs[k.nb].Driver.ID
	}
	return s.ix.idOf(k.p.slot)
}

// materialize copies the drivers the current shard added to the heap, so
// only the few kept drivers. ids and timestamps are read, while the shard is
// still read-locked.
func (s *search) materialize() {
	for i := range s.heap {
		sl := &s.heap[i]
		if sl.nb >= 0 {
			continue
		}
		nb := s.neighbor(sl)
		if n := len(s.free); n > 0 {
			sl.nb = s.free[n-1]
			s.free = s.free[:n-1]
			s.nbs[sl.nb] = nb
		} else {
			sl.nb = int32(len(s.nbs))
			s.nbs = append(s.nbs, nb)
		}
	}
}

// results sets s.res to the copies of the kept drivers, nearest first, ties
// by id (compareNeighbors' order). It sorts the small slots, not the copies.
func (s *search) results() {
	h := s.heap
	for i := 1; i < len(h); i++ {
		for j := i; j > 0 && s.worse(&h[j-1], &h[j]); j-- {
			h[j], h[j-1] = h[j-1], h[j]
		}
	}
	clear(s.res)
	s.res = s.res[:0]
	for i := range h {
		s.res = append(s.res, s.nbs[h[i].nb])
	}
}

// match applies the filter to the point's status and class.
func (s *search) match(p *point) bool {
	if s.status == StatusUnspecified {
		if p.status == StatusOffline {
			return false
		}
	} else if p.status != s.status {
		return false
	}
	if s.onStreamOnly && !p.onStream() {
		return false
	}
	return s.anyClass || p.class == s.class
}

// neighbor copies the kept driver k of the current shard. Called with the
// shard read-locked.
func (s *search) neighbor(k *kept) Neighbor {
	return Neighbor{
		Driver: Driver{
			ID:           s.ix.idOf(k.p.slot),
			Pos:          geo.LatLng{Lat: k.p.lat, Lng: k.p.lng},
			TimestampMs:  s.ix.slots.hot.at(k.p.slot).ts,
			Status:       k.p.status,
			VehicleClass: s.ix.className(&s.classes, k.p.class),
			Shard:        s.curCell,
			OnStream:     k.p.onStream(),
		},
		DistanceM: k.d,
	}
}

// worse orders the heap: a is worse than b if it is farther, or as far with
// a larger id.
func (s *search) worse(a, b *kept) bool {
	if a.d != b.d {
		return a.d > b.d
	}
	return s.id(a) > s.id(b)
}

func (s *search) up(i int) {
	h := s.heap
	for i > 0 {
		p := (i - 1) / 2
		if !s.worse(&h[i], &h[p]) {
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
		if l < len(h) && s.worse(&h[l], &h[w]) {
			w = l
		}
		if r < len(h) && s.worse(&h[r], &h[w]) {
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
	slices.SortFunc(s.res, func(a, b Neighbor) int {
		if c := cmp.Compare(a.Driver.ID, b.Driver.ID); c != 0 {
			return c
		}
		return cmp.Compare(a.DistanceM, b.DistanceM)
	})
	s.res = slices.CompactFunc(s.res, func(a, b Neighbor) bool { return a.Driver.ID == b.Driver.ID })
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

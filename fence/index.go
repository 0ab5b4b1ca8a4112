package fence

import (
	"fmt"
	"iter"
	"math"
	"slices"

	"github.com/tidwall/rtree"
	"github.com/uber/h3-go/v4"

	"github.com/geomatch/geomatch/internal/geo"
)

// Index holds many fences for fast lookups by position: which fences hold
// a point (Containing) and which transitions a move makes (Transitions).
// See the package doc for how.
//
// Concurrency: an Index has no lock. Reads (Get, Len, Fences, Containing,
// Transitions, Moves) are safe concurrently with each other; writes (Put,
// PutPrepared, Delete) must be serialized with everything else by the
// caller. Prepare, the costly half of Put, is safe concurrently with
// everything.
type Index struct {
	res   int
	byID  map[string]*record
	cells map[h3.Cell]*cellList
	// levels[r] counts interior entries at resolution r < res; lookups
	// only visit ancestors at resolutions that have some.
	levels [maxRes + 1]int
	// cross holds rectangles covering the boundaries of the fences that
	// detect Cross (record.crossRects); wrapped counts those past
	// longitude 180.
	cross   rtree.RTreeG[*record]
	wrapped int
	ids     []string            // every fence ID, sorted
	sets    map[string][]string // the sorted IDs of each set
	cache   *cellCache          // for Prepare
}

// record is a fence in an index.
type record struct {
	f      *Fence
	detect Detect
	class  string
	// The shape, copied in so that the exact test needs one pointer
	// chase less: a polygon's parts, or a circle (isCircle).
	parts    []part
	circ     Circle
	isCircle bool
	bound    Rect
	cells    []h3.Cell // where the fence has entries
	// crossRects cover the fence's boundary (the mixed micro cells of its
	// boundary cells); the cross R-tree holds them for fences detecting
	// Cross.
	crossRects []Rect
	// Set by Prepare, dropped once in an index.
	boundary []boundaryCell
	interior []h3.Cell
}

// boundaryCell is a cell at the index resolution where the fence's
// boundary may pass, with its micro grid and the fence's masks on it.
type boundaryCell struct {
	cell    h3.Cell
	box     microBox
	in, out uint64
}

// cellList is the entries of one cell. box is the cell's micro grid (not
// ok for cells coarser than the index resolution).
type cellList struct {
	box     microBox
	entries []entry
}

// entry is a fence in a cell's list, with the micro cells wholly inside
// (in) and wholly outside (out) the fence; in == microAllIn for a cell
// wholly inside, which needs no geometry.
type entry struct {
	f       *Fence
	rec     *record
	in, out uint64
	// Copies of the fence's, so that skipping it needs no pointer chase.
	detect   Detect
	hasClass bool
	// boxed: the masks describe the whole micro box (a boundary cell's
	// entry), so they also decide points of the box outside the cell.
	// An interior cell's entry (not boxed) speaks for its cell only.
	boxed bool
}

// sideIn tells whether the entry's fence holds q, whose micro cell in the
// list's box is k, when the masks decide it for a point that may lie
// outside the cell (-1: they do not).
func (e *entry) sideIn(k int) int {
	if !e.boxed || k < 0 {
		return -1
	}
	return e.side(k)
}

// holdsIn tells whether the entry's fence holds q, which may lie outside
// the list's cell, q's micro cell in the list's box being k.
func (e *entry) holdsIn(q *probe, k int) bool {
	switch e.sideIn(k) {
	case 1:
		return true
	case 0:
		return false
	}
	return e.rec.contains(q)
}

// skip reports whether the entry's fence ignores a driver of class for
// the transitions of want.
func (e *entry) skip(want Detect, class string) bool {
	return e.detect&want == 0 || (e.hasClass && e.rec.class != class)
}

// side tells whether the micro cell k (-1: unknown) of a position is
// inside the entry's fence (1), outside (0) or mixed (-1).
func (e *entry) side(k int) int {
	switch {
	case e.in == microAllIn:
		return 1
	case k < 0:
		return -1
	case e.in&(1<<k) != 0:
		return 1
	case e.out&(1<<k) != 0:
		return 0
	}
	return -1
}

// holds tells whether the entry's fence holds q, whose micro cell is k.
func (e *entry) holds(q *probe, k int) bool {
	switch e.side(k) {
	case 1:
		return true
	case 0:
		return false
	}
	return e.rec.contains(q)
}

// contains is the exact test of the record's shape.
func (r *record) contains(q *probe) bool {
	if r.isCircle {
		return r.circ.containsProbe(q)
	}
	for i := range r.parts {
		if r.parts[i].containsWrapped(q.p.Lng, q.p.Lat) {
			return true
		}
	}
	return false
}

// NewIndex returns an empty index whose cell grid is H3 at resolution res
// (0..15). Lookups take the position's cell at that resolution, which
// matchers already hold (their fine cell), so pick the same resolution:
// 9 (cells of about 0.1 km², edges of 174 m) suits city fences.
func NewIndex(res int) (*Index, error) {
	if res < 0 || res > maxRes {
		return nil, fmt.Errorf("resolution %d outside [0, %d]", res, maxRes)
	}
	return &Index{
		res:   res,
		byID:  make(map[string]*record),
		cells: make(map[h3.Cell]*cellList),
		sets:  make(map[string][]string),
		cache: &cellCache{},
	}, nil
}

// Res returns the index's H3 resolution.
func (ix *Index) Res() int { return ix.res }

// Prepared is a fence with its cell cover computed, ready for
// Index.PutPrepared on an index of the same resolution.
type Prepared struct {
	res int
	rec *record
}

// Fence returns the prepared fence.
func (p *Prepared) Fence() *Fence { return p.rec.f }

// Cells returns the number of boundary and interior cells of the cover.
func (p *Prepared) Cells() (boundary, interior int) {
	return len(p.rec.boundary), len(p.rec.interior)
}

// Prepare validates f and computes its cell cover at the index
// resolution. It is the costly half of a put (H3 calls, in proportion to
// the boundary's length over the cell size: a few hundred microseconds
// for a 1 km² fence at resolution 9) and, unlike the writes, safe to call
// concurrently with any method, so callers can run it outside the lock
// that serializes their writes and then call PutPrepared. It refuses
// fences whose cover exceeds MaxCells.
func (ix *Index) Prepare(f *Fence) (*Prepared, error) {
	return prepare(f, ix.res, ix.cache)
}

func prepare(f *Fence, res int, cache *cellCache) (*Prepared, error) {
	if err := f.validate(); err != nil {
		return nil, err
	}
	rec := &record{f: f, detect: f.detect(), class: f.VehicleClass, bound: f.Shape.Bound()}
	switch s := f.Shape.(type) {
	case *Polygon:
		rec.parts = s.parts
	case *Circle:
		rec.circ, rec.isCircle = *s, true
	}
	b, in, near, err := computeCover(f.Shape, res, MaxCells, cache)
	if err != nil {
		return nil, fmt.Errorf("fence %q: %w", f.ID, err)
	}
	rec.interior = in
	bcs := make([]boundaryCell, len(b), len(b)+len(near))
	for i, c := range b {
		bcs[i] = boundaryCell{cell: c, box: cache.box(c)}
	}
	if rec.detect&DetectCross != 0 {
		// A fence detecting Cross has an entry in every cell whose micro
		// box meets its boundary (see Transitions): the near cells that
		// are not interior (those hold no boundary) join the boundary
		// cells; those whose box is wholly outside drop out below.
		covered := make(map[h3.Cell]struct{}, len(in))
		for _, c := range in {
			covered[c] = struct{}{}
		}
	nearCells:
		for _, c := range near {
			for r := res; r >= 0 && r >= res-coverLevels; r-- {
				if _, ok := covered[parent(c, r)]; ok {
					continue nearCells
				}
			}
			bcs = append(bcs, boundaryCell{cell: c, box: cache.box(c)})
		}
	}
	classifyCells(f.Shape, bcs)
	// A cell whose box is wholly outside holds no point of the fence.
	rec.boundary = slices.DeleteFunc(bcs, func(bc boundaryCell) bool { return bc.out == microAllIn })
	if rec.detect&DetectCross != 0 {
		rec.crossRects = boundaryRects(rec.boundary, rec.bound)
	}
	rec.cells = make([]h3.Cell, 0, len(rec.boundary)+len(in))
	for _, bc := range rec.boundary {
		rec.cells = append(rec.cells, bc.cell)
	}
	rec.cells = append(rec.cells, in...)
	return &Prepared{res: res, rec: rec}, nil
}

// Put inserts f, or replaces the fence with the same ID: Prepare then
// PutPrepared. On error the index is unchanged.
func (ix *Index) Put(f *Fence) error {
	p, err := ix.Prepare(f)
	if err != nil {
		return err
	}
	return ix.PutPrepared(p)
}

// PutPrepared inserts the prepared fence, or replaces the fence with the
// same ID. It makes no H3 call.
func (ix *Index) PutPrepared(p *Prepared) error {
	if p == nil || p.rec == nil {
		return fmt.Errorf("nil prepared fence")
	}
	if p.res != ix.res {
		return fmt.Errorf("fence %q prepared at resolution %d, the index is at %d", p.rec.f.ID, p.res, ix.res)
	}
	f := p.rec.f
	if old, ok := ix.byID[f.ID]; ok {
		ix.remove(old)
	}
	// A copy, so that putting the same Prepared twice stays consistent.
	rec := *p.rec
	ix.insert(&rec)
	rec.boundary, rec.interior = nil, nil // only needed to insert
	return nil
}

// Delete removes the fence with the given ID and reports whether there
// was one.
func (ix *Index) Delete(id string) bool {
	rec, ok := ix.byID[id]
	if ok {
		ix.remove(rec)
	}
	return ok
}

// Get returns the fence with the given ID.
func (ix *Index) Get(id string) (*Fence, bool) {
	rec, ok := ix.byID[id]
	if !ok {
		return nil, false
	}
	return rec.f, true
}

// Len returns the number of fences.
func (ix *Index) Len() int { return len(ix.byID) }

// Fences yields the fences of set (of every set when set is empty) in
// increasing ID order, starting after the ID after (from the start when
// empty): a page ends where the caller stops, and the last ID seen starts
// the next. The index must not be written during the iteration.
func (ix *Index) Fences(set, after string) iter.Seq[*Fence] {
	return func(yield func(*Fence) bool) {
		ids := ix.ids
		if set != "" {
			ids = ix.sets[set]
		}
		i := 0
		if after != "" {
			var found bool
			i, found = slices.BinarySearch(ids, after)
			if found {
				i++
			}
		}
		for _, id := range ids[i:] {
			if !yield(ix.byID[id].f) {
				return
			}
		}
	}
}

func (ix *Index) insert(rec *record) {
	id := rec.f.ID
	ix.byID[id] = rec
	ix.ids = insertSorted(ix.ids, id)
	ix.sets[rec.f.Set] = insertSorted(ix.sets[rec.f.Set], id)
	for _, bc := range rec.boundary {
		l := ix.list(bc.cell)
		if !l.box.ok {
			l.box = bc.box
		}
		l.entries = append(l.entries, entry{f: rec.f, rec: rec, in: bc.in, out: bc.out, detect: rec.detect, hasClass: rec.class != "", boxed: bc.box.ok})
	}
	for _, c := range rec.interior {
		l := ix.list(c)
		l.entries = append(l.entries, entry{f: rec.f, rec: rec, in: microAllIn, detect: rec.detect, hasClass: rec.class != ""})
		if r := cellRes(c); r < ix.res {
			ix.levels[r]++
		}
	}
	for _, r := range rec.crossRects {
		ix.cross.Insert(rectMin(r), rectMax(r), rec)
		if r.MaxLng > 180 {
			ix.wrapped++
		}
	}
}

func (ix *Index) remove(rec *record) {
	id := rec.f.ID
	delete(ix.byID, id)
	ix.ids = deleteSorted(ix.ids, id)
	if s := deleteSorted(ix.sets[rec.f.Set], id); len(s) > 0 {
		ix.sets[rec.f.Set] = s
	} else {
		delete(ix.sets, rec.f.Set)
	}
	for _, c := range rec.cells {
		ix.removeEntry(c, rec)
		if r := cellRes(c); r < ix.res {
			ix.levels[r]--
		}
	}
	for _, r := range rec.crossRects {
		ix.cross.Delete(rectMin(r), rectMax(r), rec)
		if r.MaxLng > 180 {
			ix.wrapped--
		}
	}
}

// list returns the list of cell c, creating it.
func (ix *Index) list(c h3.Cell) *cellList {
	l := ix.cells[c]
	if l == nil {
		l = &cellList{}
		ix.cells[c] = l
	}
	return l
}

// removeEntry removes rec from the list of cell c, releasing the list's
// memory when it empties or shrinks well below its capacity.
func (ix *Index) removeEntry(c h3.Cell, rec *record) {
	l := ix.cells[c]
	if l == nil {
		return
	}
	list := l.entries
	i := slices.IndexFunc(list, func(e entry) bool { return e.rec == rec })
	if i < 0 {
		return
	}
	last := len(list) - 1
	list[i] = list[last]
	list[last] = entry{}
	list = list[:last]
	switch {
	case len(list) == 0:
		delete(ix.cells, c)
	case cap(list) > 8 && len(list) < cap(list)/4:
		l.entries = slices.Clip(slices.Clone(list))
	default:
		l.entries = list
	}
}

func insertSorted(s []string, id string) []string {
	i, found := slices.BinarySearch(s, id)
	if found {
		return s
	}
	return slices.Insert(s, i, id)
}

func deleteSorted(s []string, id string) []string {
	i, found := slices.BinarySearch(s, id)
	if !found {
		return s
	}
	return slices.Delete(s, i, i+1)
}

func rectMin(r Rect) [2]float64 { return [2]float64{r.MinLng, r.MinLat} }
func rectMax(r Rect) [2]float64 { return [2]float64{r.MaxLng, r.MaxLat} }

// cellLists are the entry lists that concern one position: its cell's
// (first, with the position's micro cell) and its ancestors' at the
// resolutions holding interior entries.
type cellLists struct {
	n     int
	micro int
	lists [maxRes + 1][]entry
}

// collect fills ls with the lists of p's cell (at the index resolution).
func (ix *Index) collect(p geo.LatLng, cell h3.Cell, ls *cellLists) {
	ls.n = 0
	ls.micro = -1
	if l := ix.cells[cell]; l != nil {
		ls.lists[0] = l.entries
		ls.micro = l.box.cell(p)
		ls.n = 1
	}
	for r := ix.res - 1; r >= 0; r-- {
		if ix.levels[r] == 0 {
			continue
		}
		if l := ix.cells[parent(cell, r)]; l != nil {
			ls.lists[ls.n] = l.entries
			ls.n++
		}
	}
}

// cellOf returns p's cell at the index resolution: cell itself when it is
// at that resolution, its ancestor when finer, else computed (a cgo call).
func (ix *Index) cellOf(p geo.LatLng, cell h3.Cell) h3.Cell {
	if cell != 0 {
		switch r := cellRes(cell); {
		case r == ix.res:
			return cell
		case r > ix.res:
			return parent(cell, ix.res)
		}
	}
	return h3.LatLngToCell(h3.LatLng{Lat: p.Lat, Lng: p.Lng}, ix.res)
}

// Containing calls fn with every fence containing p (vehicle classes are
// not considered), in no particular order. cell is p's H3 cell at the
// index resolution (or finer), or 0 to have it computed; a wrong cell
// gives wrong answers. An invalid p is in no fence. It does not allocate.
func (ix *Index) Containing(p geo.LatLng, cell h3.Cell, fn func(*Fence)) {
	if p.Validate() != nil {
		return
	}
	cell = ix.cellOf(p, cell)
	q := probe{p: p}
	var ls cellLists
	ix.collect(p, cell, &ls)
	for _, list := range ls.lists[:ls.n] {
		for i := range list {
			if e := &list[i]; e.holds(&q, ls.micro) {
				fn(e.f)
			}
		}
		ls.micro = -1 // coarser lists hold interior entries only
	}
}

// Transitions calls fn with every transition a driver of vehicleClass
// makes relative to the index's fences when it moves from prev (nil for a
// driver seen for the first time) to cur, exactly the fences f and
// transitions t for which f.Eval(prev, cur, vehicleClass) reports t, in
// no particular order. prevCell and curCell are the positions' H3 cells
// at the index resolution (or finer), or 0 to have them computed (a cgo
// call each). An invalid cur gives nothing and an invalid prev counts as
// none, as for Eval.
//
// Cost: one map lookup per cell and per coarser resolution holding
// interior cells, then per fence listed in the cells a look at its micro
// masks, and the exact test only for fences whose boundary passes through
// the position's micro cell. Cross: when both positions lie in the micro
// box of cur's cell (most moves), the cell's entries whose boundary lies
// under the segment; otherwise an R-tree search. No allocation (but for
// a segment across more than 64 fences detecting Cross).
func (ix *Index) Transitions(prev *geo.LatLng, prevCell h3.Cell, cur geo.LatLng, curCell h3.Cell, vehicleClass string, fn func(f *Fence, t Transition)) {
	ix.Moves(prev, prevCell, cur, curCell, vehicleClass, func(f *Fence, was, is bool) {
		t := Cross // neither position holds it: Moves reports it crossed
		switch {
		case was && is:
			t = Inside
		case was:
			t = Exit
		case is:
			t = Enter
		}
		if f.detect().Has(t) {
			fn(f, t)
		}
	})
}

// crossingsInCell reports the Cross transitions of a move whose two
// positions lie in the micro box of cur's cell, the usual short move, and
// returns false for other moves. The segment then stays in the box, and a
// fence detecting Cross whose boundary meets the box has an entry in the
// cell (Prepare adds the near cells for them) whose mixed micro cells
// cover that boundary: only entries with a mixed micro cell under the
// segment's micro rectangle need the exact test.
func (ix *Index) crossingsInCell(pq, cq *probe, cell h3.Cell, vehicleClass string, fn func(*Fence, Transition)) bool {
	l := ix.cells[cell]
	if l == nil || !l.box.ok {
		return false
	}
	pm, cm := l.box.cell(pq.p), l.box.cell(cq.p)
	if pm < 0 || cm < 0 {
		return false
	}
	var seg uint64
	for i := min(pm, cm) / microN; i <= max(pm, cm)/microN; i++ {
		for j := min(pm%microN, cm%microN); j <= max(pm%microN, cm%microN); j++ {
			seg |= 1 << (i*microN + j)
		}
	}
	for i := range l.entries {
		e := &l.entries[i]
		if e.in == microAllIn || ^(e.in|e.out)&seg == 0 || e.skip(DetectCross, vehicleClass) {
			continue // cur inside, or no boundary under the segment
		}
		if e.rec.contains(pq) || e.rec.contains(cq) {
			continue
		}
		if e.f.Shape.Crosses(pq.p, cq.p) {
			fn(e.f, Cross)
		}
	}
	return true
}

// crossings reports Cross for the fences detecting it whose boundary the
// segment may meet (the R-tree holds rectangles covering each such
// fence's boundary) and which the segment crosses with both ends outside.
// The segment's box is searched as is and, when it may meet rectangles on
// the other side of the antimeridian, shifted by ±360. A fence met through
// several rectangles is tested once: distinct candidates are kept in an
// array on the stack (a map past 64 of them, the one allocation, for
// segments across huge numbers of fences).
func (ix *Index) crossings(pq, cq *probe, vehicleClass string, fn func(*Fence, Transition)) {
	sr, _ := segmentRect(pq.p, cq.p)
	var shifts [3]float64
	n := 1
	if sr.MaxLng > 180 {
		shifts[n] = -360
		n++
	}
	if sr.MinLng < -180 || (ix.wrapped > 0 && sr.MinLng < 0) {
		shifts[n] = 360
		n++
	}
	var seen [64]*record
	var more map[*record]struct{}
	nseen := 0
	for k := range n {
		q := shiftRect(sr, shifts[k])
		ix.cross.Search(rectMin(q), rectMax(q), func(_, _ [2]float64, rec *record) bool {
			for _, s := range seen[:nseen] {
				if s == rec {
					return true
				}
			}
			if nseen < len(seen) {
				seen[nseen] = rec
				nseen++
			} else {
				if _, ok := more[rec]; ok {
					return true
				}
				if more == nil {
					more = make(map[*record]struct{})
				}
				more[rec] = struct{}{}
			}
			if (rec.class != "" && rec.class != vehicleClass) || rec.contains(pq) || rec.contains(cq) {
				return true
			}
			if rec.f.Shape.Crosses(pq.p, cq.p) {
				fn(rec.f, Cross)
			}
			return true
		})
	}
}

// boundaryRects returns rectangles covering a fence's boundary: for each
// boundary cell, the box of its mixed micro cells (every boundary point
// lies in one, see microBox), or the fence's bound when some boundary cell
// has no micro grid.
func boundaryRects(bcs []boundaryCell, bound Rect) []Rect {
	var out []Rect
	for i := range bcs {
		bc := &bcs[i]
		if !bc.box.ok {
			return []Rect{bound}
		}
		mixed := ^(bc.in | bc.out)
		if mixed == 0 {
			continue
		}
		r := Rect{MinLat: math.Inf(1), MinLng: math.Inf(1), MaxLat: math.Inf(-1), MaxLng: math.Inf(-1)}
		for k := range microN * microN {
			if mixed&(1<<k) == 0 {
				continue
			}
			i, j := k/microN, k%microN
			r.MinLat, r.MaxLat = min(r.MinLat, bc.box.lat(i)), max(r.MaxLat, bc.box.lat(i+1))
			r.MinLng, r.MaxLng = min(r.MinLng, bc.box.lng(j)), max(r.MaxLng, bc.box.lng(j+1))
		}
		// Grow by the micro grid's rounding margin.
		gLat, gLng := 2*microEps/bc.box.invLat, 2*microEps/bc.box.invLng
		out = append(out, Rect{MinLat: r.MinLat - gLat, MaxLat: r.MaxLat + gLat, MinLng: r.MinLng - gLng, MaxLng: r.MaxLng + gLng})
	}
	return out
}

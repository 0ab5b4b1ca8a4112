package index

import (
	"math"
	"sync"

	"github.com/uber/h3-go/v4"
)

// point is a live driver as its shard stores it: 24 bytes, no pointers.
// The position is the driver's own (float64, so answers are exact), the
// status and class are what filters test, so a search rejects drivers
// without touching any other memory.
type point struct {
	lat, lng float64
	slot     int32
	status   Status
	flags    uint8 // flagHandedOver, flagOnStream
	class    uint16
}

// Point flags.
const (
	// flagHandedOver: the position was handed over (Update.HandedOver).
	flagHandedOver uint8 = 1 << iota
	// flagOnStream: the last update came on the driver's Connect stream
	// (Update.OnStream).
	flagOnStream
)

// pointFlags returns the flags of an update.
func pointFlags(handedOver, onStream bool) uint8 {
	var f uint8
	if handedOver {
		f |= flagHandedOver
	}
	if onStream {
		f |= flagOnStream
	}
	return f
}

// handedOver reports whether the point's position was handed over.
func (p *point) handedOver() bool { return p.flags&flagHandedOver != 0 }

// onStream reports whether the point's last update came on a stream.
func (p *point) onStream() bool { return p.flags&flagOnStream != 0 }

// shard holds the live drivers of one shard: their points in one array and
// a uniform grid over the shard's bounding box whose cells chain the points
// they hold (heads, then link). Everything is indexed by int32, nothing
// holds a pointer.
//
// A rebuild lays a new grid, with about pointsPerCell points a cell, and
// sorts the points by cell, so a cell's chain is a run of consecutive
// points and a search reads a few contiguous runs instead of chasing a
// cache miss per point. It happens when the number of points has doubled or
// fallen to a quarter since the last one, and when an eighth of the points
// have been added or have changed cells since (they are chained out of
// order): every rebuild is paid for by the updates before it.
//
// Points outside the grid's box (a driver outside its shard's box at the
// last rebuild) go to the nearest edge cell: a box search clamps the same
// way, so it still finds them.
type shard struct {
	cell h3.Cell
	num  int32          // the shard's number, as slots record it
	pos  *column[int32] // the index's pos column, kept up to date for the shard's points
	// scratch is the index's buffer for sorting points, shared by its
	// shards: only the writer rebuilds, one shard at a time.
	scratch *[]point
	mu      sync.RWMutex // guards everything below and the query-visible fields of its drivers' slots

	pts   []point
	link  []int32 // next point of the same grid cell; -1 at the end
	heads []int32 // first point of each grid cell; -1 when empty

	cols, rows     int32   // grid size
	gLat, gLng     float64 // grid origin (its box's south-west corner)
	perLat, perLng float64 // grid cells per degree
	minLat, minLng float64 // a box holding every point: grown by inserts and
	maxLat, maxLng float64 // moves, made tight again by a rebuild
	built          int32   // points at the last rebuild
	unsorted       int32   // points added or moved to another cell since
}

const (
	// pointsPerCell is the average number of points a grid cell holds
	// right after a rebuild: a search visits a few cells around the
	// query, and each costs a head plus its run.
	pointsPerCell = 8
	// minGridPoints is the number of points up to which a shard keeps a
	// single cell.
	minGridPoints = 16
	// maxGridSide bounds the cells of a side, so a shard spanning the whole
	// longitude circle (across the antimeridian) does not get a huge grid.
	maxGridSide = 1 << 12
)

func newShard(cell h3.Cell, num int32, pos *column[int32], scratch *[]point) *shard {
	sh := &shard{cell: cell, num: num, pos: pos, scratch: scratch}
	sh.rebuild()
	return sh
}

// len returns the number of points.
func (sh *shard) len() int { return len(sh.pts) }

// cellOf returns the grid cell of a position: clamped to the grid, so the
// cells of a box are the range of its corners' cells.
func (sh *shard) cellOf(lat, lng float64) int32 {
	return sh.row(lat)*sh.cols + sh.col(lng)
}

func (sh *shard) col(lng float64) int32 {
	f := (lng - sh.gLng) * sh.perLng
	if !(f > 0) {
		return 0
	}
	if f >= float64(sh.cols) {
		return sh.cols - 1
	}
	return int32(f)
}

func (sh *shard) row(lat float64) int32 {
	f := (lat - sh.gLat) * sh.perLat
	if !(f > 0) {
		return 0
	}
	if f >= float64(sh.rows) {
		return sh.rows - 1
	}
	return int32(f)
}

// cells returns the ranges of grid columns and rows that hold every point
// of the box [minLat, maxLat] × [minLng, maxLng] (and possibly more).
func (sh *shard) cells(minLat, minLng, maxLat, maxLng float64) (c0, c1, r0, r1 int32) {
	return sh.col(minLng), sh.col(maxLng), sh.row(minLat), sh.row(maxLat)
}

func (sh *shard) grow(lat, lng float64) {
	sh.minLat, sh.maxLat = math.Min(sh.minLat, lat), math.Max(sh.maxLat, lat)
	sh.minLng, sh.maxLng = math.Min(sh.minLng, lng), math.Max(sh.maxLng, lng)
}

// add appends p and records its index in the pos column. Writer only,
// under sh.mu.
func (sh *shard) add(p point) {
	i := int32(len(sh.pts))
	if len(sh.pts) == cap(sh.pts) {
		// Grow by an eighth, not append's quarter to double: the arrays
		// are most of a shard's memory, and the copy is amortized either
		// way.
		n := len(sh.pts) + len(sh.pts)/8 + 8
		sh.pts = append(make([]point, 0, n), sh.pts...)
		sh.link = append(make([]int32, 0, n), sh.link...)
	}
	sh.pts = append(sh.pts, p)
	sh.link = append(sh.link, -1)
	*sh.pos.at(p.slot) = i
	sh.grow(p.lat, p.lng)
	sh.push(i)
	sh.unsorted++
	sh.maybeRebuild()
}

// push chains point i into its cell.
func (sh *shard) push(i int32) {
	c := sh.cellOf(sh.pts[i].lat, sh.pts[i].lng)
	sh.link[i] = sh.heads[c]
	sh.heads[c] = i
}

// unchain takes point i out of its cell's chain.
func (sh *shard) unchain(i int32) {
	c := sh.cellOf(sh.pts[i].lat, sh.pts[i].lng)
	at := &sh.heads[c]
	for *at != i {
		at = &sh.link[*at]
	}
	*at = sh.link[i]
}

// move sets point i's position. Writer only, under sh.mu.
func (sh *shard) move(i int32, lat, lng float64) {
	p := &sh.pts[i]
	if sh.cellOf(p.lat, p.lng) == sh.cellOf(lat, lng) {
		p.lat, p.lng = lat, lng
		sh.grow(lat, lng)
		return
	}
	sh.unchain(i)
	p.lat, p.lng = lat, lng
	sh.push(i)
	sh.grow(lat, lng)
	sh.unsorted++
	sh.maybeRebuild()
}

// remove deletes point i; the last point takes its index. Writer only,
// under sh.mu.
func (sh *shard) remove(i int32) {
	sh.unchain(i)
	last := int32(len(sh.pts) - 1)
	if i != last {
		sh.unchain(last)
		sh.pts[i] = sh.pts[last]
		sh.push(i)
		*sh.pos.at(sh.pts[i].slot) = i
		sh.unsorted++
	}
	sh.pts[last] = point{}
	sh.pts, sh.link = sh.pts[:last], sh.link[:last]
	if last*4 < sh.built && sh.built > minGridPoints {
		sh.pts = shrink(sh.pts)
		sh.link = shrink(sh.link)
		sh.rebuild()
	} else {
		sh.maybeRebuild()
	}
}

// maybeRebuild rebuilds when the shard has doubled or when an eighth of its
// points are out of cell order.
func (sh *shard) maybeRebuild() {
	n := int32(len(sh.pts))
	if n > minGridPoints && (n > 2*sh.built || sh.unsorted > n/8) {
		sh.rebuild()
	}
}

// shrink reallocates s at twice its length when its capacity is more than
// four times that.
func shrink[T any](s []T) []T {
	if cap(s) <= 4*len(s) {
		return s
	}
	return append(make([]T, 0, 2*len(s)), s...)
}

// clear forgets every point.
func (sh *shard) clear() {
	sh.pts, sh.link = nil, nil
	sh.rebuild()
}

// rebuild makes the box tight, lays a new grid over it and sorts the points
// by cell.
func (sh *shard) rebuild() {
	sh.minLat, sh.minLng = math.Inf(1), math.Inf(1)
	sh.maxLat, sh.maxLng = math.Inf(-1), math.Inf(-1)
	for i := range sh.pts {
		sh.grow(sh.pts[i].lat, sh.pts[i].lng)
	}
	n := int32(len(sh.pts))
	sh.built, sh.unsorted = n, 0
	sh.cols, sh.rows = 1, 1
	sh.gLat, sh.gLng, sh.perLat, sh.perLng = 0, 0, 0, 0
	if n > minGridPoints {
		h := sh.maxLat - sh.minLat
		w := (sh.maxLng - sh.minLng) * math.Cos((sh.minLat+sh.maxLat)/2*degToRad)
		cells := float64(n) / pointsPerCell
		switch {
		case h > 0 && w > 0:
			sh.cols = gridSide(math.Sqrt(cells * w / h))
			sh.rows = gridSide(cells / float64(sh.cols))
		case h > 0:
			sh.rows = gridSide(cells)
		case w > 0:
			sh.cols = gridSide(cells)
		}
		sh.gLat, sh.gLng = sh.minLat, sh.minLng
		if h > 0 {
			sh.perLat = float64(sh.rows) / h
		}
		if sh.maxLng > sh.minLng {
			sh.perLng = float64(sh.cols) / (sh.maxLng - sh.minLng)
		}
	}
	cells := int(sh.cols * sh.rows)
	if cap(sh.heads) >= cells+1 && cap(sh.heads) <= 4*(cells+1) {
		sh.heads = sh.heads[:cells+1]
	} else {
		sh.heads = make([]int32, cells+1)
	}
	if n == 0 {
		sh.heads = sh.heads[:cells]
		sh.heads[0] = -1
		return
	}
	// Counting sort by cell: heads first counts, then holds each cell's
	// start, then its end.
	clear(sh.heads)
	for i := range sh.pts {
		sh.heads[sh.cellOf(sh.pts[i].lat, sh.pts[i].lng)+1]++
	}
	for c := 1; c <= cells; c++ {
		sh.heads[c] += sh.heads[c-1]
	}
	if cap(*sh.scratch) < int(n) {
		*sh.scratch = make([]point, n+n/8)
	}
	sorted := (*sh.scratch)[:n]
	for i := range sh.pts {
		p := &sh.pts[i]
		c := sh.cellOf(p.lat, p.lng)
		at := sh.heads[c]
		sh.heads[c]++
		sorted[at] = *p
		*sh.pos.at(p.slot) = at
	}
	copy(sh.pts, sorted)
	// heads[c] is now the end of cell c, which is the start of cell c+1.
	for c := cells; c > 0; c-- {
		sh.heads[c] = sh.heads[c-1]
	}
	sh.heads[0] = 0
	for c := range cells {
		start, end := sh.heads[c], sh.heads[c+1]
		if start == end {
			sh.heads[c] = -1
			continue
		}
		for i := start; i < end-1; i++ {
			sh.link[i] = i + 1
		}
		sh.link[end-1] = -1
	}
	sh.heads = sh.heads[:cells]
}

// gridSide rounds a number of cells to a grid side in [1, maxGridSide].
func gridSide(f float64) int32 {
	return int32(math.Max(1, math.Min(maxGridSide, math.Ceil(f))))
}

package fence

import (
	"errors"
	"fmt"
	"slices"

	"github.com/uber/h3-go/v4"

	"github.com/geomatch/geomatch/internal/geo"
)

// MaxCells bounds the cells of one fence's cover (boundary cells plus
// compacted interior cells); a fence needing more is refused by Prepare.
// At resolution 9 that allows a boundary of a few thousand kilometers.
const MaxCells = 200_000

// traceSpacing is the spacing of boundary samples as a fraction of the
// resolution's average hexagon edge. A point's cell is the cell of any
// point within 0.4 edges or a neighbor of it (the nearest point of a
// non-neighboring cell is about 0.84 edges away at the least, measured at
// every resolution near pentagons, poles and the antimeridian;
// TestNearbyPointsAreInNeighboringCells checks 0.4): so the cells of
// samples this dense plus their neighbors hold every boundary point.
const traceSpacing = 0.8

// coverLevels bounds how many resolutions above the index resolution the
// cover starts from: interior cells are stored as coarse as that.
const coverLevels = 8

// errTooManyCells is returned for fences whose cover exceeds MaxCells.
var errTooManyCells = fmt.Errorf("covers more than %d index cells: too large or too detailed for the index resolution", MaxCells)

// cellCenter returns c's center (one cgo call).
func cellCenter(c h3.Cell) geo.LatLng {
	ll := h3.CellToLatLng(c)
	return geo.LatLng{Lat: ll.Lat, Lng: ll.Lng}
}

// computeCover returns the cells of s at resolution res: boundary cells,
// where the shape's boundary may pass and a point needs the exact test,
// and interior cells, at res or coarser, every point of whose region (the
// points whose res cell descends from it) is inside s. Every point inside
// s has its res cell in boundary or descending from an interior cell.
//
// How:
//
//  1. Boundary. The boundary is sampled every traceSpacing edges; the
//     cells of the samples and their neighbors (GridDisk 1) are the
//     boundary cells B. A boundary point is within 0.4 edges of a
//     sample, so its cell is the sample's or a neighbor: B holds the cell
//     of every boundary point.
//  2. Every other cell at res holds no boundary point, so its hexagon is
//     wholly inside or wholly outside, as its center is. The same goes for
//     a coarser cell none of whose res descendants is in B (a "clean"
//     cell): its region is connected and free of boundary, and its center
//     child's center tells the side. Coarse cells with a descendant in B
//     are "mixed".
//  3. From a coarse resolution r0 (at most coverLevels above res), a
//     breadth-first walk starts at the mixed cells and crosses to
//     neighbors: a mixed cell is split into its children recursively
//     (down to res, where mixed means in B), a clean inside cell is an
//     interior cell and the walk continues past it, a clean outside cell
//     stops it. A clean inside cell can only neighbor mixed or inside
//     cells (a boundary would separate it from an outside one), so each
//     connected stretch of interior is reached from the boundary.
//
// near is the cells at distance 2 of the traced cells that are not in B:
// with B they hold every cell whose micro box (see microBox) holds a
// boundary point (TestMicroBoxesNearTheirCell), which fences detecting
// Cross need.
//
// The property tests check the result against brute force, near poles,
// pentagons and the antimeridian included.
func computeCover(s Shape, res, maxCells int, cache *cellCache) (boundary, interior, near []h3.Cell, err error) {
	if res < 0 || res > maxRes {
		return nil, nil, nil, fmt.Errorf("resolution %d outside [0, %d]", res, maxRes)
	}
	spacing := traceSpacing * h3.HexagonEdgeLengthAvgM(res)
	traced := make(map[h3.Cell]struct{})
	var last h3.Cell
	if !s.trace(spacing, func(p geo.LatLng) bool {
		c := h3.LatLngToCell(h3.LatLng{Lat: p.Lat, Lng: p.Lng}, res)
		if c == last {
			return true
		}
		last = c
		traced[c] = struct{}{}
		return len(traced) <= maxCells
	}) {
		return nil, nil, nil, errTooManyCells
	}
	// B is the traced cells and their neighbors; the cells at distance 2
	// of traced cells hold every neighbor of B, where an interior walk at
	// the index resolution starts.
	inB := make(map[h3.Cell]struct{}, 3*len(traced))
	var ring2 []h3.Cell
	for c := range traced {
		for d, ring := range c.GridDiskDistances(2) {
			for _, n := range ring {
				switch {
				case n == 0:
				case d < 2:
					inB[n] = struct{}{}
				default:
					ring2 = append(ring2, n)
				}
			}
		}
	}
	if len(inB) > maxCells {
		return nil, nil, nil, errTooManyCells
	}
	if len(inB) == 0 {
		return nil, nil, nil, errors.New("shape has no boundary")
	}
	// near: the cells at distance 2 of traced cells, outside B.
	{
		seen := make(map[h3.Cell]struct{}, len(ring2))
		for _, c := range ring2 {
			if _, ok := inB[c]; ok {
				continue
			}
			if _, ok := seen[c]; !ok {
				seen[c] = struct{}{}
				near = append(near, c)
			}
		}
		slices.Sort(near)
	}
	insideClean := func(c h3.Cell) bool {
		return s.Contains(cache.center(centerChild(c, res)))
	}
	// Small shapes (few interior cells) are walked at the index
	// resolution; larger ones from coarser cells, so that their interior
	// is stored and found compacted.
	if levels := coarseLevels(s, res); levels == 0 {
		boundary = make([]h3.Cell, 0, len(inB))
		for c := range inB {
			boundary = append(boundary, c)
		}
		seen := make(map[h3.Cell]struct{}, len(near))
		queue := slices.Clone(near)
		for _, c := range queue {
			seen[c] = struct{}{}
		}
		for i := 0; i < len(queue); i++ {
			c := queue[i]
			if !insideClean(c) {
				continue
			}
			interior = append(interior, c)
			if len(boundary)+len(interior) > maxCells {
				return nil, nil, nil, errTooManyCells
			}
			for _, n := range c.GridDisk(1) {
				if _, ok := inB[n]; ok || n == 0 {
					continue
				}
				if _, ok := seen[n]; !ok {
					seen[n] = struct{}{}
					queue = append(queue, n)
				}
			}
		}
		slices.Sort(boundary)
		slices.Sort(interior)
		return boundary, interior, near, nil
	}

	// mixed[r-r0] holds the ancestors at r of the cells of B, r0 <= r < res.
	r0 := res
	var mixedUp []map[h3.Cell]struct{} // mixedUp[i]: ancestors at res-1-i
	prev := inB
	for r := res - 1; r >= 0 && r >= res-coverLevels; r-- {
		m := make(map[h3.Cell]struct{}, len(prev)/2+1)
		for c := range prev {
			m[parent(c, r)] = struct{}{}
		}
		mixedUp = append(mixedUp, m)
		r0 = r
		prev = m
		if len(m) <= 2 {
			break
		}
	}
	isMixed := func(c h3.Cell, r int) bool {
		var ok bool
		if r == res {
			_, ok = inB[c]
		} else {
			_, ok = mixedUp[res-1-r][c]
		}
		return ok
	}
	over := func() bool { return len(boundary)+len(interior) > maxCells }

	var descend func(c h3.Cell, r int) bool
	descend = func(c h3.Cell, r int) bool {
		if r == res {
			boundary = append(boundary, c)
			return !over()
		}
		for _, ch := range c.Children(r + 1) {
			switch {
			case isMixed(ch, r+1):
				if !descend(ch, r+1) {
					return false
				}
			case insideClean(ch):
				interior = append(interior, ch)
				if over() {
					return false
				}
			}
		}
		return true
	}

	seeds := inB
	if r0 < res {
		seeds = mixedUp[res-1-r0]
	}
	queue := make([]h3.Cell, 0, len(seeds))
	for c := range seeds {
		queue = append(queue, c)
	}
	slices.Sort(queue)
	seen := make(map[h3.Cell]struct{}, 2*len(queue))
	for _, c := range queue {
		seen[c] = struct{}{}
	}
	for i := 0; i < len(queue); i++ {
		c := queue[i]
		switch {
		case isMixed(c, r0):
			if !descend(c, r0) {
				return nil, nil, nil, errTooManyCells
			}
		case insideClean(c):
			interior = append(interior, c)
			if over() {
				return nil, nil, nil, errTooManyCells
			}
		default:
			continue // outside: the walk stops here
		}
		for _, n := range c.GridDisk(1) {
			if _, ok := seen[n]; !ok && n != 0 {
				seen[n] = struct{}{}
				queue = append(queue, n)
			}
		}
		if len(seen) > 8*maxCells {
			return nil, nil, nil, errTooManyCells
		}
	}
	slices.Sort(boundary)
	slices.Sort(interior)
	return boundary, interior, near, nil
}

// coarseLevels returns 0 for a shape with at most a few dozen interior
// cells at res (walked cell by cell), else how many resolutions above res
// the cover starts (at most coverLevels).
func coarseLevels(s Shape, res int) int {
	cells := s.areaM2() / h3.HexagonAreaAvgM2(res)
	k := 0
	for k < coverLevels && k < res && cells > 50 {
		cells /= 7
		k++
	}
	return k
}

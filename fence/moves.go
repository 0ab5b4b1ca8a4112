package fence

import (
	"github.com/uber/h3-go/v4"

	"github.com/geomatch/geomatch/internal/geo"
)

// Moves calls fn with every fence of vehicleClass that holds prev or cur,
// with whether each holds prev (was) and cur (is), whatever the fence
// detects: what a caller needs to keep a driver's set of fences and to
// derive its transitions in one pass. Fences detecting Cross that neither
// position holds and that the segment prev→cur crosses are reported with
// was and is both false. prev nil (a driver seen first) reports the fences
// holding cur. Cells are as for Transitions (0: computed, a cgo call). It
// does not allocate (but for a segment across more than 64 cross fences).
func (ix *Index) Moves(prev *geo.LatLng, prevCell h3.Cell, cur geo.LatLng, curCell h3.Cell, vehicleClass string, fn func(f *Fence, was, is bool)) {
	if cur.Validate() != nil {
		return
	}
	if prev != nil && prev.Validate() != nil {
		prev = nil
	}
	curCell = ix.cellOf(cur, curCell)
	cq := probe{p: cur}
	var ls cellLists
	ix.collect(cur, curCell, &ls)
	if prev == nil {
		for _, list := range ls.lists[:ls.n] {
			for i := range list {
				if e := &list[i]; !e.skip(detectAll, vehicleClass) && e.holds(&cq, ls.micro) {
					fn(e.f, false, true)
				}
			}
			ls.micro = -1
		}
		return
	}
	prevCell = ix.cellOf(*prev, prevCell)
	pq := probe{p: *prev}
	if prevCell == curCell {
		pm, cm := -1, ls.micro
		if l := ix.cells[curCell]; l != nil {
			pm = l.box.cell(*prev)
		}
		for _, list := range ls.lists[:ls.n] {
			for i := range list {
				e := &list[i]
				if e.skip(detectAll, vehicleClass) {
					continue
				}
				if e.in == microAllIn {
					fn(e.f, true, true)
					continue
				}
				if was, is := e.holds(&pq, pm), e.holds(&cq, cm); was || is {
					fn(e.f, was, is)
				}
			}
			pm, cm = -1, -1
		}
	} else {
		// The other position's micro cell in this cell's box often
		// decides it too (see Transitions).
		other := -1
		if l := ix.cells[curCell]; l != nil {
			other = l.box.cell(*prev)
		}
		for _, list := range ls.lists[:ls.n] {
			for i := range list {
				if e := &list[i]; !e.skip(detectAll, vehicleClass) && e.holds(&cq, ls.micro) {
					fn(e.f, e.holdsIn(&pq, other), true)
				}
			}
			ls.micro, other = -1, -1
		}
		ix.collect(*prev, prevCell, &ls)
		other = -1
		if l := ix.cells[prevCell]; l != nil {
			other = l.box.cell(cur)
		}
		for _, list := range ls.lists[:ls.n] {
			for i := range list {
				if e := &list[i]; !e.skip(detectAll, vehicleClass) && e.holds(&pq, ls.micro) && !e.holdsIn(&cq, other) {
					fn(e.f, true, false)
				}
			}
			ls.micro, other = -1, -1
		}
	}
	if ix.cross.Len() > 0 {
		crossed := func(f *Fence, _ Transition) { fn(f, false, false) }
		if !ix.crossingsInCell(&pq, &cq, curCell, vehicleClass, crossed) {
			ix.crossings(&pq, &cq, vehicleClass, crossed)
		}
	}
}

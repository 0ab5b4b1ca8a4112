package fence

import (
	"cmp"
	"fmt"
	"math"
	"slices"
)

// sweepEdge is one edge of a part during the simplicity check.
type sweepEdge struct {
	lo, hi     float64 // range along the sweep axis
	olo, ohi   float64 // range along the other axis
	e          int     // first vertex
	ring       int
	first, end int // the ring's first vertex and its closing vertex
}

// sweepKey is an edge's place in the sweep order.
type sweepKey struct {
	lo float64
	i  int32
}

// checkSimple reports an error when two edges of the part share a point,
// other than consecutive edges of a ring at their common vertex (and those
// must not fold back over each other). That covers a ring crossing or
// touching itself and rings crossing or touching each other.
//
// It sorts the edges along the axis where they overlap least and compares
// each with the following ones while their ranges overlap (sweep and
// prune): close to linear for the shapes people draw, quadratic only when
// most edges overlap along both axes (TestCheckSimpleSpeed measures 10k
// vertices).
func (pt *part) checkSimple(where func(int) string) error {
	var edges []sweepEdge
	var sumX, sumY float64
	for k := 0; k+1 < len(pt.ringStart); k++ {
		first, end := int(pt.ringStart[k]), int(pt.ringStart[k+1])-1
		for e := first; e < end; e++ {
			x0, x1 := pt.xs[e], pt.xs[e+1]
			y0, y1 := pt.ys[e], pt.ys[e+1]
			sumX += math.Abs(x1 - x0)
			sumY += math.Abs(y1 - y0)
			edges = append(edges, sweepEdge{
				lo: math.Min(x0, x1), hi: math.Max(x0, x1), olo: math.Min(y0, y1), ohi: math.Max(y0, y1),
				e: e, ring: k, first: first, end: end,
			})
		}
	}
	width, height := pt.maxX-pt.minX, pt.maxY-pt.minY
	if sumY*width < sumX*height { // sweep along y: relative overlap is smaller there
		for i := range edges {
			s := &edges[i]
			s.lo, s.hi, s.olo, s.ohi = s.olo, s.ohi, s.lo, s.hi
		}
	}
	// Sorting small keys, then visiting the edges in their order, is
	// about twice as fast as sorting the edges themselves.
	order := make([]sweepKey, len(edges))
	for i := range edges {
		order[i] = sweepKey{lo: edges[i].lo, i: int32(i)}
	}
	slices.SortFunc(order, func(a, b sweepKey) int { return cmp.Compare(a.lo, b.lo) })
	for oi := range order {
		a := &edges[order[oi].i]
		for oj := oi + 1; oj < len(order) && order[oj].lo <= a.hi; oj++ {
			b := &edges[order[oj].i]
			if b.ohi < a.olo || b.olo > a.ohi {
				continue
			}
			if err := pt.checkPair(a, b, where); err != nil {
				return err
			}
		}
	}
	return nil
}

// checkPair checks two edges whose boxes overlap.
func (pt *part) checkPair(a, b *sweepEdge, where func(int) string) error {
	if a.e > b.e {
		a, b = b, a
	}
	if a.ring == b.ring {
		// Consecutive edges share a vertex: they may only meet there.
		if b.e == a.e+1 {
			return pt.checkFold(a.e, b.e, a.ring, where)
		}
		if a.e == a.first && b.e == a.end-1 {
			return pt.checkFold(b.e, a.e, a.ring, where)
		}
	}
	xs, ys := pt.xs, pt.ys
	if !segmentsMeet(xs[a.e], ys[a.e], xs[a.e+1], ys[a.e+1], xs[b.e], ys[b.e], xs[b.e+1], ys[b.e+1]) {
		return nil
	}
	if a.ring == b.ring {
		return fmt.Errorf("%s: crosses or touches itself: the edge from position %d meets the edge from position %d (near [%v, %v])",
			where(a.ring), a.e-a.first, b.e-b.first, xs[b.e], ys[b.e])
	}
	return fmt.Errorf("%s: crosses or touches ring %d (near [%v, %v])", where(b.ring), a.ring, xs[b.e], ys[b.e])
}

// checkFold checks consecutive edges e1 (ending at v) and e2 (starting at
// v): they must not run back over each other.
func (pt *part) checkFold(e1, e2, ring int, where func(int) string) error {
	xs, ys := pt.xs, pt.ys
	ax, ay := xs[e1], ys[e1]
	vx, vy := xs[e1+1], ys[e1+1]
	cx, cy := xs[e2+1], ys[e2+1]
	if orient(ax, ay, vx, vy, cx, cy) == 0 && (vx-ax)*(cx-vx)+(vy-ay)*(cy-vy) < 0 {
		return fmt.Errorf("%s: folds back on itself at [%v, %v] (consecutive edges overlap, enclosing zero area)", where(ring), vx, vy)
	}
	return nil
}

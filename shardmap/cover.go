package shardmap

import (
	"math"
	"slices"

	"github.com/uber/h3-go/v4"

	"github.com/geomatch/geomatch/internal/geo"
)

// The exact cover rests on two bounds per resolution, both multiples of the
// resolution's average hexagon edge length. H3 is self-similar below
// resolution 3, so the worst ratios are the same at every resolution;
// geometry_test.go checks them on every cell of resolutions 0..3 and on
// samples (pentagons included) of 4..15, and logs the measured worst.
const (
	// circFactor bounds the circumradius of any cell (center to farthest
	// boundary vertex), measured at most 1.2683 edges: the pentagon-
	// distorted hexagons near the icosahedron vertices.
	circFactor = 1.5
	// childFactor bounds the distance between a cell's center and any of
	// its children's centers, measured at most 0.8303 parent edges (a
	// regular grid gives sqrt(3/7) = 0.65).
	childFactor = 1.0
)

// circMaxM returns an upper bound, in meters of geo.DistanceM, of the
// circumradius of any cell at resolution r. It bounds the distance from a
// cell's center to any point whose h3 cell it is: a cell is convex in the
// gnomonic projection of its icosahedron face, which maps great circles to
// lines, so it lies in the spherical cap around its center that holds its
// vertices.
func circMaxM(r int) float64 {
	return circFactor * h3.HexagonEdgeLengthAvgM(r)
}

// childMaxM returns an upper bound, in meters, of the distance from the
// center of a cell at resolution r to the centers of its children.
func childMaxM(r int) float64 {
	return childFactor * h3.HexagonEdgeLengthAvgM(r)
}

// Cover returns the shards a search of radius radiusM meters around p must
// look at: sorted, unique shard cells containing ShardOf(x) for every point
// x with geo.DistanceM(p, x) <= radiusM. It may return a few more (a
// superset is safe), never fewer. A negative radius counts as 0; an invalid
// p or a NaN or infinite radius gives nil.
//
// Why nothing is missed. Write F for FineRes, circ(r) for circMaxM(r),
// child(r) for childMaxM(r), and reach(r) = child(r) + ... + child(F-1) +
// circ(F). The region of a cell c at resolution r is the set of points
// whose fine cell descends from c.
//
//  1. The region of c lies within reach(r) of c's center: a point x lies in
//     the hexagon of its fine cell f, so within circ(F) of f's center, and
//     each of f's ancestors has its center within child(i) of its
//     parent's.
//  2. So a cell whose region meets the search circle has its center within
//     radiusM + reach(r) of p: cells failing that test are dropped.
//  3. At Res, Cover walks the neighbor graph (GridDisk 1) from p's own
//     cell, continuing only from cells whose center is within radiusM +
//     circ(Res) + reach(Res+1) of p (reach(F+1) = 0). That set holds
//     every cell whose hexagon meets the cap of radius radiusM +
//     reach(Res+1) around p; those cells are connected and include p's
//     cell (the cap is connected and the hexagons tile it); and a cell
//     whose region meets the circle at x has its hexagon meet that cap, at
//     the center of its child on the way to x (a child's center lies in its
//     parent's hexagon, TestChildCentersInsideParent), which is within
//     reach(Res+1) of x. So the walk reaches every cell that matters.
//  4. A relevant cell that is split is replaced by those of its children
//     that pass test 2 at their resolution, recursively; the ancestors of a
//     relevant shard are all relevant, so none is dropped.
//
// Cost: Cover is uncached and makes two cgo calls (the cell's center and its
// neighbors, about 1 µs together) per cell of resolution Res within the walk
// margin of p, plus 8 per split cell met. At the default resolution 7 (walk
// margin about 2.6 km, reach about 1.9 km) a 2 km search walks about 30
// cells (tens of µs) and a 100 km search about 6,500 (about 10 ms). Cost
// grows with the square of the radius over the cell size: callers must cap
// radii (Map.Route caches answers up to MaxCachedRadiusM).
func (l *Layout) Cover(p geo.LatLng, radiusM float64) []Cell {
	if p.Validate() != nil || math.IsNaN(radiusM) || math.IsInf(radiusM, 0) {
		return nil
	}
	return l.cover(p, max(radiusM, 0))
}

// cover is Cover for a valid p and a finite radius >= 0.
func (l *Layout) cover(p geo.LatLng, radiusM float64) []Cell {
	start := h3.LatLngToCell(h3.LatLng{Lat: p.Lat, Lng: p.Lng}, l.res)
	walk := radiusM + l.expand
	keep := radiusM + l.reach[l.res]
	seen := map[Cell]struct{}{start: {}}
	queue := []Cell{start}
	var out []Cell
	for i := 0; i < len(queue); i++ {
		c := queue[i]
		d := geo.DistanceM(p, center(c))
		if d > walk {
			continue
		}
		if d <= keep {
			out = l.appendShards(out, p, radiusM, c)
		}
		for _, n := range c.GridDisk(1) {
			if n == 0 {
				continue // GridDisk leaves zeros near pentagons
			}
			if _, ok := seen[n]; !ok {
				seen[n] = struct{}{}
				queue = append(queue, n)
			}
		}
	}
	slices.Sort(out)
	return out
}

// appendShards appends to out the shards at or below c, a cell whose region
// may meet the circle (p, radiusM), whose own regions may meet it.
func (l *Layout) appendShards(out []Cell, p geo.LatLng, radiusM float64, c Cell) []Cell {
	if !l.isSplit(c) {
		return append(out, c)
	}
	r := Resolution(c) + 1
	for _, child := range c.Children(r) {
		if geo.DistanceM(p, center(child)) <= radiusM+l.reach[r] {
			out = l.appendShards(out, p, radiusM, child)
		}
	}
	return out
}

// center returns the center of c (one cgo call).
func center(c Cell) geo.LatLng {
	ll := h3.CellToLatLng(c)
	return geo.LatLng{Lat: ll.Lat, Lng: ll.Lng}
}

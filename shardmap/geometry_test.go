package shardmap

import (
	"math"
	"testing"

	"github.com/uber/h3-go/v4"

	"github.com/geomatch/geomatch/internal/geo"
)

// The exact cover rests on three geometric facts about H3, checked here:
//
//  1. every cell's circumradius (center to farthest boundary vertex) is at
//     most circMaxM of its resolution;
//  2. every point is within circMaxM of the center of its cell;
//  3. every child's center lies inside its parent's hexagon, within
//     childMaxM of the parent's center;
//
// and, as a consequence checked directly, every point lies within reach(r)
// of the center of its ancestor cells at resolution r.

// circumradiusM is the distance from c's center to its farthest boundary
// vertex.
func circumradiusM(c Cell) float64 {
	ctr := center(c)
	worst := 0.0
	for _, v := range c.Boundary() {
		worst = math.Max(worst, geo.DistanceM(ctr, geo.LatLng{Lat: v.Lat, Lng: v.Lng}))
	}
	return worst
}

// allCells returns every cell at res (res <= 3 keeps it small).
func allCells(res int) []Cell {
	var out []Cell
	for _, c := range h3.Res0Cells() {
		out = append(out, c.Children(res)...)
	}
	return out
}

// sampleCells returns cells at res around random and awkward points, the
// pentagons and their neighborhoods.
func sampleCells(res, n int, seed uint64) []Cell {
	r := newRand(seed)
	var out []Cell
	for range n {
		out = append(out, h3.LatLngToCell(toH3(awkwardPoint(r, res)), res))
	}
	for _, p := range h3.Pentagons(res) {
		for _, c := range p.GridDisk(2) {
			if c != 0 {
				out = append(out, c)
			}
		}
	}
	return out
}

func TestCircumradiusBound(t *testing.T) {
	worst := 0.0 // circumradius / average edge length
	for res := 0; res <= maxRes; res++ {
		cells := sampleCells(res, 3000, uint64(res))
		if res <= 3 {
			cells = allCells(res)
			if want := h3.NumCells(res); len(cells) != want {
				t.Fatalf("res %d: enumerated %d cells, want %d", res, len(cells), want)
			}
		}
		resWorst := 0.0
		for _, c := range cells {
			cr := circumradiusM(c)
			if bound := circMaxM(res); cr > bound {
				t.Fatalf("cell %s (res %d): circumradius %.3f m exceeds the bound %.3f m", c, res, cr, bound)
			}
			resWorst = math.Max(resWorst, cr/h3.HexagonEdgeLengthAvgM(res))
		}
		t.Logf("res %2d: %6d cells, worst circumradius = %.4f x average edge (bound %g x)", res, len(cells), resWorst, circFactor)
		worst = math.Max(worst, resWorst)
	}
	t.Logf("worst circumradius over all resolutions: %.4f x average edge, %.1f%% of the bound", worst, 100*worst/circFactor)
}

func TestPointsWithinCircMaxOfTheirCell(t *testing.T) {
	r := newRand(7)
	worst := 0.0
	for res := 0; res <= maxRes; res++ {
		for range 2000 {
			p := awkwardPoint(r, res)
			c := h3.LatLngToCell(toH3(p), res)
			d := geo.DistanceM(p, center(c))
			if d > circMaxM(res) {
				t.Fatalf("point %v is %.3f m from the center of its res %d cell %s, above the bound %.3f m", p, d, res, c, circMaxM(res))
			}
			worst = math.Max(worst, d/h3.HexagonEdgeLengthAvgM(res))
		}
	}
	t.Logf("worst point-to-center distance: %.4f x average edge (bound %g x)", worst, circFactor)
}

func TestChildCentersInsideParent(t *testing.T) {
	worst := 0.0 // child center distance / average parent edge
	for res := 0; res < maxRes; res++ {
		parents := sampleCells(res, 500, 100+uint64(res))
		if res <= 2 {
			parents = allCells(res)
		}
		for _, p := range parents {
			pc := center(p)
			for _, ch := range p.Children(res + 1) {
				cc := center(ch)
				if got := h3.LatLngToCell(toH3(cc), res); got != p {
					t.Fatalf("center of %s (child of %s) lies in %s", ch, p, got)
				}
				d := geo.DistanceM(pc, cc)
				if d > childMaxM(res) {
					t.Fatalf("center of %s is %.3f m from its parent %s's center, above the bound %.3f m", ch, d, p, childMaxM(res))
				}
				worst = math.Max(worst, d/h3.HexagonEdgeLengthAvgM(res))
			}
		}
	}
	t.Logf("worst child center distance: %.4f x average parent edge (bound %g x)", worst, childFactor)
}

// TestRegionWithinReach checks step 1 of the cover proof end to end: a
// point is within reach(r) of the center of the resolution r ancestor of
// its fine cell, for every layout shape.
func TestRegionWithinReach(t *testing.T) {
	r := newRand(8)
	worst := 0.0 // distance / reach
	for res := 0; res <= maxRes; res++ {
		for depth := 0; depth <= MaxSplitDepthLimit && res+depth <= maxRes; depth++ {
			l := mustLayout(t, res, depth, nil)
			for range 300 {
				p := awkwardPoint(r, l.FineRes())
				fine := l.FineCell(p)
				for a := res; a <= l.FineRes(); a++ {
					c := Parent(fine, a)
					d := geo.DistanceM(p, center(c))
					if d > l.reach[a] {
						t.Fatalf("layout (%d, %d): %v is %.3f m from the center of its res %d ancestor %s, above reach %.3f m",
							res, depth, p, d, a, c, l.reach[a])
					}
					worst = math.Max(worst, d/l.reach[a])
				}
			}
		}
	}
	t.Logf("worst distance to an ancestor's center: %.4f x reach", worst)
}

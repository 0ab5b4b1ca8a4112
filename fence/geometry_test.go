package fence

import (
	"math"
	"math/rand/v2"
	"testing"

	"github.com/uber/h3-go/v4"

	"github.com/geomatch/geomatch/internal/geo"
)

// The cover rests on two facts about H3, checked here at every resolution,
// near pentagons, the poles and the antimeridian:
//
//  1. two points closer than half the trace spacing (0.4 of the
//     resolution's average edge) lie in the same cell or in neighbors, so
//     the cells of boundary samples plus their neighbors hold every cell
//     the boundary passes through;
//  2. a cell's micro box holds every point of the cell;
//  3. a cell whose micro box holds a point is the point's cell or one of
//     its neighbors, so the cells at distance 2 of the boundary samples
//     hold every cell whose box meets the boundary.

// awkwardPoint returns a random point, often near a pole, the
// antimeridian or a pentagon of the resolution.
func awkwardPoint(r *rand.Rand, res int) geo.LatLng {
	switch r.IntN(5) {
	case 0:
		return geo.LatLng{Lat: 90 - 2*r.Float64(), Lng: -180 + 360*r.Float64()}
	case 1:
		return geo.LatLng{Lat: -90 + 2*r.Float64(), Lng: -180 + 360*r.Float64()}
	case 2:
		return geo.LatLng{Lat: -80 + 160*r.Float64(), Lng: normLng(180 + (2*r.Float64()-1)*0.05)}
	case 3:
		ps := h3.Pentagons(res)
		c := cellCenter(ps[r.IntN(len(ps))])
		return destination(c, 2*math.Pi*r.Float64(), 3*h3.HexagonEdgeLengthAvgM(res)*r.Float64()/geo.EarthRadiusM)
	}
	return geo.LatLng{Lat: math.Asin(2*r.Float64()-1) * radToDeg, Lng: -180 + 360*r.Float64()}
}

func TestNearbyPointsAreInNeighboringCells(t *testing.T) {
	r := newRand(11)
	for res := 0; res <= maxRes; res++ {
		d := traceSpacing / 2 * h3.HexagonEdgeLengthAvgM(res)
		for range 10000 {
			p := awkwardPoint(r, res)
			q := destination(p, 2*math.Pi*r.Float64(), d*math.Sqrt(r.Float64())/geo.EarthRadiusM)
			a, b := cellAt(p, res), cellAt(q, res)
			if a != b && !a.IsNeighbor(b) {
				t.Fatalf("res %d: %v (cell %s) and %v (cell %s) are %.3f m apart but not in neighboring cells",
					res, p, a, q, b, geo.DistanceM(p, q))
			}
		}
	}
}

func TestMicroBoxHoldsItsCell(t *testing.T) {
	r := newRand(12)
	for res := 0; res <= maxRes; res++ {
		boxes := map[h3.Cell]microBox{}
		withGrid := 0
		for range 4000 {
			p := awkwardPoint(r, res)
			if r.IntN(2) == 0 {
				p = geo.LatLng{Lat: -70 + 140*r.Float64(), Lng: -180 + 360*r.Float64()}
			}
			c := cellAt(p, res)
			b, ok := boxes[c]
			if !ok {
				b = newMicroBox(c)
				boxes[c] = b
			}
			if !b.ok {
				continue
			}
			withGrid++
			if b.cell(p) < 0 {
				t.Fatalf("res %d: %v lies in cell %s but outside its micro box %+v", res, p, c, b.rect())
			}
			// The cell's vertices too.
			for _, v := range c.Boundary() {
				if b.cell(geo.LatLng{Lat: v.Lat, Lng: v.Lng}) < 0 {
					t.Fatalf("res %d: vertex %v of %s outside its micro box", res, v, c)
				}
			}
		}
		if res >= 5 && withGrid < 1000 {
			t.Errorf("res %d: only %d points had a micro grid", res, withGrid)
		}
	}
}

func TestParentAndCenterChildMatchH3(t *testing.T) {
	r := newRand(13)
	for range 2000 {
		res := r.IntN(maxRes + 1)
		c := cellAt(awkwardPoint(r, res), res)
		for pr := 0; pr <= res; pr++ {
			if got, want := parent(c, pr), c.Parent(pr); got != want {
				t.Fatalf("parent(%s, %d) = %s, want %s", c, pr, got, want)
			}
		}
		for cr := res; cr <= maxRes; cr++ {
			if got, want := centerChild(c, cr), c.CenterChild(cr); got != want {
				t.Fatalf("centerChild(%s, %d) = %s, want %s", c, cr, got, want)
			}
		}
	}
}

func TestMicroBoxesNearTheirCell(t *testing.T) {
	r := newRand(14)
	for res := 0; res <= maxRes; res++ {
		for range 1500 {
			p := awkwardPoint(r, res)
			if r.IntN(2) == 0 {
				p = geo.LatLng{Lat: -70 + 140*r.Float64(), Lng: -180 + 360*r.Float64()}
			}
			c := cellAt(p, res)
			near := map[h3.Cell]bool{}
			for _, n := range c.GridDisk(1) {
				near[n] = true
			}
			for _, n := range c.GridDisk(3) {
				if n == 0 || near[n] {
					continue
				}
				if b := newMicroBox(n); b.cell(p) >= 0 {
					t.Fatalf("res %d: %v (cell %s) lies in the micro box of %s, %d cells away", res, p, c, n, c.GridDistance(n))
				}
			}
		}
	}
}

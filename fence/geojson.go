package fence

import (
	"errors"
	"fmt"
	"math"
	"strings"
)

// MaxVertices bounds the positions of one GeoJSON shape, closing positions
// of every ring included.
const MaxVertices = 10000

// ParseGeoJSON parses a GeoJSON (RFC 7946) Polygon or MultiPolygon
// geometry, or a Feature whose geometry is one, into a Polygon. Anything
// else is refused, and so is a shape that is not a valid area:
//
//   - no rings, or a ring with fewer than 4 positions;
//   - a ring whose first and last positions differ (an open ring);
//   - more than MaxVertices positions in all;
//   - a position with fewer than 2 numbers, a latitude outside [-90, 90]
//     or a longitude outside [-360, 360] (positions may carry an altitude,
//     which is ignored);
//   - a ring that crosses or touches itself (other than consecutive edges
//     at their shared vertex), or two rings of one polygon that cross or
//     touch each other;
//   - a hole that is not inside its exterior ring, or inside another hole;
//   - a ring of zero area;
//   - a ring that goes around a pole (its longitudes do not come back to
//     where they started, see below) or spans more than 360° of
//     longitude.
//
// Either winding order is accepted. Edges are straight lines in
// longitude/latitude. Antimeridian: consecutive positions whose
// longitudes differ by more than 180° are joined the short way round, so
// [170, 0] → [-170, 0] is a 20° edge across the antimeridian; the ring is
// then read with continuous longitudes (possibly beyond ±180) and tested
// at lng, lng+360 and lng-360. Consequently a ring cannot enclose a pole:
// use a Circle for polar areas. The members of a MultiPolygon are not
// checked against each other; a point is inside when any member holds it.
//
// Errors say which polygon (of a MultiPolygon), ring (0 is the exterior)
// and position are at fault; callers prefix the field name.
func ParseGeoJSON(s string) (*Polygon, error) {
	if strings.TrimSpace(s) == "" {
		return nil, errors.New("empty")
	}
	obj, err := scanGeoJSONObject(s)
	if err != nil {
		return nil, fmt.Errorf("not a GeoJSON object: %v", err)
	}
	if obj.typ == "Feature" {
		if obj.geometry == "" || obj.geometry == "null" {
			return nil, errors.New("the Feature has no geometry")
		}
		g, err := scanGeoJSONObject(obj.geometry)
		if err != nil {
			return nil, fmt.Errorf("the Feature's geometry is not a GeoJSON object: %v", err)
		}
		obj = g
		if obj.typ == "Feature" {
			return nil, errors.New(`the Feature's geometry is a "Feature": want Polygon or MultiPolygon`)
		}
	}
	var polys [][][][2]float64
	switch obj.typ {
	case "Polygon", "MultiPolygon":
		if obj.coordinates == "" || obj.coordinates == "null" {
			return nil, errors.New(`missing "coordinates"`)
		}
		if obj.typ == "Polygon" {
			var rings [][][2]float64
			rings, err = parsePolygonCoords(obj.coordinates)
			polys = [][][][2]float64{rings}
		} else {
			polys, err = parseMultiPolygonCoords(obj.coordinates)
		}
		if err != nil {
			return nil, err
		}
		if len(polys) == 0 {
			return nil, errors.New("MultiPolygon has no polygons")
		}
	case "":
		return nil, errors.New(`missing "type": want Polygon, MultiPolygon or a Feature of one`)
	default:
		return nil, fmt.Errorf("unsupported GeoJSON type %q: want Polygon, MultiPolygon or a Feature of one", obj.typ)
	}
	return newPolygon(polys, obj.typ == "MultiPolygon")
}

// newPolygon validates the parts (each a list of rings of positions) and
// builds the Polygon.
func newPolygon(polys [][][][2]float64, multi bool) (*Polygon, error) {
	where := func(pi, ri int) string {
		if multi {
			return fmt.Sprintf("polygon %d, ring %d", pi, ri)
		}
		return fmt.Sprintf("ring %d", ri)
	}
	total := 0
	for pi, rings := range polys {
		if len(rings) == 0 {
			if multi {
				return nil, fmt.Errorf("polygon %d has no rings", pi)
			}
			return nil, errors.New("polygon has no rings")
		}
		for ri, ring := range rings {
			total += len(ring)
			if total > MaxVertices {
				return nil, fmt.Errorf("more than %d positions", MaxVertices)
			}
			if len(ring) < 4 {
				return nil, fmt.Errorf("%s: %d positions, a ring needs at least 4 (the last repeating the first)", where(pi, ri), len(ring))
			}
			for k, pos := range ring {
				if err := checkPosition(pos[0], pos[1]); err != nil {
					return nil, fmt.Errorf("%s, position %d: %v", where(pi, ri), k, err)
				}
			}
			first, last := ring[0], ring[len(ring)-1]
			if first[0] != last[0] || first[1] != last[1] {
				return nil, fmt.Errorf("%s: not closed: the first position [%v, %v] differs from the last [%v, %v]",
					where(pi, ri), first[0], first[1], last[0], last[1])
			}
		}
	}
	pg := &Polygon{nverts: total, parts: make([]part, len(polys))}
	for pi, rings := range polys {
		if err := buildPart(&pg.parts[pi], rings, func(ri int) string { return where(pi, ri) }); err != nil {
			return nil, err
		}
		pg.addBound(pi)
	}
	return pg, nil
}

// addBound extends the polygon's box by part pi's (the first sets it).
func (pg *Polygon) addBound(pi int) {
	pt := &pg.parts[pi]
	r := Rect{MinLat: pt.minY, MaxLat: pt.maxY, MinLng: pt.minX, MaxLng: pt.maxX}
	if pi == 0 {
		pg.bound = r
		return
	}
	pg.bound = Rect{
		MinLat: math.Min(pg.bound.MinLat, r.MinLat), MaxLat: math.Max(pg.bound.MaxLat, r.MaxLat),
		MinLng: math.Min(pg.bound.MinLng, r.MinLng), MaxLng: math.Max(pg.bound.MaxLng, r.MaxLng),
	}
}

// checkPosition checks one GeoJSON position [lng, lat, ...].
func checkPosition(lng, lat float64) error {
	switch {
	case math.IsNaN(lng) || math.IsInf(lng, 0):
		return fmt.Errorf("longitude must be a finite number, got %v", lng)
	case math.IsNaN(lat) || math.IsInf(lat, 0):
		return fmt.Errorf("latitude must be a finite number, got %v", lat)
	case lat < -90 || lat > 90:
		return fmt.Errorf("latitude %v outside [-90, 90]", lat)
	case lng < -360 || lng > 360:
		return fmt.Errorf("longitude %v outside [-360, 360]", lng)
	}
	return nil
}

// unwrappedRing is a ring with continuous longitudes and no repeated
// consecutive vertices, closed.
type unwrappedRing struct {
	xs, ys                 []float64
	minX, minY, maxX, maxY float64
}

// unwrapRing reads ring with continuous longitudes (see ParseGeoJSON).
func unwrapRing(ring [][2]float64, where string) (unwrappedRing, error) {
	r := unwrappedRing{xs: make([]float64, 0, len(ring)), ys: make([]float64, 0, len(ring))}
	x := ring[0][0]
	for k, pos := range ring {
		if k > 0 {
			x = unwrapLng(r.xs[len(r.xs)-1], pos[0])
		}
		y := pos[1]
		if n := len(r.xs); n > 0 && r.xs[n-1] == x && r.ys[n-1] == y {
			continue // a repeated position adds no edge
		}
		r.xs = append(r.xs, x)
		r.ys = append(r.ys, y)
	}
	n := len(r.xs)
	if r.xs[n-1] != r.xs[0] {
		return r, fmt.Errorf("%s: goes around a pole (its longitudes end %v° from where they start); polygons cannot hold a pole, use a circle",
			where, r.xs[n-1]-r.xs[0])
	}
	if n < 4 {
		return r, fmt.Errorf("%s: zero area (fewer than 3 distinct positions)", where)
	}
	r.minX, r.maxX = math.Inf(1), math.Inf(-1)
	r.minY, r.maxY = math.Inf(1), math.Inf(-1)
	for i := range r.xs {
		r.minX, r.maxX = math.Min(r.minX, r.xs[i]), math.Max(r.maxX, r.xs[i])
		r.minY, r.maxY = math.Min(r.minY, r.ys[i]), math.Max(r.maxY, r.ys[i])
	}
	if r.maxX-r.minX > 360 {
		return r, fmt.Errorf("%s: spans %v° of longitude, more than 360", where, r.maxX-r.minX)
	}
	return r, nil
}

// shift moves the ring by dx degrees of longitude.
func (r *unwrappedRing) shift(dx float64) {
	if dx == 0 {
		return
	}
	for i := range r.xs {
		r.xs[i] += dx
	}
	r.minX += dx
	r.maxX += dx
}

// ringArea is twice the signed area of a closed ring (shoelace), in square
// degrees.
func ringArea(xs, ys []float64) float64 {
	var a float64
	for i := 0; i+1 < len(xs); i++ {
		a += (xs[i]-xs[0])*(ys[i+1]-ys[0]) - (xs[i+1]-xs[0])*(ys[i]-ys[0])
	}
	return a
}

// buildPart validates one polygon (exterior ring and holes) and fills pt.
func buildPart(pt *part, rings [][][2]float64, where func(int) string) error {
	urs := make([]unwrappedRing, len(rings))
	for ri, ring := range rings {
		r, err := unwrapRing(ring, where(ri))
		if err != nil {
			return err
		}
		urs[ri] = r
	}
	// The exterior's minimum longitude goes to [-180, 180); each hole
	// moves by the multiple of 360 that brings it nearest the exterior.
	outer := &urs[0]
	outer.shift(-360 * math.Floor((outer.minX+180)/360))
	mid := (outer.minX + outer.maxX) / 2
	for ri := 1; ri < len(urs); ri++ {
		h := &urs[ri]
		h.shift(360 * math.Round((mid-(h.minX+h.maxX)/2)/360))
	}
	pt.minX, pt.maxX, pt.minY, pt.maxY = outer.minX, outer.maxX, outer.minY, outer.maxY
	n := 0
	for _, r := range urs {
		n += len(r.xs)
	}
	pt.xs = make([]float64, 0, n)
	pt.ys = make([]float64, 0, n)
	pt.ringStart = make([]int32, 0, len(urs)+1)
	for _, r := range urs {
		pt.ringStart = append(pt.ringStart, int32(len(pt.xs)))
		pt.xs = append(pt.xs, r.xs...)
		pt.ys = append(pt.ys, r.ys...)
	}
	pt.ringStart = append(pt.ringStart, int32(len(pt.xs)))
	if err := pt.checkSimple(where); err != nil {
		return err
	}
	for ri, r := range urs {
		if ringArea(r.xs, r.ys) == 0 {
			return fmt.Errorf("%s: zero area", where(ri))
		}
	}
	// No ring crosses or touches another: each hole is wholly inside or
	// outside any other ring, which one vertex tells.
	for ri := 1; ri < len(urs); ri++ {
		h := &urs[ri]
		if !ringContains(outer.xs, outer.ys, h.xs[0], h.ys[0]) {
			return fmt.Errorf("%s: a hole outside its exterior ring", where(ri))
		}
		for rj := 1; rj < len(urs); rj++ {
			o := &urs[rj]
			if rj != ri && h.xs[0] >= o.minX && h.xs[0] <= o.maxX && h.ys[0] >= o.minY && h.ys[0] <= o.maxY &&
				ringContains(o.xs, o.ys, h.xs[0], h.ys[0]) {
				return fmt.Errorf("%s: a hole inside hole %d", where(ri), rj)
			}
		}
	}
	pt.buildBands()
	return nil
}

// ringContains is the even-odd test of (x, y) against one closed ring
// (not for points on the ring, which validation rules out where it is
// used).
func ringContains(xs, ys []float64, x, y float64) bool {
	in := false
	for i := 0; i+1 < len(xs); i++ {
		ax, ay, bx, by := xs[i], ys[i], xs[i+1], ys[i+1]
		if (ay > y) != (by > y) && (by > ay) == (orient(ax, ay, bx, by, x, y) > 0) {
			in = !in
		}
	}
	return in
}

package fence

import (
	"math"

	"github.com/geomatch/geomatch/internal/geo"
)

// Polygon is a GeoJSON Polygon or MultiPolygon: one or more parts, each an
// exterior ring with optional holes, with straight edges in
// longitude/latitude (RFC 7946). A point is inside when it is inside or on
// the boundary of some part (the shape is closed); a part's inside is
// decided by the even-odd rule over its rings, which for a valid part is
// "inside the exterior ring and not strictly inside a hole". Build one with
// ParseGeoJSON.
type Polygon struct {
	parts  []part
	bound  Rect
	nverts int // positions of the source, closing ones included
}

// part is one polygon of a Polygon, its rings unwrapped across the
// antimeridian and shifted so that minX is in [-180, 180).
type part struct {
	minX, minY, maxX, maxY float64
	// xs, ys hold every ring's vertices, each ring closed (its first
	// vertex repeated at its end); ringStart[k] is ring k's first index
	// and ringStart[len-1] is len(xs). Edge i runs from vertex i to i+1,
	// for i not the last index of a ring.
	xs, ys    []float64
	ringStart []int32
	// A band index over latitude: band b covers [y0+b/invH, y0+(b+1)/invH)
	// and lists, in bandEdge[bandStart[b]:bandStart[b+1]], the edges whose
	// latitude range meets it.
	y0, invH  float64
	nb        int
	bandStart []uint32
	bandEdge  []uint16
}

var _ Shape = (*Polygon)(nil)

// Bound returns the box of the polygon (see Rect for longitudes past 180).
func (pg *Polygon) Bound() Rect { return pg.bound }

func (pg *Polygon) areaM2() float64 {
	var a float64
	for i := range pg.parts {
		pt := &pg.parts[i]
		var deg2 float64
		for k := 0; k+1 < len(pt.ringStart); k++ {
			lo, hi := pt.ringStart[k], pt.ringStart[k+1]
			deg2 += math.Abs(ringArea(pt.xs[lo:hi], pt.ys[lo:hi])) / 2 * sign(k == 0)
		}
		mPerDeg := geo.EarthRadiusM * degToRad
		a += math.Abs(deg2) * mPerDeg * mPerDeg * math.Cos((pt.minY+pt.maxY)/2*degToRad)
	}
	return a
}

func sign(positive bool) float64 {
	if positive {
		return 1
	}
	return -1
}

// NumVertices returns the number of positions of the source GeoJSON,
// closing positions included.
func (pg *Polygon) NumVertices() int { return pg.nverts }

// NumParts returns the number of polygons: 1 for a GeoJSON Polygon, the
// number of members of a MultiPolygon.
func (pg *Polygon) NumParts() int { return len(pg.parts) }

// Contains reports whether p is inside the polygon or on its boundary. A
// point on the antimeridian is tested at both ±180.
func (pg *Polygon) Contains(p geo.LatLng) bool {
	for i := range pg.parts {
		if pg.parts[i].containsWrapped(p.Lng, p.Lat) {
			return true
		}
	}
	return false
}

func (pg *Polygon) containsProbe(q *probe) bool { return pg.Contains(q.p) }

// Crosses reports whether the segment a→b (see Shape) meets the polygon:
// an endpoint is inside or the segment touches an edge.
func (pg *Polygon) Crosses(a, b geo.LatLng) bool {
	sr, bx := segmentRect(a, b)
	for i := range pg.parts {
		pt := &pg.parts[i]
		for _, shift := range [3]float64{0, 360, -360} {
			if sr.MinLat > pt.maxY || sr.MaxLat < pt.minY || sr.MinLng+shift > pt.maxX || sr.MaxLng+shift < pt.minX {
				continue
			}
			ax, bxs := a.Lng+shift, bx+shift
			if pt.pip(ax, a.Lat) || pt.pip(bxs, b.Lat) || pt.segmentMeetsEdge(ax, a.Lat, bxs, b.Lat) {
				return true
			}
		}
	}
	return false
}

// trace walks every ring, placing a sample wherever the distance walked
// since the previous one (bounded from above edge by edge) would exceed
// spacingM: every boundary point is within spacingM/2 of a sample.
func (pg *Polygon) trace(spacingM float64, fn func(geo.LatLng) bool) bool {
	for i := range pg.parts {
		pt := &pg.parts[i]
		for k := 0; k+1 < len(pt.ringStart); k++ {
			walked := math.Inf(1) // sample the ring's first vertex
			for e := int(pt.ringStart[k]); e < int(pt.ringStart[k+1])-1; e++ {
				x0, y0, x1, y1 := pt.xs[e], pt.ys[e], pt.xs[e+1], pt.ys[e+1]
				length := lonLatLengthM(x0, y0, x1, y1)
				if walked+length <= spacingM {
					walked += length // no sample needed on this edge
					continue
				}
				if walked > 0 && !fn(geo.LatLng{Lat: y0, Lng: normLng(x0)}) {
					return false
				}
				// Samples every spacingM along the edge after its start.
				n := max(int(math.Ceil(length/spacingM)), 1)
				for j := 1; j < n; j++ {
					t := float64(j) / float64(n)
					if !fn(geo.LatLng{Lat: y0 + t*(y1-y0), Lng: normLng(x0 + t*(x1-x0))}) {
						return false
					}
				}
				walked = length / float64(n)
			}
		}
	}
	return true
}

// edges yields the index of every edge's first vertex.
func (pt *part) edges() func(yield func(int) bool) {
	return func(yield func(int) bool) {
		for k := 0; k+1 < len(pt.ringStart); k++ {
			for i := int(pt.ringStart[k]); i < int(pt.ringStart[k+1])-1; i++ {
				if !yield(i) {
					return
				}
			}
		}
	}
}

// containsWrapped tests x, x+360 and x-360 against the part.
func (pt *part) containsWrapped(x, y float64) bool {
	if y < pt.minY || y > pt.maxY {
		return false
	}
	if x >= pt.minX && x <= pt.maxX && pt.pip(x, y) {
		return true
	}
	if x += 360; x >= pt.minX && x <= pt.maxX && pt.pip(x, y) {
		return true
	}
	x -= 720
	return x >= pt.minX && x <= pt.maxX && pt.pip(x, y)
}

// band returns the band of latitude y, clamped to the index.
func (pt *part) band(y float64) int {
	b := int((y - pt.y0) * pt.invH)
	return min(max(b, 0), pt.nb-1)
}

// pip is the point-in-part test in the part's own coordinates: true on
// an edge, else the even-odd rule with a ray towards +x (an edge counts
// when one end is strictly above y and the other at or below).
func (pt *part) pip(x, y float64) bool {
	if y < pt.minY || y > pt.maxY || x < pt.minX || x > pt.maxX {
		return false
	}
	b := pt.band(y)
	in := false
	xs, ys := pt.xs, pt.ys
	for _, e16 := range pt.bandEdge[pt.bandStart[b]:pt.bandStart[b+1]] {
		e := int(e16)
		ax, ay, bx, by := xs[e], ys[e], xs[e+1], ys[e+1]
		if (ay < y && by < y) || (ay > y && by > y) {
			continue
		}
		o := orient(ax, ay, bx, by, x, y)
		if o == 0 && x >= math.Min(ax, bx) && x <= math.Max(ax, bx) {
			return true // on the edge
		}
		if (ay > y) != (by > y) {
			if (by > ay) == (o > 0) {
				in = !in
			}
		}
	}
	return in
}

// segmentMeetsEdge reports whether the segment (ax,ay)→(bx,by) touches an
// edge of the part.
func (pt *part) segmentMeetsEdge(ax, ay, bx, by float64) bool {
	lo, hi := math.Min(ay, by), math.Max(ay, by)
	if lo > pt.maxY || hi < pt.minY {
		return false
	}
	minX, maxX := math.Min(ax, bx), math.Max(ax, bx)
	xs, ys := pt.xs, pt.ys
	bandLo := pt.band(lo)
	for b := bandLo; b <= pt.band(hi); b++ {
		for _, e16 := range pt.bandEdge[pt.bandStart[b]:pt.bandStart[b+1]] {
			e := int(e16)
			cx, cy, dx, dy := xs[e], ys[e], xs[e+1], ys[e+1]
			if max(pt.band(min(cy, dy)), bandLo) != b {
				continue // seen in an earlier band
			}
			if math.Max(cy, dy) < lo || math.Min(cy, dy) > hi || math.Max(cx, dx) < minX || math.Min(cx, dx) > maxX {
				continue
			}
			if segmentsMeet(ax, ay, bx, by, cx, cy, dx, dy) {
				return true
			}
		}
	}
	return false
}

// orient is twice the signed area of the triangle (a, b, c): positive when
// c is left of a→b.
func orient(ax, ay, bx, by, cx, cy float64) float64 {
	return (bx-ax)*(cy-ay) - (by-ay)*(cx-ax)
}

// onSegment reports whether c, collinear with a and b, lies within their box.
func onSegment(ax, ay, bx, by, cx, cy float64) bool {
	return cx >= math.Min(ax, bx) && cx <= math.Max(ax, bx) && cy >= math.Min(ay, by) && cy <= math.Max(ay, by)
}

// segmentsMeet reports whether the closed segments a→b and c→d share a point.
func segmentsMeet(ax, ay, bx, by, cx, cy, dx, dy float64) bool {
	d1 := orient(cx, cy, dx, dy, ax, ay)
	d2 := orient(cx, cy, dx, dy, bx, by)
	d3 := orient(ax, ay, bx, by, cx, cy)
	d4 := orient(ax, ay, bx, by, dx, dy)
	if ((d1 > 0 && d2 < 0) || (d1 < 0 && d2 > 0)) && ((d3 > 0 && d4 < 0) || (d3 < 0 && d4 > 0)) {
		return true
	}
	return (d1 == 0 && onSegment(cx, cy, dx, dy, ax, ay)) ||
		(d2 == 0 && onSegment(cx, cy, dx, dy, bx, by)) ||
		(d3 == 0 && onSegment(ax, ay, bx, by, cx, cy)) ||
		(d4 == 0 && onSegment(ax, ay, bx, by, dx, dy))
}

// buildBands fills the band index of pt. The number of bands is chosen
// so that the index holds at most about four entries per edge: one band
// per edge for polygons whose edges are short compared with the height,
// fewer for jagged ones.
func (pt *part) buildBands() {
	nEdges := 0
	var sumDy float64
	for e := range pt.edges() {
		nEdges++
		sumDy += math.Abs(pt.ys[e+1] - pt.ys[e])
	}
	height := pt.maxY - pt.minY
	nb := nEdges
	if sumDy > 0 && height > 0 {
		nb = min(nb, int(3*float64(nEdges)*height/sumDy))
	}
	if height <= 0 {
		nb = 1
	}
	nb = max(nb, 1)
	pt.nb = nb
	pt.y0 = pt.minY
	pt.invH = 0
	if height > 0 {
		pt.invH = float64(nb) / height
	}
	counts := make([]uint32, nb+1)
	for e := range pt.edges() {
		lo, hi := pt.band(math.Min(pt.ys[e], pt.ys[e+1])), pt.band(math.Max(pt.ys[e], pt.ys[e+1]))
		for b := lo; b <= hi; b++ {
			counts[b+1]++
		}
	}
	for b := 1; b <= nb; b++ {
		counts[b] += counts[b-1]
	}
	pt.bandStart = counts
	pt.bandEdge = make([]uint16, counts[nb])
	next := make([]uint32, nb)
	copy(next, counts[:nb])
	for e := range pt.edges() {
		lo, hi := pt.band(math.Min(pt.ys[e], pt.ys[e+1])), pt.band(math.Max(pt.ys[e], pt.ys[e+1]))
		for b := lo; b <= hi; b++ {
			pt.bandEdge[next[b]] = uint16(e)
			next[b]++
		}
	}
}

package fence

import (
	"math"

	"github.com/geomatch/geomatch/internal/geo"
)

// Shape is the area of a fence: a *Polygon (from ParseGeoJSON) or a
// *Circle (from NewCircle). The set is closed: other types cannot implement
// it, because the Index relies on the cover and fast paths of these two.
// A Shape is immutable and safe for concurrent use.
type Shape interface {
	// Contains reports whether p is inside the shape or on its boundary.
	Contains(p geo.LatLng) bool
	// Crosses reports whether the segment from a to b meets the shape
	// (endpoints included). The segment is straight in longitude/latitude
	// and goes the short way round: when the longitudes differ by more
	// than 180°, b is read as b.Lng∓360.
	Crosses(a, b geo.LatLng) bool
	// Bound returns a box holding the whole shape.
	Bound() Rect

	// areaM2 estimates the area in square meters (within a factor of two:
	// it only chooses how the cover is computed).
	areaM2() float64
	// containsProbe is Contains for a position with its precomputed terms.
	containsProbe(q *probe) bool
	// trace calls fn with points of the shape's boundary such that every
	// boundary point is within spacingM/2 meters (great-circle) of one of
	// them, in order; it stops early and returns false when fn does.
	trace(spacingM float64, fn func(geo.LatLng) bool) bool
}

// Rect is a latitude/longitude box in degrees. MinLng is in [-180, 180);
// MaxLng may exceed 180 for a shape across the antimeridian (a point of
// the shape at longitude x has x or x+360 within [MinLng, MaxLng]).
type Rect struct {
	MinLat, MinLng, MaxLat, MaxLng float64
}

// intersects reports whether r and o overlap (edges included), comparing
// longitudes as they are (no wrapping).
func (r Rect) intersects(o Rect) bool {
	return r.MinLat <= o.MaxLat && o.MinLat <= r.MaxLat && r.MinLng <= o.MaxLng && o.MinLng <= r.MaxLng
}

const (
	degToRad = math.Pi / 180
	radToDeg = 180 / math.Pi
)

// probe is a position with terms computed once and shared by every shape
// tested against it in one index lookup.
type probe struct {
	p          geo.LatLng
	hasVec     bool
	vx, vy, vz float64 // unit vector, computed on first use
}

// vec returns the unit vector of q's position.
func (q *probe) vec() (x, y, z float64) {
	if !q.hasVec {
		q.vx, q.vy, q.vz = unitVector(q.p)
		q.hasVec = true
	}
	return q.vx, q.vy, q.vz
}

// unitVector returns p on the unit sphere (x towards 0°,0°; z north).
func unitVector(p geo.LatLng) (x, y, z float64) {
	sinLat, cosLat := math.Sincos(p.Lat * degToRad)
	sinLng, cosLng := math.Sincos(p.Lng * degToRad)
	return cosLat * cosLng, cosLat * sinLng, sinLat
}

// unwrapLng returns x moved by a multiple of 360 so that it is within 180
// of ref (exactly 180 away: unchanged).
func unwrapLng(ref, x float64) float64 {
	for x-ref > 180 {
		x -= 360
	}
	for x-ref < -180 {
		x += 360
	}
	return x
}

// normLng maps a longitude into [-180, 180).
func normLng(x float64) float64 {
	if x >= -180 && x < 180 {
		return x
	}
	return x - 360*math.Floor((x+180)/360)
}

// segmentRect is the box of the segment a→b going the short way round (see
// Shape.Crosses), and b's longitude as unwrapped.
func segmentRect(a, b geo.LatLng) (Rect, float64) {
	bx := unwrapLng(a.Lng, b.Lng)
	return Rect{
		MinLat: math.Min(a.Lat, b.Lat), MaxLat: math.Max(a.Lat, b.Lat),
		MinLng: math.Min(a.Lng, bx), MaxLng: math.Max(a.Lng, bx),
	}, bx
}

// destination returns the point at angular distance d (radians) from p in
// the direction bearing (radians clockwise from north), with its longitude
// in [-180, 180).
func destination(p geo.LatLng, bearing, d float64) geo.LatLng {
	phi1, lam1 := p.Lat*degToRad, p.Lng*degToRad
	sinD, cosD := math.Sincos(d)
	sinPhi1, cosPhi1 := math.Sincos(phi1)
	sinPhi2 := sinPhi1*cosD + cosPhi1*sinD*math.Cos(bearing)
	sinPhi2 = math.Max(-1, math.Min(1, sinPhi2))
	phi2 := math.Asin(sinPhi2)
	lam2 := lam1 + math.Atan2(math.Sin(bearing)*sinD*cosPhi1, cosD-sinPhi1*sinPhi2)
	return geo.LatLng{Lat: phi2 * radToDeg, Lng: normLng(lam2 * radToDeg)}
}

// lonLatLengthM bounds from above the great-circle length, in meters, of
// the straight longitude/latitude segment (x0,y0)→(x1,y1) (degrees): its
// speed is at most R·sqrt(dφ² + cos²φ·dλ²) with cos φ at most its value at
// the latitude of the segment nearest the equator.
func lonLatLengthM(x0, y0, x1, y1 float64) float64 {
	dphi := (y1 - y0) * degToRad
	dlam := (x1 - x0) * degToRad
	var c float64
	switch {
	case y0 <= 0 && y1 >= 0, y1 <= 0 && y0 >= 0:
		c = 1
	default:
		c = math.Cos(math.Min(math.Abs(y0), math.Abs(y1)) * degToRad)
	}
	return geo.EarthRadiusM * math.Sqrt(dphi*dphi+c*c*dlam*dlam)
}

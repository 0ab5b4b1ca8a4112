package fence

import (
	"fmt"
	"math"

	"github.com/geomatch/geomatch/internal/geo"
)

// MaxRadiusM bounds a circle's radius, in meters (1,000 km): beyond that a
// circle's cell cover grows past what an index should hold for one fence.
const MaxRadiusM = 1_000_000

// crossToleranceM is how finely Circle.Crosses resolves a segment that
// grazes the circle: one whose closest approach is within this many meters
// outside the radius may be reported either way (always the same way for
// the same input).
const crossToleranceM = 1e-3

// Circle is a disc on the sphere: the points whose great-circle distance
// from the center (geo.DistanceM) is at most the radius. Build one with
// NewCircle.
type Circle struct {
	center  geo.LatLng
	radiusM float64
	origin  geo.Origin
	bound   Rect
	// The unit vector of the center and the range of squared chord
	// lengths within which the fast test defers to geo.DistanceM.
	cx, cy, cz         float64
	chord2Lo, chord2Hi float64
}

var _ Shape = (*Circle)(nil)

// NewCircle returns the circle of radius radiusM meters around center.
// The center must be a valid position and the radius in (0, MaxRadiusM].
// A circle may hold a pole or straddle the antimeridian.
func NewCircle(center geo.LatLng, radiusM float64) (*Circle, error) {
	if err := center.Validate(); err != nil {
		return nil, fmt.Errorf("center: %v", err)
	}
	if math.IsNaN(radiusM) || radiusM <= 0 || radiusM > MaxRadiusM {
		return nil, fmt.Errorf("radius must be in (0, %d] meters, got %v", MaxRadiusM, radiusM)
	}
	c := &Circle{center: center, radiusM: radiusM, origin: geo.NewOrigin(center)}
	c.cx, c.cy, c.cz = unitVector(center)
	delta := radiusM / geo.EarthRadiusM // angular radius
	chord := 2 * math.Sin(delta/2)
	// Rounding of the chord from unit vectors is below 1e-15 relative
	// plus 1e-15 absolute: far inside this band.
	band := chord*chord*1e-7 + chord*1e-14
	c.chord2Lo, c.chord2Hi = chord*chord-band, chord*chord+band

	d := delta*radToDeg*(1+1e-9) + 1e-9
	c.bound = Rect{MinLat: center.Lat - d, MaxLat: center.Lat + d, MinLng: -180, MaxLng: 180}
	if c.bound.MaxLat >= 90 || c.bound.MinLat <= -90 {
		// Holds a pole: every longitude.
		c.bound.MinLat, c.bound.MaxLat = math.Max(c.bound.MinLat, -90), math.Min(c.bound.MaxLat, 90)
		return c, nil
	}
	dLng := math.Asin(math.Min(1, math.Sin(delta)/math.Cos(center.Lat*degToRad)))*radToDeg*(1+1e-9) + 1e-9
	c.bound.MinLng, c.bound.MaxLng = center.Lng-dLng, center.Lng+dLng
	if c.bound.MinLng < -180 {
		c.bound.MinLng += 360
		c.bound.MaxLng += 360
	}
	return c, nil
}

func (c *Circle) areaM2() float64 { return math.Pi * c.radiusM * c.radiusM }

// Center returns the circle's center.
func (c *Circle) Center() geo.LatLng { return c.center }

// RadiusM returns the circle's radius in meters.
func (c *Circle) RadiusM() float64 { return c.radiusM }

// Bound returns a box holding the circle.
func (c *Circle) Bound() Rect { return c.bound }

// Contains reports whether geo.DistanceM(center, p) <= radius.
func (c *Circle) Contains(p geo.LatLng) bool {
	return c.origin.DistanceM(p) <= c.radiusM
}

// containsProbe is Contains from the unit vector of the position: the
// squared chord decides unless it is within rounding of the radius, where
// Contains does.
func (c *Circle) containsProbe(q *probe) bool {
	x, y, z := q.vec()
	dx, dy, dz := x-c.cx, y-c.cy, z-c.cz
	ch := dx*dx + dy*dy + dz*dz
	if ch < c.chord2Lo {
		return true
	}
	if ch > c.chord2Hi {
		return false
	}
	return c.Contains(q.p)
}

// Crosses reports whether the segment a→b, straight in longitude/latitude
// the short way round (as for polygons), comes within the radius of the
// center. It bisects the segment, discarding pieces that the distance
// from the center to their midpoint minus their half-length (a Lipschitz
// bound) keeps outside the radius; a segment grazing the circle by less
// than 1 mm may be reported either way, deterministically.
func (c *Circle) Crosses(a, b geo.LatLng) bool {
	if c.Contains(a) || c.Contains(b) {
		return true
	}
	sr, bx := segmentRect(a, b)
	if !c.bound.intersects(sr) && !c.bound.intersects(shiftRect(sr, 360)) && !c.bound.intersects(shiftRect(sr, -360)) {
		return false
	}
	return c.nearSegment(a.Lng, a.Lat, bx, b.Lat)
}

func (c *Circle) nearSegment(x0, y0, x1, y1 float64) bool {
	mx, my := (x0+x1)/2, (y0+y1)/2
	d := c.origin.DistanceM(geo.LatLng{Lat: my, Lng: mx})
	if d <= c.radiusM {
		return true
	}
	half := lonLatLengthM(x0, y0, x1, y1) / 2
	if d-half > c.radiusM || half < crossToleranceM {
		return false
	}
	return c.nearSegment(x0, y0, mx, my) || c.nearSegment(mx, my, x1, y1)
}

// shiftRect moves r by dx degrees of longitude.
func shiftRect(r Rect, dx float64) Rect {
	r.MinLng += dx
	r.MaxLng += dx
	return r
}

// trace walks the circle's boundary at a spacing of at most spacingM
// meters along it.
func (c *Circle) trace(spacingM float64, fn func(geo.LatLng) bool) bool {
	delta := c.radiusM / geo.EarthRadiusM
	n := int(math.Ceil(2 * math.Pi * geo.EarthRadiusM * math.Sin(delta) / spacingM))
	n = max(n, 8)
	for k := range n {
		if !fn(destination(c.center, 2*math.Pi*float64(k)/float64(n), delta)) {
			return false
		}
	}
	return true
}

package city

import (
	"math"

	"github.com/geomatch/geomatch/internal/geo"
)

// metersPerDegree is the length of one degree of latitude on the sphere
// the service measures distances on.
const metersPerDegree = geo.EarthRadiusM * math.Pi / 180

// Frame is a local tangent plane around an origin: x meters east and y
// meters north of it. It is equirectangular (longitude scaled by the
// cosine of the origin's latitude), which over a city of 20 km is within a
// few meters of the great-circle geometry, and longitude differences are
// taken modulo 360°, so a city across the antimeridian is one plane.
type Frame struct {
	// Origin is the point at x = 0, y = 0.
	Origin geo.LatLng
	cos    float64
}

// NewFrame returns the frame around origin. Origins within 0.5° of a pole
// are refused by the callers (presets and loaders) that build cities.
func NewFrame(origin geo.LatLng) Frame {
	return Frame{Origin: origin, cos: math.Cos(origin.Lat * math.Pi / 180)}
}

// WrapLng maps a longitude (or a longitude difference) into [-180, 180).
func WrapLng(lng float64) float64 {
	w := math.Mod(lng+180, 360)
	if w < 0 {
		w += 360
	}
	return w - 180
}

// LatLng returns the position of the point x meters east and y meters north
// of the origin.
func (f Frame) LatLng(x, y float64) geo.LatLng {
	lat := f.Origin.Lat + y/metersPerDegree
	lng := WrapLng(f.Origin.Lng + x/(metersPerDegree*f.cos))
	return geo.LatLng{Lat: lat, Lng: lng}
}

// XY returns where p lies in the frame, in meters east and north of the
// origin.
func (f Frame) XY(p geo.LatLng) (x, y float64) {
	return WrapLng(p.Lng-f.Origin.Lng) * metersPerDegree * f.cos, (p.Lat - f.Origin.Lat) * metersPerDegree
}

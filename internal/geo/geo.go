// Package geo holds the spherical geometry every other package agrees on:
// coordinates, the great-circle distance used for ranking drivers, a lower
// bound of that distance for a latitude/longitude box (what makes R-tree
// k-nearest searches exact), and the brute-force k-nearest oracle the tests
// compare against.
//
// All distances are great-circle distances on a sphere of radius EarthRadiusM,
// computed with the haversine formula. The index, the router and the oracle
// all call DistanceM, so equal inputs give bit-identical distances and result
// orders can be compared exactly.
package geo

import (
	"fmt"
	"math"
)

// EarthRadiusM is the mean Earth radius in meters (IUGG), the sphere all
// distances are measured on.
const EarthRadiusM = 6371008.8

const degToRad = math.Pi / 180

// LatLng is a position in degrees: latitude in [-90, 90], longitude in
// [-180, 180].
type LatLng struct {
	Lat float64
	Lng float64
}

// String formats the position as "lat,lng" with 7 decimals (about 1 cm).
func (p LatLng) String() string { return fmt.Sprintf("%.7f,%.7f", p.Lat, p.Lng) }

// Validate reports why p is not a usable position, or nil. NaN and infinite
// values, latitudes outside [-90, 90] and longitudes outside [-180, 180] are
// refused.
func (p LatLng) Validate() error {
	switch {
	case math.IsNaN(p.Lat) || math.IsInf(p.Lat, 0):
		return fmt.Errorf("lat must be a finite number, got %v", p.Lat)
	case math.IsNaN(p.Lng) || math.IsInf(p.Lng, 0):
		return fmt.Errorf("lng must be a finite number, got %v", p.Lng)
	case p.Lat < -90 || p.Lat > 90:
		return fmt.Errorf("lat must be within [-90, 90], got %v", p.Lat)
	case p.Lng < -180 || p.Lng > 180:
		return fmt.Errorf("lng must be within [-180, 180], got %v", p.Lng)
	}
	return nil
}

// DistanceM is the great-circle (haversine) distance between a and b in
// meters. It is the one distance function of the system.
func DistanceM(a, b LatLng) float64 {
	return distanceRad(a.Lat*degToRad, a.Lng*degToRad, b.Lat*degToRad, b.Lng*degToRad) * EarthRadiusM
}

func distanceRad(lat1, lng1, lat2, lng2 float64) float64 {
	return centralAngle(lat1, math.Cos(lat1), lng1, lat2, lng2)
}

// centralAngle is the haversine central angle between (lat1, lng1) and
// (lat2, lng2), in radians, given cos1 = cos(lat1). DistanceM and
// Origin.DistanceM both compute through it, so they agree bit for bit.
func centralAngle(lat1, cos1, lng1, lat2, lng2 float64) float64 {
	sdlat := math.Sin((lat2 - lat1) / 2)
	sdlng := math.Sin((lng2 - lng1) / 2)
	h := sdlat*sdlat + cos1*math.Cos(lat2)*sdlng*sdlng
	if h > 1 {
		h = 1
	}
	return 2 * math.Asin(math.Sqrt(h))
}

// Origin is a point to measure many distances from: the terms of DistanceM
// that depend only on it are computed once.
type Origin struct {
	lat, lng, cos float64 // radians, and cos(lat)
}

// NewOrigin returns q as an Origin.
func NewOrigin(q LatLng) Origin {
	lat := q.Lat * degToRad
	return Origin{lat: lat, lng: q.Lng * degToRad, cos: math.Cos(lat)}
}

// DistanceM is DistanceM(q, p) for the q of o, bit for bit, without
// recomputing the cosine of q's latitude.
func (o Origin) DistanceM(p LatLng) float64 {
	return centralAngle(o.lat, o.cos, o.lng, p.Lat*degToRad, p.Lng*degToRad) * EarthRadiusM
}

// slack shrinks a lower bound by margins far above float rounding error so
// the bound never exceeds the DistanceM of a point inside the box: a relative
// 1e-9 (rounding of the trigonometry is about 1e-15) and an absolute 1 µm
// (degree-to-radian rounding of two nearby angles is about 1e-16 rad, 1 nm).
func slack(m float64) float64 {
	return math.Max(0, m*(1-1e-9)-1e-6)
}

// BoxLowerBoundM returns a lower bound, in meters, of the great-circle
// distance from q to any point of the box [minLat, maxLat] x [minLng, maxLng]
// (degrees, not crossing the antimeridian; minLng <= maxLng). The bound is
// exact up to a relative 1e-9 plus 1 µm and wraps correctly around ±180° longitude, so
// an R-tree best-first search that uses it returns exactly the brute-force
// answer.
func BoxLowerBoundM(q LatLng, minLat, minLng, maxLat, maxLng float64) float64 {
	if q.Lng >= minLng && q.Lng <= maxLng {
		// Same meridian as some point of the box: the nearest point is
		// straight north or south.
		switch {
		case q.Lat < minLat:
			return slack((minLat - q.Lat) * degToRad * EarthRadiusM)
		case q.Lat > maxLat:
			return slack((q.Lat - maxLat) * degToRad * EarthRadiusM)
		default:
			return 0
		}
	}
	// Outside the longitude range: distance grows with |Δlng| at every
	// latitude, so the nearest point lies on the nearer meridian edge.
	d1, d2 := lngGap(q.Lng, minLng), lngGap(q.Lng, maxLng)
	edge, gap := minLng, d1
	if d2 < d1 {
		edge, gap = maxLng, d2
	}
	phiQ := q.Lat * degToRad
	dl := gap * degToRad
	// Along the meridian the cosine of the distance is C·cos(φ-φ*), largest
	// at φ*; when φ* is inside the edge, the foot of the perpendicular is the
	// nearest point.
	phiStar := math.Atan2(math.Sin(phiQ), math.Cos(phiQ)*math.Cos(dl))
	if phiStar >= minLat*degToRad && phiStar <= maxLat*degToRad {
		s := math.Cos(phiQ) * math.Sin(dl)
		if s > 1 {
			s = 1
		}
		return slack(math.Asin(s) * EarthRadiusM)
	}
	a := DistanceM(q, LatLng{Lat: minLat, Lng: edge})
	b := DistanceM(q, LatLng{Lat: maxLat, Lng: edge})
	return slack(math.Min(a, b))
}

// lngGap is the absolute longitude difference in degrees, wrapped to [0, 180].
func lngGap(a, b float64) float64 {
	d := math.Abs(a - b)
	if d > 180 {
		d = 360 - d
	}
	return d
}

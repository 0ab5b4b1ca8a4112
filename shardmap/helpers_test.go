package shardmap

import (
	"math"
	"math/rand/v2"
	"testing"

	"github.com/uber/h3-go/v4"

	"github.com/geomatch/geomatch/internal/geo"
)

// Places the tests care about.
var (
	nyc          = geo.LatLng{Lat: 40.7128, Lng: -74.0060}
	nycMinLat    = 40.55
	nycMaxLat    = 40.95
	nycMinLng    = -74.10
	nycMaxLng    = -73.70
	northPole    = geo.LatLng{Lat: 90, Lng: 0}
	southPole    = geo.LatLng{Lat: -90, Lng: 0}
	degPerRad    = 180 / math.Pi
	radPerDeg    = math.Pi / 180
	earthRadiusM = geo.EarthRadiusM
)

func toH3(p geo.LatLng) h3.LatLng { return h3.LatLng{Lat: p.Lat, Lng: p.Lng} }

// newRand returns a deterministic generator for a test.
func newRand(seed uint64) *rand.Rand { return rand.New(rand.NewPCG(seed, 0x5eed)) }

// destination returns the point at distM meters from p in the direction
// bearing (radians clockwise from north), on the sphere of geo.DistanceM.
func destination(p geo.LatLng, bearing, distM float64) geo.LatLng {
	phi1, lam1 := p.Lat*radPerDeg, p.Lng*radPerDeg
	d := distM / earthRadiusM
	sinPhi2 := math.Sin(phi1)*math.Cos(d) + math.Cos(phi1)*math.Sin(d)*math.Cos(bearing)
	sinPhi2 = math.Max(-1, math.Min(1, sinPhi2))
	phi2 := math.Asin(sinPhi2)
	lam2 := lam1 + math.Atan2(math.Sin(bearing)*math.Sin(d)*math.Cos(phi1), math.Cos(d)-math.Sin(phi1)*sinPhi2)
	return geo.LatLng{Lat: phi2 * degPerRad, Lng: wrapLng(lam2 * degPerRad)}
}

// wrapLng maps a longitude in degrees into [-180, 180].
func wrapLng(lng float64) float64 {
	lng = math.Mod(lng+180, 360)
	if lng < 0 {
		lng += 360
	}
	return lng - 180
}

// randomPoint is uniform on the sphere.
func randomPoint(r *rand.Rand) geo.LatLng {
	return geo.LatLng{Lat: math.Asin(2*r.Float64()-1) * degPerRad, Lng: -180 + 360*r.Float64()}
}

// awkwardPoint is a random point, biased to the places where spherical code
// breaks: poles, the antimeridian, pentagons, plus New York.
func awkwardPoint(r *rand.Rand, res int) geo.LatLng {
	switch r.IntN(8) {
	case 0: // north of 89.9
		return geo.LatLng{Lat: 90 - 0.1*r.Float64(), Lng: -180 + 360*r.Float64()}
	case 1: // south of -89.9
		return geo.LatLng{Lat: -90 + 0.1*r.Float64(), Lng: -180 + 360*r.Float64()}
	case 2: // within 0.05 degrees of the antimeridian, either side
		lng := 180 - 0.05*r.Float64()
		if r.IntN(2) == 0 {
			lng = -lng
		}
		return geo.LatLng{Lat: -80 + 160*r.Float64(), Lng: lng}
	case 3: // at or near a pentagon center of the resolution
		ps := h3.Pentagons(res)
		c := center(ps[r.IntN(len(ps))])
		if r.IntN(3) == 0 {
			return c
		}
		return destination(c, 2*math.Pi*r.Float64(), 3*h3.HexagonEdgeLengthAvgM(res)*r.Float64())
	case 4:
		return geo.LatLng{Lat: nycMinLat + (nycMaxLat-nycMinLat)*r.Float64(), Lng: nycMinLng + (nycMaxLng-nycMinLng)*r.Float64()}
	case 5: // exactly a pole
		if r.IntN(2) == 0 {
			return northPole
		}
		return southPole
	default:
		return randomPoint(r)
	}
}

// splitsAround returns a valid split set for a layout (res, depth) around p:
// p's shard cell and some of its neighbors split, and some of their
// children split again, down to the deepest allowed level.
func splitsAround(r *rand.Rand, p geo.LatLng, res, depth int) []Cell {
	if depth == 0 {
		return nil
	}
	var out []Cell
	var grow func(c Cell)
	grow = func(c Cell) {
		out = append(out, c)
		cr := Resolution(c)
		if cr+1 >= res+depth {
			return
		}
		for _, ch := range c.Children(cr + 1) {
			if r.IntN(3) == 0 {
				grow(ch)
			}
		}
	}
	c := h3.LatLngToCell(toH3(p), res)
	for _, n := range c.GridDisk(1) {
		if n != 0 && (n == c || r.IntN(2) == 0) {
			grow(n)
		}
	}
	return out
}

// mustLayout builds a layout or fails the test.
func mustLayout(t testing.TB, res, depth int, splits []Cell) *Layout {
	t.Helper()
	l, err := NewLayout(res, depth, splits)
	if err != nil {
		t.Fatalf("NewLayout(%d, %d, %d splits): %v", res, depth, len(splits), err)
	}
	return l
}

// mustMap builds a map or fails the test.
func mustMap(t testing.TB, d Doc) *Map {
	t.Helper()
	m, err := NewMap(d)
	if err != nil {
		t.Fatalf("NewMap: %v", err)
	}
	return m
}

// members returns n members m00, m01, ... of weight 1.
func members(n int) []Member {
	ms := make([]Member, n)
	for i := range ms {
		ms[i] = Member{ID: memberID(i), Addr: "10.0.0." + string(rune('0'+i%10)) + ":7000"}
	}
	return ms
}

func memberID(i int) string {
	return "m" + string(rune('0'+i/10)) + string(rune('0'+i%10))
}

// nycCells returns the cells at res of the New York box.
func nycCells(res int) []Cell {
	loop := h3.GeoLoop{
		{Lat: nycMinLat, Lng: nycMinLng}, {Lat: nycMinLat, Lng: nycMaxLng},
		{Lat: nycMaxLat, Lng: nycMaxLng}, {Lat: nycMaxLat, Lng: nycMinLng},
	}
	return h3.PolygonToCells(h3.GeoPolygon{GeoLoop: loop}, res)
}

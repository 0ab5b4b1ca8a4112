package city

import (
	"fmt"
	"math"
	"strconv"
	"strings"

	"github.com/geomatch/geomatch/internal/geo"
)

// Zone kinds.
const (
	ZoneDistrict = "district"
	ZoneAirport  = "airport"
	ZoneStadium  = "stadium"
	ZonePark     = "park"
	ZoneStation  = "station"
	ZoneMall     = "mall"
)

// Zone is a named area of a city: a district, the airport, a stadium. It
// is a polygon (Rings) or a circle (Center and RadiusM).
type Zone struct {
	// ID is short, unique among the city's zones and made of letters,
	// digits and "-" (usable in a fence id).
	ID string
	// Name is what reports show; Kind is one of the Zone* kinds.
	Name, Kind string
	// Rings are a polygon's exterior ring followed by its holes, each
	// closed (the last position repeats the first); nil for a circle.
	Rings [][]geo.LatLng
	// Center and RadiusM are a circle's (RadiusM is 0 for a polygon).
	Center  geo.LatLng
	RadiusM float64
}

// IsCircle reports whether the zone is a circle.
func (z Zone) IsCircle() bool { return z.Rings == nil }

// GeoJSON returns a polygon zone as a GeoJSON Polygon geometry (RFC 7946:
// [longitude, latitude] positions, to 1e-7 degrees, about a centimetre);
// "" for a circle. Longitudes are wrapped to [-180, 180): a ring across the
// antimeridian has consecutive positions more than 180° apart, which
// GeoJSON readers of the service join the short way round.
func (z Zone) GeoJSON() string {
	if z.IsCircle() {
		return ""
	}
	var b strings.Builder
	b.WriteString(`{"type":"Polygon","coordinates":[`)
	for i, ring := range z.Rings {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteByte('[')
		for j, p := range ring {
			if j > 0 {
				b.WriteByte(',')
			}
			b.WriteByte('[')
			b.WriteString(strconv.FormatFloat(p.Lng, 'f', 7, 64))
			b.WriteByte(',')
			b.WriteString(strconv.FormatFloat(p.Lat, 'f', 7, 64))
			b.WriteByte(']')
		}
		b.WriteByte(']')
	}
	b.WriteString(`]}`)
	return b.String()
}

// Box is a city's oriented extent: the rectangle along its principal axis
// that holds every intersection. Zones are laid out in its fractions, so
// they follow the city's centre, extent and bearing whatever its shape.
type Box struct {
	// CX, CY is the box's corner at fractions (0, 0), in frame meters.
	CX, CY float64
	// UX, UY is the unit vector along the city's long axis (its northern
	// half-plane: UY > 0, or UX > 0 on an east-west axis); VX, VY the unit
	// vector across it, pointing to the right of U (east of a north-south
	// city).
	UX, UY, VX, VY float64
	// LengthM and WidthM are the box's sides along U and V (LengthM >=
	// WidthM, each at least minBoxSideM).
	LengthM, WidthM float64
}

// Box layout constants.
const (
	// minBoxSideM is the shortest side of a box: a city of one straight
	// road still gets zones of some area.
	minBoxSideM = 200
	// boxPadFrac widens the box on every side by this fraction of its
	// longer side, so the outermost intersections are inside the districts
	// rather than on their edges.
	boxPadFrac = 0.01
)

// CityBox returns g's oriented extent: the principal axis of its
// intersections (the long axis of a grid, whatever its bearing; north for
// a city as wide as it is long) and the rectangle along it that holds
// them all, widened by a margin.
func CityBox(g *Graph) Box {
	n := float64(len(g.Nodes))
	var mx, my float64
	for _, nd := range g.Nodes {
		mx += nd.X
		my += nd.Y
	}
	mx, my = mx/n, my/n
	var sxx, syy, sxy float64
	for _, nd := range g.Nodes {
		dx, dy := nd.X-mx, nd.Y-my
		sxx += dx * dx
		syy += dy * dy
		sxy += dx * dy
	}
	theta := math.Pi / 2 // isotropic: north
	if d := math.Hypot(2*sxy, sxx-syy); d > 1e-9*(sxx+syy) {
		theta = 0.5 * math.Atan2(2*sxy, sxx-syy)
	}
	ux, uy := math.Cos(theta), math.Sin(theta)
	if uy < -1e-12 || (math.Abs(uy) <= 1e-12 && ux < 0) {
		ux, uy = -ux, -uy
	}
	vx, vy := uy, -ux
	minA, maxA, minB, maxB := math.Inf(1), math.Inf(-1), math.Inf(1), math.Inf(-1)
	for _, nd := range g.Nodes {
		dx, dy := nd.X-mx, nd.Y-my
		a, b := dx*ux+dy*uy, dx*vx+dy*vy
		minA, maxA = min(minA, a), max(maxA, a)
		minB, maxB = min(minB, b), max(maxB, b)
	}
	// Short sides grow about their middle to the minimum.
	if l := maxA - minA; l < minBoxSideM {
		minA -= (minBoxSideM - l) / 2
		maxA = minA + minBoxSideM
	}
	if w := maxB - minB; w < minBoxSideM {
		minB -= (minBoxSideM - w) / 2
		maxB = minB + minBoxSideM
	}
	pad := boxPadFrac * max(maxA-minA, maxB-minB)
	minA, maxA, minB, maxB = minA-pad, maxA+pad, minB-pad, maxB+pad
	return Box{
		CX: mx + ux*minA + vx*minB, CY: my + uy*minA + vy*minB,
		UX: ux, UY: uy, VX: vx, VY: vy,
		LengthM: maxA - minA, WidthM: maxB - minB,
	}
}

// XY returns the frame position at fraction fu along the box's length
// (0: its southern end) and fv across it (0: its western side).
func (b Box) XY(fu, fv float64) (x, y float64) {
	a, w := fu*b.LengthM, fv*b.WidthM
	return b.CX + b.UX*a + b.VX*w, b.CY + b.UY*a + b.VY*w
}

// Fractions returns where the frame position x, y lies in the box (the
// inverse of XY); both are within [0, 1] for a point inside.
func (b Box) Fractions(x, y float64) (fu, fv float64) {
	dx, dy := x-b.CX, y-b.CY
	return (dx*b.UX + dy*b.UY) / b.LengthM, (dx*b.VX + dy*b.VY) / b.WidthM
}

// Zone layout: districts tile the box in districtRows bands along its
// length and districtCols across; places sit at fixed fractions, sized by
// the box's width.
const (
	districtRows = 3
	districtCols = 2
	// MaxZones bounds the zones of a city (Zones returns fewer).
	MaxZones = 32
	// Circle radii are these fractions of the box's width, within
	// [minRadiusM, maxRadiusM].
	stadiumRadiusFrac, stationRadiusFrac, mallRadiusFrac = 0.08, 0.06, 0.07
	minRadiusM, maxRadiusM                               = 40, 1500
)

// fuv is a position in box fractions: along, across.
type fuv [2]float64

// parkRing is the park: a hole in the central-west district, and a zone of
// its own.
var parkRing = []fuv{{0.42, 0.12}, {0.42, 0.38}, {0.58, 0.38}, {0.58, 0.12}}

// airportRing is the airport: a hexagon at the southern end, on the east
// side (terminal and apron).
var airportRing = []fuv{{0.02, 0.60}, {0.02, 0.95}, {0.10, 0.95}, {0.13, 0.85}, {0.13, 0.70}, {0.07, 0.60}}

// Zones returns the named zones of g, laid out in its CityBox: six
// districts tiling it (south, central and north, each west and east; the
// central-west one has the park as a hole), the airport and the park as
// polygons, and the stadium, the central station and a mall as circles.
// The same graph always gives the same zones.
func Zones(g *Graph) []Zone {
	box := CityBox(g)
	at := func(p fuv) geo.LatLng { return g.Frame.LatLng(box.XY(p[0], p[1])) }
	ring := func(ps []fuv) []geo.LatLng {
		out := make([]geo.LatLng, 0, len(ps)+1)
		for _, p := range ps {
			out = append(out, at(p))
		}
		return append(out, out[0])
	}
	radius := func(frac float64) float64 {
		return min(max(frac*box.WidthM, minRadiusM), maxRadiusM)
	}
	rows := [districtRows]struct{ id, name string }{{"s", "South"}, {"c", "Central"}, {"n", "North"}}
	cols := [districtCols]struct{ id, name string }{{"w", "west"}, {"e", "east"}}
	var zones []Zone
	for i, r := range rows {
		for j, c := range cols {
			u0, u1 := float64(i)/districtRows, float64(i+1)/districtRows
			v0, v1 := float64(j)/districtCols, float64(j+1)/districtCols
			z := Zone{
				ID: fmt.Sprintf("district-%s%s", r.id, c.id), Name: fmt.Sprintf("%s-%s district", r.name, c.name), Kind: ZoneDistrict,
				Rings: [][]geo.LatLng{ring([]fuv{{u0, v0}, {u1, v0}, {u1, v1}, {u0, v1}})},
			}
			if r.id == "c" && c.id == "w" {
				z.Rings = append(z.Rings, ring(parkRing))
			}
			zones = append(zones, z)
		}
	}
	return append(zones,
		Zone{ID: "airport", Name: "Airport", Kind: ZoneAirport, Rings: [][]geo.LatLng{ring(airportRing)}},
		Zone{ID: "park", Name: "Park", Kind: ZonePark, Rings: [][]geo.LatLng{ring(parkRing)}},
		Zone{ID: "stadium", Name: "Stadium", Kind: ZoneStadium, Center: at(fuv{0.86, 0.30}), RadiusM: radius(stadiumRadiusFrac)},
		Zone{ID: "station", Name: "Central station", Kind: ZoneStation, Center: at(fuv{0.48, 0.70}), RadiusM: radius(stationRadiusFrac)},
		Zone{ID: "mall", Name: "Mall", Kind: ZoneMall, Center: at(fuv{0.22, 0.35}), RadiusM: radius(mallRadiusFrac)},
	)
}

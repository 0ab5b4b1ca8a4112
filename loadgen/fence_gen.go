package loadgen

import (
	"fmt"
	"math"
	"math/rand/v2"
	"strconv"

	geomatchv1 "github.com/geomatch/geomatch/proto/geomatch/v1"
)

// Area is a lat/lng box the fence and trace generators draw positions in.
type Area struct {
	MinLat, MaxLat, MinLng, MaxLng float64
}

// CityArea is the area of the load generator's distributions (New York).
var CityArea = Area{MinLat: minLat, MaxLat: maxLat, MinLng: minLng, MaxLng: maxLng}

// MidtownArea is a box of about 12 km × 12 km around Midtown Manhattan: the
// fence comparison's area, small enough that a random walk of a few
// thousand drivers crosses its fences often.
var MidtownArea = Area{
	MinLat: midtownLat - 6000.0/metersPerDeg, MaxLat: midtownLat + 6000.0/metersPerDeg,
	MinLng: midtownLng - 6000.0/(metersPerDeg*0.7580), MaxLng: midtownLng + 6000.0/(metersPerDeg*0.7580),
}

func (a Area) valid() error {
	if !(a.MinLat < a.MaxLat && a.MinLng < a.MaxLng && a.MinLat >= -80 && a.MaxLat <= 80 && a.MinLng >= -180 && a.MaxLng <= 180) {
		return fmt.Errorf("area %+v: want min < max, latitudes within ±80 and longitudes within ±180", a)
	}
	return nil
}

func (a Area) sample(rng *rand.Rand) point {
	return point{a.MinLat + (a.MaxLat-a.MinLat)*rng.Float64(), a.MinLng + (a.MaxLng-a.MinLng)*rng.Float64()}
}

// FenceShapes describes the fences GenFence draws: even indexes are
// district-like polygons, odd ones circles.
type FenceShapes struct {
	// Area holds the fences' centers.
	Area Area
	// MinVertices..MaxVertices is the range of a polygon's distinct
	// vertices (the closing position not counted); default 50..500.
	MinVertices, MaxVertices int
	// MinAreaM2..MaxAreaM2 is the range of a polygon's area (its exterior
	// ring's, holes not subtracted), in m²; default 0.3..2 km².
	MinAreaM2, MaxAreaM2 float64
	// MinRadiusM..MaxRadiusM is the range of a circle's radius; default
	// 100 m..2 km.
	MinRadiusM, MaxRadiusM float64
	// HoleEvery, when > 0, gives every HoleEvery-th polygon a hole (a
	// smaller star around the same center); default 0, no holes.
	HoleEvery int
}

// DefaultFenceShapes is the fence mix of the fence phases over area.
func DefaultFenceShapes(area Area) FenceShapes {
	return FenceShapes{Area: area, MinVertices: 50, MaxVertices: 500,
		MinAreaM2: 0.3e6, MaxAreaM2: 2e6, MinRadiusM: 100, MaxRadiusM: 2000}
}

// Validate reports a shape range that cannot be drawn from.
func (s FenceShapes) Validate() error {
	switch {
	case s.Area.valid() != nil:
		return s.Area.valid()
	case s.MinVertices < 8 || s.MaxVertices < s.MinVertices || s.MaxVertices > 5000:
		// 8 vertices keep every angle step under π, so a polygon holds its
		// center and a hole fits.
		return fmt.Errorf("vertices %d..%d: want 8 <= min <= max <= 5000", s.MinVertices, s.MaxVertices)
	case !(s.MinAreaM2 > 0 && s.MaxAreaM2 >= s.MinAreaM2 && s.MaxAreaM2 <= 1e10):
		return fmt.Errorf("polygon area %v..%v m²: want 0 < min <= max <= 1e10", s.MinAreaM2, s.MaxAreaM2)
	case !(s.MinRadiusM > 0 && s.MaxRadiusM >= s.MinRadiusM && s.MaxRadiusM <= 100_000):
		return fmt.Errorf("circle radius %v..%v m: want 0 < min <= max <= 100 km", s.MinRadiusM, s.MaxRadiusM)
	case s.HoleEvery < 0:
		return fmt.Errorf("hole every %d: want >= 0", s.HoleEvery)
	}
	return nil
}

// GenFence returns fence i of the deterministic sequence of seed: the same
// (seed, variant, i) always gives the same fence, whatever else is drawn.
// Even i is a GeoJSON Polygon, odd i a Circle; variant > 0 draws a different
// shape for the same id (a replacement). id and set name the fence.
func GenFence(s FenceShapes, seed, variant uint64, i int, id, set string) *geomatchv1.Fence {
	rng := rand.New(rand.NewPCG(seed^0x6a09e667f3bcc908, uint64(i)<<8|variant&0xff))
	f := &geomatchv1.Fence{FenceId: id, Set: set}
	c := s.Area.sample(rng)
	if i%2 == 1 {
		r := s.MinRadiusM + (s.MaxRadiusM-s.MinRadiusM)*rng.Float64()
		f.Shape = &geomatchv1.Fence_Circle{Circle: &geomatchv1.Circle{Center: &geomatchv1.LatLng{Lat: c.lat, Lng: c.lng}, RadiusM: r}}
		return f
	}
	nv := s.MinVertices + rng.IntN(s.MaxVertices-s.MinVertices+1)
	area := s.MinAreaM2 + (s.MaxAreaM2-s.MinAreaM2)*rng.Float64()
	hole := s.HoleEvery > 0 && (i/2)%s.HoleEvery == 0
	f.Shape = &geomatchv1.Fence_Geojson{Geojson: starPolygon(rng, c, nv, area, hole)}
	return f
}

// starPolygon draws a polygon of nv vertices star-shaped around c (so
// simple: the vertices' angles strictly increase around c and their
// radii are positive) with an exterior of areaM2, its outline a sum of a
// few random harmonics plus per-vertex noise, like a district's. With
// hole, it has a hole: a 24-vertex star around c well inside the
// exterior's smallest radius. The result is a GeoJSON Polygon whose
// coordinates print exactly (strconv 'g' -1) so every consumer parses the
// same float64 values.
func starPolygon(rng *rand.Rand, c point, nv int, areaM2 float64, hole bool) string {
	const harmonics = 4
	var amp, phase [harmonics]float64
	for j := range amp {
		amp[j] = rng.Float64() * 0.25 / float64(j+1)
		phase[j] = 2 * math.Pi * rng.Float64()
	}
	theta := make([]float64, nv)
	rad := make([]float64, nv)
	for k := range theta {
		// Angles strictly increase within (0, 2π): k+0.1 .. k+0.9 of a step.
		theta[k] = 2 * math.Pi * (float64(k) + 0.1 + 0.8*rng.Float64()) / float64(nv)
		r := 1.0
		for j := range amp {
			r += amp[j] * math.Cos(float64(j+1)*theta[k]+phase[j])
		}
		// Harmonics take at most 0.52 off, noise 0.05: r >= 0.43.
		rad[k] = r * (1 + 0.05*(2*rng.Float64()-1))
	}
	// The area of the unit outline, then the scale that gives areaM2.
	var a1 float64
	for k := range theta {
		k2 := (k + 1) % nv
		x1, y1 := rad[k]*math.Cos(theta[k]), rad[k]*math.Sin(theta[k])
		x2, y2 := rad[k2]*math.Cos(theta[k2]), rad[k2]*math.Sin(theta[k2])
		a1 += x1*y2 - x2*y1
	}
	scale := math.Sqrt(areaM2 / (a1 / 2))
	mPerLng := metersPerDeg * math.Cos(c.lat*math.Pi/180)
	buf := make([]byte, 0, 48*(nv+30))
	buf = append(buf, `{"type":"Polygon","coordinates":[`...)
	ring := func(n int, at func(k int) (x, y float64)) {
		buf = append(buf, '[')
		for k := 0; k <= n; k++ {
			x, y := at(k % n)
			if k > 0 {
				buf = append(buf, ',')
			}
			buf = append(buf, '[')
			buf = strconv.AppendFloat(buf, c.lng+x/mPerLng, 'g', -1, 64)
			buf = append(buf, ',')
			buf = strconv.AppendFloat(buf, c.lat+y/metersPerDeg, 'g', -1, 64)
			buf = append(buf, ']')
		}
		buf = append(buf, ']')
	}
	ring(nv, func(k int) (float64, float64) {
		return scale * rad[k] * math.Cos(theta[k]), scale * rad[k] * math.Sin(theta[k])
	})
	if hole {
		minR := math.Inf(1)
		for _, r := range rad {
			minR = math.Min(minR, r)
		}
		// With >= 8 vertices an angle step is at most 2π·1.6/8; an edge of
		// the exterior passes no closer to c than minR·cos(step/2) >=
		// 0.8·minR, and the hole stays within 0.3·minR·1.1.
		const hv = 24
		hr := 0.3 * minR * scale
		buf = append(buf, ',')
		ring(hv, func(k int) (float64, float64) {
			t := -2 * math.Pi * float64(k) / hv // clockwise, as RFC 7946 wants holes
			r := hr * (1 + 0.1*math.Sin(3*t))
			return r * math.Cos(t), r * math.Sin(t)
		})
	}
	buf = append(buf, "]}"...)
	return string(buf)
}

// Trace is a deterministic replay: Steps[s][d] is driver d's position at
// step s. Every driver moves at every step.
type Trace struct {
	// Prefix is the drivers' ids' common prefix, before their number.
	Prefix string
	IDs    []string
	Steps  [][]point
}

// Bounds of a trace.
const (
	// MaxTracePoints bounds drivers × steps (16 bytes a position).
	MaxTracePoints = 20_000_000
)

// GenTrace draws drivers random walks of steps positions each over area:
// uniform starts, then steps of up to stepM meters in each axis, reflected
// at the area's edges (not clamped, so no two positions of a walk
// coincide by construction). ids are prefix plus the driver's number. The
// same arguments give the same trace.
func GenTrace(area Area, seed uint64, drivers, steps int, stepM float64, prefix string) (*Trace, error) {
	if err := area.valid(); err != nil {
		return nil, err
	}
	if drivers < 1 || steps < 1 || drivers*steps > MaxTracePoints {
		return nil, fmt.Errorf("trace of %d drivers × %d steps: want both >= 1 and at most %d positions", drivers, steps, MaxTracePoints)
	}
	if !(stepM > 0 && stepM < 10_000) {
		return nil, fmt.Errorf("trace step %v m: want (0, 10 km)", stepM)
	}
	rng := rand.New(rand.NewPCG(seed^0xbb67ae8584caa73b, 0x3c6ef372fe94f82b))
	tr := &Trace{Prefix: prefix, IDs: make([]string, drivers), Steps: make([][]point, steps)}
	for d := range tr.IDs {
		tr.IDs[d] = fmt.Sprintf("%s%06d", prefix, d)
	}
	midLat := (area.MinLat + area.MaxLat) / 2
	dLat := stepM / metersPerDeg
	dLng := stepM / (metersPerDeg * math.Cos(midLat*math.Pi/180))
	for s := range tr.Steps {
		tr.Steps[s] = make([]point, drivers)
		for d := range tr.Steps[s] {
			if s == 0 {
				tr.Steps[s][d] = area.sample(rng)
				continue
			}
			p := tr.Steps[s-1][d]
			tr.Steps[s][d] = point{
				lat: reflect(p.lat+dLat*(2*rng.Float64()-1), area.MinLat, area.MaxLat),
				lng: reflect(p.lng+dLng*(2*rng.Float64()-1), area.MinLng, area.MaxLng),
			}
		}
	}
	return tr, nil
}

// reflect folds v back into [lo, hi] at the edge it passed.
func reflect(v, lo, hi float64) float64 {
	switch {
	case v < lo:
		return math.Min(hi, 2*lo-v)
	case v > hi:
		return math.Max(lo, 2*hi-v)
	}
	return v
}

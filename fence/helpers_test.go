package fence

import (
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/uber/h3-go/v4"

	"github.com/geomatch/geomatch/internal/geo"
)

func newRand(seed uint64) *rand.Rand { return rand.New(rand.NewPCG(seed, 0xfe11ce)) }

// region is where a property test puts its fences and points.
type region struct {
	name       string
	lat, lng   float64 // center
	dLat, dLng float64 // half-extent of the area, degrees
	sizeM      float64 // typical fence radius, meters
}

var regions = []region{
	{"city", 40.75, -73.98, 0.14, 0.18, 800},
	{"north pole", 88.5, 0, 1.2, 180, 20000},
	{"south pole", -88.8, 0, 1.0, 180, 15000},
	{"antimeridian", -17.5, 180, 0.3, 0.4, 3000},
	{"pentagon", pentagonLat(), pentagonLng(), 0.05, 0.05, 400},
}

func pentagonCenter() geo.LatLng { return cellCenter(h3.Pentagons(9)[3]) }
func pentagonLat() float64       { return pentagonCenter().Lat }
func pentagonLng() float64       { return pentagonCenter().Lng }

// point returns a random point of the region (normalized longitude).
func (rg region) point(r *rand.Rand) geo.LatLng {
	lat := rg.lat + rg.dLat*(2*r.Float64()-1)
	lat = math.Max(-90, math.Min(90, lat))
	return geo.LatLng{Lat: lat, Lng: normLng(rg.lng + rg.dLng*(2*r.Float64()-1))}
}

// starRing returns a closed ring star-shaped around (lng, lat) in degree
// space, radii in [rmin, rmax] degrees of latitude (longitude scaled by
// lngScale), as GeoJSON positions. When wrap, longitudes are normalized to
// [-180, 180) (so rings across the antimeridian jump).
func starRing(r *rand.Rand, lng, lat float64, n int, rmin, rmax, lngScale float64, wrap, reverse bool) [][2]float64 {
	angles := make([]float64, n)
	for i := range angles {
		angles[i] = 2 * math.Pi * (float64(i) + 0.8*r.Float64()) / float64(n)
	}
	ring := make([][2]float64, 0, n+1)
	for _, a := range angles {
		rad := rmin + (rmax-rmin)*r.Float64()
		x := lng + rad*math.Sin(a)*lngScale
		y := lat + rad*math.Cos(a)
		y = math.Max(-89.999, math.Min(89.999, y))
		if wrap {
			x = normLng(x)
		}
		ring = append(ring, [2]float64{x, y})
	}
	if reverse {
		slices.Reverse(ring)
	}
	return append(ring, ring[0])
}

func ringJSON(ring [][2]float64) string {
	var b strings.Builder
	b.WriteByte('[')
	for i, p := range ring {
		if i > 0 {
			b.WriteByte(',')
		}
		fmt.Fprintf(&b, "[%v,%v]", p[0], p[1])
	}
	b.WriteByte(']')
	return b.String()
}

// randomPolygon returns the GeoJSON of a random star-shaped polygon (maybe
// with a hole, maybe a MultiPolygon of two) of radius about sizeM around
// c, with n vertices in its exterior.
func randomPolygon(r *rand.Rand, c geo.LatLng, sizeM float64, n int) string {
	lngScale := 1 / math.Max(math.Cos(c.Lat*degToRad), 0.02)
	deg := sizeM / 111195.0
	// Keep clear of the poles: the star must not reach beyond ±89.999.
	if maxDeg := (89.99 - math.Abs(c.Lat)) / 1.3; deg > maxDeg {
		deg = maxDeg
	}
	if deg*lngScale > 60 {
		lngScale = 60 / deg
	}
	wrap := r.IntN(2) == 0
	poly := func(lng, lat float64) string {
		rings := []string{ringJSON(starRing(r, lng, lat, n, 0.6*deg, 1.3*deg, lngScale, wrap, r.IntN(2) == 0))}
		if n >= 5 && r.IntN(3) == 0 {
			// The exterior's edges stay farther from the center than
			// 0.6*cos(half the widest angle between vertices).
			hmax := 0.6 * deg * math.Cos(math.Pi*1.8/float64(n)) * 0.9
			rings = append(rings, ringJSON(starRing(r, lng, lat, 3+r.IntN(12), 0.2*hmax, hmax, lngScale, wrap, r.IntN(2) == 0)))
		}
		return "[" + strings.Join(rings, ",") + "]"
	}
	if r.IntN(5) == 0 {
		other := c.Lng + 3*deg*lngScale
		return fmt.Sprintf(`{"type":"MultiPolygon","coordinates":[%s,%s]}`, poly(c.Lng, c.Lat), poly(other, c.Lat))
	}
	return fmt.Sprintf(`{"type":"Polygon","coordinates":%s}`, poly(c.Lng, c.Lat))
}

// randomFences returns n random fences (polygons and circles) of the region.
func randomFences(t testing.TB, r *rand.Rand, rg region, n int) []*Fence {
	t.Helper()
	var out []*Fence
	classes := []string{"", "", "", "car", "bike"}
	for i := 0; len(out) < n; i++ {
		c := rg.point(r)
		size := rg.sizeM * (0.2 + 1.6*r.Float64())
		var s Shape
		var err error
		if r.IntN(2) == 0 {
			s, err = NewCircle(c, size)
		} else {
			s, err = ParseGeoJSON(randomPolygon(r, c, size, 3+r.IntN(60)))
		}
		if err != nil {
			t.Fatalf("fence %d: %v", i, err)
		}
		out = append(out, &Fence{
			ID: fmt.Sprintf("%s-%04d", rg.name, i), Set: []string{"a", "b"}[r.IntN(2)],
			Shape: s, Detect: Detect(r.IntN(16)), VehicleClass: classes[r.IntN(len(classes))],
		})
	}
	return out
}

// probePoints returns points near the fences: random ones, vertices and
// edge points of polygons, points near circle edges and cell centers.
func probePoints(r *rand.Rand, rg region, fences []*Fence, n int) []geo.LatLng {
	var out []geo.LatLng
	for len(out) < n {
		f := fences[r.IntN(len(fences))]
		switch r.IntN(4) {
		case 0:
			out = append(out, rg.point(r))
		case 1: // on or near the boundary
			var pts []geo.LatLng
			f.Shape.trace(1e9, func(p geo.LatLng) bool { pts = append(pts, p); return true })
			p := pts[r.IntN(len(pts))]
			if r.IntN(2) == 0 {
				p.Lat += (2*r.Float64() - 1) * 1e-4
				p.Lng = normLng(p.Lng + (2*r.Float64()-1)*1e-4)
			}
			out = append(out, clampLat(p))
		case 2: // in the fence's box
			b := f.Shape.Bound()
			p := geo.LatLng{Lat: b.MinLat + (b.MaxLat-b.MinLat)*r.Float64(), Lng: normLng(b.MinLng + (b.MaxLng-b.MinLng)*r.Float64())}
			out = append(out, clampLat(p))
		case 3: // a cell center
			p := rg.point(r)
			out = append(out, cellCenter(h3.LatLngToCell(h3.LatLng{Lat: p.Lat, Lng: p.Lng}, 9)))
		}
	}
	return out
}

func clampLat(p geo.LatLng) geo.LatLng {
	p.Lat = math.Max(-90, math.Min(90, p.Lat))
	return p
}

func cellAt(p geo.LatLng, res int) h3.Cell {
	return h3.LatLngToCell(h3.LatLng{Lat: p.Lat, Lng: p.Lng}, res)
}

// hit is one reported transition.
type hit struct {
	id string
	t  Transition
}

func sortHits(h []hit) []hit {
	slices.SortFunc(h, func(a, b hit) int {
		if c := strings.Compare(a.id, b.id); c != 0 {
			return c
		}
		return int(a.t) - int(b.t)
	})
	return h
}

// bruteTransitions is the oracle: Eval over every fence.
func bruteTransitions(fences []*Fence, prev *geo.LatLng, cur geo.LatLng, class string) []hit {
	var out []hit
	for _, f := range fences {
		if t, ok := f.Eval(prev, cur, class); ok {
			out = append(out, hit{f.ID, t})
		}
	}
	return sortHits(out)
}

func indexTransitions(ix *Index, prev *geo.LatLng, prevCell h3.Cell, cur geo.LatLng, curCell h3.Cell, class string) []hit {
	var out []hit
	ix.Transitions(prev, prevCell, cur, curCell, class, func(f *Fence, t Transition) { out = append(out, hit{f.ID, t}) })
	return sortHits(out)
}

func bruteContaining(fences []*Fence, p geo.LatLng) []string {
	var out []string
	for _, f := range fences {
		if p.Validate() == nil && f.Shape.Contains(p) {
			out = append(out, f.ID)
		}
	}
	slices.Sort(out)
	return out
}

func indexContaining(ix *Index, p geo.LatLng, cell h3.Cell) []string {
	var out []string
	ix.Containing(p, cell, func(f *Fence) { out = append(out, f.ID) })
	slices.Sort(out)
	return out
}

func sin(x float64) float64 { return math.Sin(x) }
func cos(x float64) float64 { return math.Cos(x) }
func nowNano() int64        { return time.Now().UnixNano() }

// spiral returns a simple ring of n vertices: a thick spiral arm of a few
// turns, whose edges overlap along both axes.
func spiral(n int) [][2]float64 {
	half := n / 2
	turns := 5.0
	out := make([][2]float64, 0, n)
	for i := range half {
		a := turns * 2 * math.Pi * float64(i) / float64(half)
		r := 0.1 + a*0.01
		out = append(out, [2]float64{r * math.Cos(a), r * math.Sin(a)})
	}
	for i := half - 1; i >= 0; i-- {
		a := turns * 2 * math.Pi * float64(i) / float64(half)
		r := 0.1 + a*0.01 + 0.03
		out = append(out, [2]float64{r * math.Cos(a), r * math.Sin(a)})
	}
	return out
}

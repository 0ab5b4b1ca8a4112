package fence

import (
	"fmt"
	"math"
	"math/rand/v2"
	"runtime"
	"testing"

	"github.com/uber/h3-go/v4"

	"github.com/geomatch/geomatch/internal/geo"
)

// The benchmark city: 30 x 30 km around Manhattan.
const (
	benchLat, benchLng = 40.75, -73.98
	benchHalfLatDeg    = 15000 / 111195.0
)

var benchHalfLngDeg = benchHalfLatDeg / math.Cos(benchLat*degToRad)

func benchPoint(r *rand.Rand) geo.LatLng {
	return geo.LatLng{
		Lat: benchLat + benchHalfLatDeg*(2*r.Float64()-1),
		Lng: benchLng + benchHalfLngDeg*(2*r.Float64()-1),
	}
}

// smoothPolygon returns the GeoJSON of a polygon of about areaM2 with n
// vertices whose outline wobbles smoothly, like a drawn neighborhood.
func smoothPolygon(r *rand.Rand, c geo.LatLng, areaM2 float64, n int) string {
	base := math.Sqrt(areaM2/math.Pi) / 111195.0
	lngScale := 1 / math.Cos(c.Lat*degToRad)
	k1, k2 := 2+r.IntN(4), 5+r.IntN(6)
	p1, p2 := 2*math.Pi*r.Float64(), 2*math.Pi*r.Float64()
	ring := make([][2]float64, 0, n+1)
	for i := range n {
		a := 2 * math.Pi * float64(i) / float64(n)
		rad := base * (1 + 0.2*math.Sin(float64(k1)*a+p1) + 0.07*math.Sin(float64(k2)*a+p2) + 0.01*r.Float64())
		ring = append(ring, [2]float64{c.Lng + rad*math.Sin(a)*lngScale, c.Lat + rad*math.Cos(a)})
	}
	ring = append(ring, ring[0])
	return fmt.Sprintf(`{"type":"Polygon","coordinates":[%s]}`, ringJSON(ring))
}

// benchFences returns nPoly polygons of 50..500 vertices and about 1 km²
// and nCircle circles of 100 m..2 km, over the city. One fence in ten
// detects every transition (Cross included), the rest enter and exit;
// one in ten is for cars only.
func benchFences(b testing.TB, r *rand.Rand, nPoly, nCircle int) []*Fence {
	b.Helper()
	fences := make([]*Fence, 0, nPoly+nCircle)
	for i := range nPoly + nCircle {
		var s Shape
		var err error
		if i < nPoly {
			s, err = ParseGeoJSON(smoothPolygon(r, benchPoint(r), 1e6*(0.5+r.Float64()), 50+r.IntN(451)))
		} else {
			s, err = NewCircle(benchPoint(r), 100+1900*r.Float64())
		}
		if err != nil {
			b.Fatal(err)
		}
		f := &Fence{ID: fmt.Sprintf("f%05d", i), Set: "bench", Shape: s}
		if i%10 == 0 {
			f.Detect = DetectEnter | DetectExit | DetectInside | DetectCross
		}
		if i%10 == 3 {
			f.VehicleClass = "car"
		}
		fences = append(fences, f)
	}
	return fences
}

// benchMoves returns driver updates: a position and the next one 5..50 m
// further, with their res 9 cells.
type benchMove struct {
	prev, cur         geo.LatLng
	prevCell, curCell h3.Cell
}

func benchMoves(r *rand.Rand, n int) []benchMove {
	moves := make([]benchMove, n)
	for i := range moves {
		p := benchPoint(r)
		c := destination(p, 2*math.Pi*r.Float64(), (5+45*r.Float64())/geo.EarthRadiusM)
		moves[i] = benchMove{prev: p, cur: c, prevCell: cellAt(p, 9), curCell: cellAt(c, 9)}
	}
	return moves
}

var benchIndex *Index

// benchCity builds (once) the index of 10k polygons and 10k circles.
func benchCity(b *testing.B) *Index {
	if benchIndex != nil {
		return benchIndex
	}
	r := newRand(1)
	var start, before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&start)
	fences := benchFences(b, r, 10000, 10000)
	runtime.GC()
	runtime.ReadMemStats(&before)
	ix, err := NewIndex(9)
	if err != nil {
		b.Fatal(err)
	}
	for _, f := range fences {
		if err := ix.Put(f); err != nil {
			b.Fatal(err)
		}
	}
	runtime.GC()
	runtime.ReadMemStats(&after)
	var entries, mixed int
	for _, l := range ix.cells {
		entries += len(l.entries)
		for _, e := range l.entries {
			if e.in != microAllIn {
				mixed++
			}
		}
	}
	b.Logf("%d fences: shapes %.1f MB, index %.1f MB more; %d cell entries (%d with a boundary) in %d cells",
		ix.Len(), float64(before.HeapAlloc-start.HeapAlloc)/1e6, float64(after.HeapAlloc-before.HeapAlloc)/1e6, entries, mixed, len(ix.cells))
	benchIndex = ix
	return ix
}

// BenchmarkTransitions measures one driver update (a 5..50 m move) against
// 20k fences. Budget: a few µs, no allocation.
func BenchmarkTransitions(b *testing.B) {
	ix := benchCity(b)
	moves := benchMoves(newRand(2), 1<<14)
	n := 0
	fn := func(*Fence, Transition) { n++ }
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		m := &moves[i&(len(moves)-1)]
		ix.Transitions(&m.prev, m.prevCell, m.cur, m.curCell, "car", fn)
	}
	b.ReportMetric(float64(n)/float64(b.N), "events/op")
}

// BenchmarkMoves is BenchmarkTransitions for Index.Moves, what matchers
// call.
func BenchmarkMoves(b *testing.B) {
	ix := benchCity(b)
	moves := benchMoves(newRand(2), 1<<14)
	n := 0
	fn := func(*Fence, bool, bool) { n++ }
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		m := &moves[i&(len(moves)-1)]
		ix.Moves(&m.prev, m.prevCell, m.cur, m.curCell, "car", fn)
	}
	b.ReportMetric(float64(n)/float64(b.N), "fences/op")
}

// BenchmarkContaining measures one point lookup against 20k fences.
func BenchmarkContaining(b *testing.B) {
	ix := benchCity(b)
	moves := benchMoves(newRand(3), 1<<14)
	n := 0
	fn := func(*Fence) { n++ }
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		m := &moves[i&(len(moves)-1)]
		ix.Containing(m.cur, m.curCell, fn)
	}
	b.ReportMetric(float64(n)/float64(b.N), "fences/op")
}

// BenchmarkPut measures putting a polygon (50..500 vertices, about 1 km²)
// or a circle (100 m..2 km) into an index; the fences/s metric is the put
// rate. Target: at least 5k polygons/s.
func BenchmarkPut(b *testing.B) {
	for _, kind := range []string{"polygon", "circle"} {
		b.Run(kind, func(b *testing.B) {
			r := newRand(4)
			var fences []*Fence
			if kind == "polygon" {
				fences = benchFences(b, r, 2000, 0)
			} else {
				fences = benchFences(b, r, 0, 2000)
			}
			ix, _ := NewIndex(9)
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; b.Loop(); i++ {
				if err := ix.Put(fences[i%len(fences)]); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "fences/s")
		})
	}
}

// BenchmarkParseGeoJSON measures parsing and validating a polygon of 500
// vertices.
func BenchmarkParseGeoJSON(b *testing.B) {
	s := smoothPolygon(newRand(5), geo.LatLng{Lat: benchLat, Lng: benchLng}, 1e6, 500)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := ParseGeoJSON(s); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkDecodeShape measures rebuilding a polygon of 500 vertices from
// its binary form, what a matcher does instead of BenchmarkParseGeoJSON.
func BenchmarkDecodeShape(b *testing.B) {
	pg, err := ParseGeoJSON(smoothPolygon(newRand(5), geo.LatLng{Lat: benchLat, Lng: benchLng}, 1e6, 500))
	if err != nil {
		b.Fatal(err)
	}
	data := AppendShape(nil, pg)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := DecodeShape(data); err != nil {
			b.Fatal(err)
		}
	}
}

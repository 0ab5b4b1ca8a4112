package shardmap

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/uber/h3-go/v4"
)

// spherePoint is a point uniform on the sphere.
func spherePoint(r *rand.Rand) (lat, lng float64) {
	return math.Asin(2*r.Float64()-1) * 180 / math.Pi, 360*r.Float64() - 180
}

// TestLocatorAgreesWithH3 is the locator's property: its answer is always
// h3.LatLngToCell's. Points come in clusters (drivers a few metres apart,
// as they report), so most answers take the fast path, around centers
// uniform on the sphere (every icosahedron face and edge), at the poles,
// along the antimeridian, and in a city; at the resolutions fine cells use.
func TestLocatorAgreesWithH3(t *testing.T) {
	r := rand.New(rand.NewPCG(7, 11))
	type area struct {
		name   string
		center func() (float64, float64)
	}
	areas := []area{
		{"sphere", func() (float64, float64) { return spherePoint(r) }},
		{"north-pole", func() (float64, float64) { return 89.9 + 0.1*r.Float64(), 360*r.Float64() - 180 }},
		{"south-pole", func() (float64, float64) { return -90 + 0.1*r.Float64(), 360*r.Float64() - 180 }},
		{"antimeridian", func() (float64, float64) { return 180*r.Float64() - 90, 179.99 + 0.02*r.Float64() }},
		{"new-york", func() (float64, float64) { return 40.55 + 0.4*r.Float64(), -74.10 + 0.4*r.Float64() }},
	}
	// Enough points per cluster to warm its squares (a few hundred
	// squares of half an edge, a few cells each), as a fleet's load does.
	clusters, perCluster := 40, 3000
	if testing.Short() {
		clusters = 10
	}
	for _, res := range []int{5, 9, 10, 12} {
		l := newLocator(res)
		fast, total := 0, 0
		for _, a := range areas {
			for range clusters {
				clat, clng := a.center()
				// Spread of a few cell sizes, so clusters cross edges.
				spread := 3 * h3EdgeDeg(res)
				for range perCluster {
					lat := math.Max(-90, math.Min(90, clat+spread*(2*r.Float64()-1)))
					lng := clng + spread*(2*r.Float64()-1)
					if lng > 180 {
						lng -= 360
					} else if lng < -180 {
						lng += 360
					}
					want := h3.LatLngToCell(h3.LatLng{Lat: lat, Lng: lng}, res)
					if l.fastHit(lat, lng) {
						fast++
					}
					total++
					if got := l.cell(lat, lng); got != want {
						t.Fatalf("res %d, %s: locator says %v for (%v, %v), H3 says %v", res, a.name, got, lat, lng, want)
					}
				}
			}
		}
		t.Logf("res %d: %d points, %.1f%% answered without H3", res, total, 100*float64(fast)/float64(total))
		if fast < total/2 {
			t.Errorf("res %d: only %d of %d points took the fast path", res, fast, total)
		}
	}
}

// fastHit reports whether cell would answer (lat, lng) without H3.
func (l *locator) fastHit(lat, lng float64) bool {
	s, key := l.square(lat, lng)
	if s.key.Load() != key {
		return false
	}
	for i := range s.cands {
		if p := s.cands[i].Load(); p != nil && p.contains(unitVector(lat, lng)) {
			return true
		}
	}
	return false
}

// h3EdgeDeg is about the edge of a cell at res, in degrees of latitude.
func h3EdgeDeg(res int) float64 {
	km := h3.HexagonEdgeLengthAvgKm(res)
	return km / 111
}

// TestLocatorHasNoFastPathForPentagons: pentagons always go to H3.
func TestLocatorHasNoFastPathForPentagons(t *testing.T) {
	for _, p := range h3.Pentagons(9) {
		if newCellPoly(p).fast {
			t.Fatalf("pentagon %v has a fast path", p)
		}
	}
}

// FuzzLocator: for any valid position, twice (the second answer may take
// the fast path), the locator agrees with H3.
func FuzzLocator(f *testing.F) {
	f.Add(40.758, -73.9855, uint8(9))
	f.Add(90.0, 0.0, uint8(9))
	f.Add(-89.99999, 179.99999, uint8(12))
	f.Add(-16.8, 179.999, uint8(8))
	l := [h3.MaxResolution + 1]*locator{}
	f.Fuzz(func(t *testing.T, lat, lng float64, res uint8) {
		if math.IsNaN(lat) || math.IsNaN(lng) || lat < -90 || lat > 90 || lng < -180 || lng > 180 {
			return
		}
		r := int(res % (h3.MaxResolution + 1))
		if l[r] == nil {
			l[r] = newLocator(r)
		}
		want := h3.LatLngToCell(h3.LatLng{Lat: lat, Lng: lng}, r)
		for range 2 {
			if got := l[r].cell(lat, lng); got != want {
				t.Fatalf("res %d: locator says %v for (%v, %v), H3 says %v", r, got, lat, lng, want)
			}
		}
	})
}

// BenchmarkFineCell: a fine cell for a driver a few metres from its last
// report, through the locator and through H3 alone.
func BenchmarkFineCell(b *testing.B) {
	r := rand.New(rand.NewPCG(1, 2))
	pts := make([][2]float64, 1<<16)
	for i := range pts {
		pts[i] = [2]float64{40.55 + 0.4*r.Float64(), -74.10 + 0.4*r.Float64()}
	}
	b.Run("locator", func(b *testing.B) {
		l := newLocator(9)
		for _, p := range pts {
			l.cell(p[0], p[1])
		}
		b.ReportAllocs()
		i := 0
		for b.Loop() {
			p := pts[i&(len(pts)-1)]
			l.cell(p[0]+1e-6, p[1]+1e-6)
			i++
		}
	})
	b.Run("h3", func(b *testing.B) {
		b.ReportAllocs()
		i := 0
		for b.Loop() {
			p := pts[i&(len(pts)-1)]
			h3.LatLngToCell(h3.LatLng{Lat: p[0] + 1e-6, Lng: p[1] + 1e-6}, 9)
			i++
		}
	})
}

// TestLocatorConcurrent: goroutines that share squares (and rewrite them
// as they find new cells) still always get H3's answer. Run with -race.
func TestLocatorConcurrent(t *testing.T) {
	l := newLocator(9)
	done := make(chan error, 4)
	for g := range 4 {
		go func() {
			r := rand.New(rand.NewPCG(uint64(g), 3))
			for range 20000 {
				lat, lng := 40.75+0.01*r.Float64(), -73.99+0.01*r.Float64()
				want := h3.LatLngToCell(h3.LatLng{Lat: lat, Lng: lng}, 9)
				if got := l.cell(lat, lng); got != want {
					done <- fmt.Errorf("locator says %v for (%v, %v), H3 says %v", got, lat, lng, want)
					return
				}
			}
			done <- nil
		}()
	}
	for range 4 {
		if err := <-done; err != nil {
			t.Fatal(err)
		}
	}
}

// TestLocatorWarmCityStaysInGo: once a city-wide fleet has been through
// it, the locator answers nearly every new position of that city without
// H3 (a cgo call): New York at resolution 9, the fine cells of
// resolution-7 shards split twice. With squares of half an edge the table
// overfilled and 31% went to H3.
func TestLocatorWarmCityStaysInGo(t *testing.T) {
	l := newLocator(9)
	r := rand.New(rand.NewPCG(1, 2))
	city := func() (float64, float64) { return 40.55 + 0.4*r.Float64(), -74.25 + 0.55*r.Float64() }
	warm, probes := 1_000_000, 50_000
	if testing.Short() {
		warm, probes = 400_000, 10_000
	}
	for range warm {
		l.cell(city())
	}
	toH3 := 0
	for range probes {
		lat, lng := city()
		if _, ok := l.known(lat, lng); !ok {
			toH3++
		}
		l.cell(lat, lng)
	}
	if share := float64(toH3) / float64(probes); share > 0.05 {
		t.Fatalf("%.1f%% of a warm city's positions went to H3, want under 5%%", 100*share)
	}
}

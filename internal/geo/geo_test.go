package geo

import (
	"math"
	"math/rand/v2"
	"testing"
)

func TestDistanceKnownValues(t *testing.T) {
	tests := []struct {
		name string
		a, b LatLng
		want float64 // meters
		tol  float64
	}{
		{"same point", LatLng{40.7, -74}, LatLng{40.7, -74}, 0, 0},
		{"one degree of latitude", LatLng{0, 0}, LatLng{1, 0}, EarthRadiusM * math.Pi / 180, 1e-6},
		{"across the antimeridian", LatLng{0, 179.5}, LatLng{0, -179.5}, EarthRadiusM * math.Pi / 180, 1e-6},
		{"pole to pole", LatLng{90, 0}, LatLng{-90, 0}, EarthRadiusM * math.Pi, 1e-6},
		{"over the pole", LatLng{89, 0}, LatLng{89, 180}, EarthRadiusM * 2 * math.Pi / 180, 1e-6},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := DistanceM(tt.a, tt.b); math.Abs(got-tt.want) > tt.tol {
				t.Fatalf("DistanceM(%v, %v) = %v, want %v", tt.a, tt.b, got, tt.want)
			}
		})
	}
}

func TestValidate(t *testing.T) {
	bad := []LatLng{{math.NaN(), 0}, {0, math.Inf(1)}, {90.0001, 0}, {-91, 0}, {0, 180.5}, {0, -181}}
	for _, p := range bad {
		if p.Validate() == nil {
			t.Errorf("Validate(%v) = nil, want an error", p)
		}
	}
	good := []LatLng{{90, 180}, {-90, -180}, {0, 0}, {40.7, -74}}
	for _, p := range good {
		if err := p.Validate(); err != nil {
			t.Errorf("Validate(%v) = %v, want nil", p, err)
		}
	}
}

// randomBox returns a box of random size somewhere on the globe, biased to
// the awkward places: poles and the antimeridian.
func randomBox(r *rand.Rand) (minLat, minLng, maxLat, maxLng float64) {
	size := math.Pow(10, -4+r.Float64()*5) // 1e-4 .. 10 degrees
	lat := -90 + r.Float64()*180
	lng := -180 + r.Float64()*360
	switch r.IntN(4) {
	case 0:
		lat = 90 - r.Float64()*size*2
	case 1:
		lng = 180 - r.Float64()*size*2
	}
	minLat, maxLat = math.Max(-90, lat-size), math.Min(90, lat+size*r.Float64())
	minLng, maxLng = math.Max(-180, lng-size), math.Min(180, lng+size*r.Float64())
	return
}

// TestBoxLowerBoundIsALowerBound checks the property the exact kNN relies on:
// no point inside a box is nearer than the box's bound.
func TestBoxLowerBoundIsALowerBound(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for i := 0; i < 20000; i++ {
		minLat, minLng, maxLat, maxLng := randomBox(r)
		bminLat, bminLng, bmaxLat, bmaxLng := randomBox(r)
		q := LatLng{bminLat + (bmaxLat-bminLat)*r.Float64(), bminLng + (bmaxLng-bminLng)*r.Float64()}
		if i%3 == 0 { // query near the box
			q = LatLng{math.Max(-90, math.Min(90, minLat-0.01+r.Float64()*0.02)), minLng}
		}
		lb := BoxLowerBoundM(q, minLat, minLng, maxLat, maxLng)
		if lb < 0 || math.IsNaN(lb) {
			t.Fatalf("bound %v for %v", lb, q)
		}
		for j := 0; j < 50; j++ {
			p := LatLng{minLat + (maxLat-minLat)*r.Float64(), minLng + (maxLng-minLng)*r.Float64()}
			if j < 4 { // corners
				p = LatLng{[]float64{minLat, maxLat}[j%2], []float64{minLng, maxLng}[j/2]}
			}
			if d := DistanceM(q, p); d < lb {
				t.Fatalf("box [%v,%v]x[%v,%v], q=%v: point %v at %v m is nearer than the bound %v m",
					minLat, maxLat, minLng, maxLng, q, p, d, lb)
			}
		}
	}
}

// TestBoxLowerBoundIsTight checks the bound is not just valid but close, so
// searches prune well: it matches the nearest of many sampled points.
func TestBoxLowerBoundIsTight(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	for i := 0; i < 2000; i++ {
		q := LatLng{-80 + 160*r.Float64(), -180 + 360*r.Float64()}
		minLat := q.Lat + (r.Float64()-0.5)*0.2
		minLng := q.Lng + (r.Float64()-0.5)*0.2
		maxLat, maxLng := math.Min(90, minLat+0.05), math.Min(180, minLng+0.05)
		minLng = math.Max(-180, minLng)
		lb := BoxLowerBoundM(q, minLat, minLng, maxLat, maxLng)
		best := math.Inf(1)
		const n = 400
		for a := 0; a <= n; a++ {
			f := float64(a) / n
			for _, p := range []LatLng{{minLat + (maxLat-minLat)*f, minLng}, {minLat + (maxLat-minLat)*f, maxLng},
				{minLat, minLng + (maxLng-minLng)*f}, {maxLat, minLng + (maxLng-minLng)*f}} {
				best = math.Min(best, DistanceM(q, p))
			}
		}
		if q.Lat >= minLat && q.Lat <= maxLat && q.Lng >= minLng && q.Lng <= maxLng {
			best = 0
		}
		if best-lb > 1+best*1e-3 {
			t.Fatalf("bound %v m is loose: a boundary point is at %v m (q=%v)", lb, best, q)
		}
	}
}

func TestNearestBruteOrdersTiesByID(t *testing.T) {
	q := LatLng{0, 0}
	pts := []Point{{"b", LatLng{0, 0.001}}, {"a", LatLng{0, -0.001}}, {"c", LatLng{0.5, 0}}, {"far", LatLng{10, 10}}}
	got := NearestBrute(pts, q, 100000, 3)
	want := []string{"a", "b", "c"}
	if len(got) != len(want) {
		t.Fatalf("got %d hits, want %d", len(got), len(want))
	}
	for i := range want {
		if got[i].ID != want[i] {
			t.Fatalf("hit %d = %s, want %s", i, got[i].ID, want[i])
		}
	}
}

// TestOriginDistanceIsDistanceM checks Origin.DistanceM is DistanceM bit for
// bit, everywhere including the poles, the antimeridian and tiny distances.
func TestOriginDistanceIsDistanceM(t *testing.T) {
	r := rand.New(rand.NewPCG(5, 6))
	for i := 0; i < 200000; i++ {
		minLat, minLng, maxLat, maxLng := randomBox(r)
		q := LatLng{minLat + (maxLat-minLat)*r.Float64(), minLng + (maxLng-minLng)*r.Float64()}
		p := LatLng{minLat + (maxLat-minLat)*r.Float64(), minLng + (maxLng-minLng)*r.Float64()}
		switch i % 4 {
		case 0: // anywhere
			p = LatLng{-90 + 180*r.Float64(), -180 + 360*r.Float64()}
		case 1: // the same point
			p = q
		}
		o := NewOrigin(q)
		if got, want := o.DistanceM(p), DistanceM(q, p); math.Float64bits(got) != math.Float64bits(want) {
			t.Fatalf("NewOrigin(%v).DistanceM(%v) = %v, DistanceM = %v", q, p, got, want)
		}
	}
}

func BenchmarkDistanceM(b *testing.B) {
	p, q := LatLng{40.7, -74}, LatLng{40.71, -73.99}
	for b.Loop() {
		DistanceM(p, q)
	}
}

func BenchmarkBoxLowerBoundM(b *testing.B) {
	q := LatLng{40.7, -74}
	for b.Loop() {
		BoxLowerBoundM(q, 40.71, -73.99, 40.72, -73.98)
	}
}

package fence

import (
	"math"
	"strings"
	"testing"

	"github.com/geomatch/geomatch/internal/geo"
)

func TestNewCircleRefuses(t *testing.T) {
	tests := []struct {
		name   string
		center geo.LatLng
		r      float64
		want   string
	}{
		{"zero radius", geo.LatLng{}, 0, "radius must be in (0, 1000000]"},
		{"negative radius", geo.LatLng{}, -5, "radius"},
		{"NaN radius", geo.LatLng{}, math.NaN(), "radius"},
		{"infinite radius", geo.LatLng{}, math.Inf(1), "radius"},
		{"too large", geo.LatLng{}, MaxRadiusM + 1, "radius"},
		{"bad latitude", geo.LatLng{Lat: 95}, 10, "center: lat"},
		{"NaN longitude", geo.LatLng{Lng: math.NaN()}, 10, "center: lng"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := NewCircle(tt.center, tt.r)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("NewCircle = %v, want an error containing %q", err, tt.want)
			}
		})
	}
}

// TestCircleFastPathAgrees checks the unit-vector test against
// geo.DistanceM for points at and around the radius, everywhere.
func TestCircleFastPathAgrees(t *testing.T) {
	r := newRand(31)
	for range 2000 {
		center := awkwardPoint(r, 9)
		radius := math.Pow(10, 6*r.Float64()) // 1 m .. 1000 km
		c, err := NewCircle(center, radius)
		if err != nil {
			t.Fatal(err)
		}
		for range 50 {
			d := radius * (1 + (2*r.Float64()-1)*math.Pow(10, -12*r.Float64()))
			p := destination(center, 2*math.Pi*r.Float64(), d/geo.EarthRadiusM)
			q := probe{p: p}
			if got, want := c.containsProbe(&q), c.Contains(p); got != want {
				t.Fatalf("circle %v r=%v: fast test of %v (distance %v) = %v, Contains = %v", center, radius, p, geo.DistanceM(center, p), got, want)
			}
			if b := c.Bound(); c.Contains(p) && !(p.Lat >= b.MinLat && p.Lat <= b.MaxLat &&
				((p.Lng >= b.MinLng && p.Lng <= b.MaxLng) || (p.Lng+360 >= b.MinLng && p.Lng+360 <= b.MaxLng))) {
				t.Fatalf("circle %v r=%v: %v inside but outside Bound %+v", center, radius, p, b)
			}
		}
	}
}

// TestCircleCrosses compares Crosses with a dense sampling of the segment.
func TestCircleCrosses(t *testing.T) {
	r := newRand(32)
	for range 3000 {
		center := awkwardPoint(r, 9)
		radius := 50 + 5000*r.Float64()
		c, _ := NewCircle(center, radius)
		a := destination(center, 2*math.Pi*r.Float64(), 3*radius*r.Float64()/geo.EarthRadiusM)
		b := destination(center, 2*math.Pi*r.Float64(), 3*radius*r.Float64()/geo.EarthRadiusM)
		got := c.Crosses(a, b)
		bx := unwrapLng(a.Lng, b.Lng)
		const n = 4000
		minD := math.Inf(1)
		for k := 0; k <= n; k++ {
			t := float64(k) / n
			minD = math.Min(minD, geo.DistanceM(center, geo.LatLng{Lat: a.Lat + t*(b.Lat-a.Lat), Lng: a.Lng + t*(bx-a.Lng)}))
		}
		// Sampling overestimates the closest approach by at most half a
		// step (the segment is shorter than 6 radii).
		step := lonLatLengthM(a.Lng, a.Lat, bx, b.Lat) / n
		switch {
		case minD <= radius && !got:
			t.Fatalf("circle %v r=%v: segment %v -> %v comes within %v but Crosses = false", center, radius, a, b, minD)
		case minD > radius+step && got:
			t.Fatalf("circle %v r=%v: segment %v -> %v stays %v away but Crosses = true", center, radius, a, b, minD)
		}
	}
}

func TestCircleBoundsAtPolesAndAntimeridian(t *testing.T) {
	polar, _ := NewCircle(geo.LatLng{Lat: 89.9, Lng: 10}, 50000)
	if b := polar.Bound(); b.MinLng != -180 || b.MaxLng != 180 || b.MaxLat != 90 {
		t.Errorf("a circle over the pole has Bound %+v, want every longitude up to 90", b)
	}
	if !polar.Contains(geo.LatLng{Lat: 90, Lng: -120}) || !polar.Contains(geo.LatLng{Lat: 89.8, Lng: -170}) {
		t.Error("the polar circle misses the pole's surroundings")
	}
	am, _ := NewCircle(geo.LatLng{Lat: 0, Lng: -179.99}, 5000)
	b := am.Bound()
	if b.MinLng < -180 || b.MinLng >= 180 || b.MaxLng <= 180 {
		t.Errorf("a circle across the antimeridian has Bound %+v, want MinLng in [-180, 180) and MaxLng past 180", b)
	}
	if !am.Contains(geo.LatLng{Lat: 0, Lng: 179.99}) {
		t.Error("the circle misses the other side of the antimeridian")
	}
}

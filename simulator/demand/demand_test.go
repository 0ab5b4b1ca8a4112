package demand

import (
	"math"
	"math/rand/v2"
	"strings"
	"testing"
)

func city() Model {
	return Model{
		PerMinute: 60, Profile: DefaultProfile(), StartHour: 8,
		Spots:      []Spot{{X: 1000, Y: 1000, SigmaM: 200, Weight: 3}, {X: -2000, Y: 500, SigmaM: 400, Weight: 1}},
		Background: 1, MinX: -5000, MinY: -5000, MaxX: 5000, MaxY: 5000,
	}
}

func TestProfileAt(t *testing.T) {
	p := DefaultProfile()
	for _, tc := range []struct {
		name string
		h    float64
		want float64
	}{
		{"on the hour", 8, 1.0},
		{"half past interpolates", 8.5, 0.95},
		{"midnight", 0, 0.30},
		{"24 is midnight", 24, 0.30},
		{"last hour wraps to midnight", 23.5, 0.35},
		{"negative wraps", -1, 0.40},
		{"next day", 32, 1.0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := p.At(tc.h); math.Abs(got-tc.want) > 1e-9 {
				t.Fatalf("At(%v) = %v, want %v", tc.h, got, tc.want)
			}
		})
	}
	if p.Max() != 1.10 {
		t.Fatalf("Max = %v", p.Max())
	}
}

func TestValidate(t *testing.T) {
	for _, tc := range []struct {
		name string
		edit func(*Model)
		want string
	}{
		{"ok", func(*Model) {}, ""},
		{"negative rate", func(m *Model) { m.PerMinute = -1 }, "per minute"},
		{"NaN rate", func(m *Model) { m.PerMinute = math.NaN() }, "per minute"},
		{"negative factor", func(m *Model) { m.Profile[3] = -1 }, "hour 3"},
		{"all zero", func(m *Model) { m.Profile = Profile{} }, "every factor"},
		{"empty bounds", func(m *Model) { m.MaxX = m.MinX }, "bounds"},
		{"zero sigma", func(m *Model) { m.Spots[0].SigmaM = 0 }, "spot 0"},
		{"no weight", func(m *Model) { m.Spots, m.Background = nil, 0 }, "weigh nothing"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := city()
			tc.edit(&m)
			err := m.Validate()
			if (err == nil) != (tc.want == "") || (err != nil && !strings.Contains(err.Error(), tc.want)) {
				t.Fatalf("err = %v, want %q", err, tc.want)
			}
		})
	}
}

// TestArrivalsArePoissonWithTheProfilesMean checks, over many seeds, that
// the count in a window has the profile's integral as its mean and
// variance (a Poisson count), and that arrivals increase.
func TestArrivalsArePoissonWithTheProfilesMean(t *testing.T) {
	for _, tc := range []struct {
		name   string
		start  float64
		t0, t1 float64
	}{
		{"morning peak, 10 minutes", 8, 0, 600},
		{"night into morning, 3 hours", 4, 0, 3 * 3600},
		{"evening window mid-run", 16, 1800, 5400},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := city()
			m.StartHour = tc.start
			want := m.Expected(tc.t0, tc.t1)
			const runs = 400
			var sum, sumSq float64
			for seed := uint64(0); seed < runs; seed++ {
				rng := rand.New(rand.NewPCG(seed, 77))
				n := 0.0
				prev := 0.0
				for at := m.NextArrival(rng, 0); at < tc.t1; at = m.NextArrival(rng, at) {
					if at <= prev {
						t.Fatalf("arrival %v after %v", at, prev)
					}
					prev = at
					if at >= tc.t0 {
						n++
					}
				}
				sum += n
				sumSq += n * n
			}
			mean := sum / runs
			variance := sumSq/runs - mean*mean
			// The mean of 400 Poisson counts is within 5 standard errors.
			if se := math.Sqrt(want / runs); math.Abs(mean-want) > 5*se {
				t.Fatalf("mean count %v, want %v ± %v", mean, want, 5*se)
			}
			if variance < 0.7*want || variance > 1.3*want {
				t.Fatalf("variance %v, want about the mean %v (Poisson)", variance, want)
			}
		})
	}
}

func TestNoDemandNoArrivals(t *testing.T) {
	m := city()
	m.PerMinute = 0
	if at := m.NextArrival(rand.New(rand.NewPCG(1, 1)), 0); !math.IsInf(at, 1) {
		t.Fatalf("arrival at %v with no demand", at)
	}
}

func TestPlacesFollowTheWeights(t *testing.T) {
	m := city()
	rng := rand.New(rand.NewPCG(3, 3))
	counts := map[int]int{}
	const n = 50000
	for i := 0; i < n; i++ {
		x, y, s := m.Place(rng)
		if x < m.MinX || x > m.MaxX || y < m.MinY || y > m.MaxY {
			t.Fatalf("place (%v, %v) outside the city", x, y)
		}
		if s == 0 && math.Hypot(x-1000, y-1000) > 200*6 {
			t.Fatalf("spot 0 draw %v m away, six sigmas", math.Hypot(x-1000, y-1000))
		}
		counts[s]++
	}
	for s, share := range map[int]float64{0: 0.6, 1: 0.2, -1: 0.2} {
		if got := float64(counts[s]) / n; math.Abs(got-share) > 0.01 {
			t.Errorf("spot %d drew %.3f of requests, want %.2f", s, got, share)
		}
	}
}

func TestTripsAreLongEnough(t *testing.T) {
	m := city()
	rng := rand.New(rand.NewPCG(4, 4))
	for i := 0; i < 1000; i++ {
		px, py, dx, dy := m.Trip(rng, 800)
		if d := math.Hypot(dx-px, dy-py); d < 800 {
			t.Fatalf("trip of %v m, want at least 800", d)
		}
	}
}

func TestSameSeedSameRiders(t *testing.T) {
	m := city()
	draw := func() []float64 {
		rng := rand.New(rand.NewPCG(42, 1))
		var out []float64
		at := 0.0
		for i := 0; i < 100; i++ {
			at = m.NextArrival(rng, at)
			px, py, dx, dy := m.Trip(rng, 500)
			out = append(out, at, px, py, dx, dy)
		}
		return out
	}
	a, b := draw(), draw()
	for i := range a {
		if a[i] != b[i] {
			t.Fatalf("draw %d differs: %v vs %v", i, a[i], b[i])
		}
	}
}

// TestEventShare: while an event runs, its share of the pickups come from
// its spot; before and after, none do.
func TestEventShare(t *testing.T) {
	m := Model{PerMinute: 10, Profile: Flat(), MinX: 0, MinY: 0, MaxX: 10000, MaxY: 10000, Background: 1}
	ev := []Event{{Spot: Spot{X: 5000, Y: 5000, SigmaM: 100, Weight: 1}, Share: 0.3, From: 100, To: 200}}
	if err := ev[0].Validate(); err != nil {
		t.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(1, 2))
	count := func(t0 float64) float64 {
		in := 0
		const n = 20000
		for range n {
			px, py, _, _ := m.TripAt(rng, t0, ev, 800)
			if math.Hypot(px-5000, py-5000) < 400 {
				in++
			}
		}
		return float64(in) / n
	}
	// Uniform background puts ~0.5% of pickups within 400 m of the spot.
	if got := count(150); got < 0.28 || got > 0.33 {
		t.Errorf("during the event %.3f of pickups near the spot, want about 0.30", got)
	}
	for _, at := range []float64{50, 200, 300} {
		if got := count(at); got > 0.02 {
			t.Errorf("at %v s (outside the event) %.3f of pickups near the spot", at, got)
		}
	}
	for _, bad := range []Event{{Share: 2, Spot: Spot{SigmaM: 1}}, {Share: 0.3}, {Share: 0.3, Spot: Spot{SigmaM: 1}, From: 5, To: 1}} {
		if bad.Validate() == nil {
			t.Errorf("%+v: accepted", bad)
		}
	}
}

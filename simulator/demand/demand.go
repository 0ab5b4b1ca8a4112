// Package demand is the rider side of the traffic simulator's scenario:
// when ride requests arrive and where they start and end.
//
// Arrivals are a non-homogeneous Poisson process: the rate follows the time
// of day (Profile: 24 hourly factors, linear in between, a morning and an
// evening peak by default) scaled by the requests per minute the caller
// asks for, and arrival times are drawn by thinning, so the count in any
// window is Poisson with the profile's integral as its mean. Places are a
// mixture: with Spots' weights, a Gaussian around one hot spot; with
// Background's weight, uniform over the city's bounding box.
//
// The package is pure: times are seconds of simulated time, positions are
// meters in the city's frame, randomness comes from the caller's
// *rand.Rand, so a seeded caller gets the same riders every time.
package demand

import (
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
)

// Profile is the demand factor for each hour of the day, 0:00 to 23:00;
// between full hours it is interpolated linearly (23:00 to 24:00 goes back
// to the 0:00 value).
type Profile [24]float64

// DefaultProfile is a weekday of a big city: quiet at night, a morning
// peak at 8:00, a lunch bump and the evening peak at 18:00 (factor 1.0 at
// the morning peak).
func DefaultProfile() Profile {
	return Profile{
		0.30, 0.20, 0.15, 0.12, 0.15, 0.30, 0.60, 0.85, 1.00, 0.90, 0.70, 0.65,
		0.75, 0.70, 0.65, 0.70, 0.85, 1.00, 1.10, 0.95, 0.80, 0.70, 0.55, 0.40,
	}
}

// Flat is the same factor, 1, all day.
func Flat() Profile {
	var p Profile
	for i := range p {
		p[i] = 1
	}
	return p
}

// Validate checks that every factor is finite and non-negative and that
// some hour has demand.
func (p Profile) Validate() error {
	sum := 0.0
	for h, v := range p {
		if !(v >= 0) || math.IsInf(v, 0) {
			return fmt.Errorf("demand profile: hour %d: factor %v, want a finite number >= 0", h, v)
		}
		sum += v
	}
	if sum == 0 {
		return errors.New("demand profile: every factor is 0")
	}
	return nil
}

// At returns the factor at hour h (any real; taken modulo 24).
func (p Profile) At(h float64) float64 {
	h = math.Mod(h, 24)
	if h < 0 {
		h += 24
	}
	i := int(h)
	if i >= 24 { // h rounded up to 24.0
		i = 23
	}
	f := h - float64(i)
	return p[i]*(1-f) + p[(i+1)%24]*f
}

// Max returns the largest factor.
func (p Profile) Max() float64 {
	m := 0.0
	for _, v := range p {
		m = max(m, v)
	}
	return m
}

// Spot is a hot spot: requests around (X, Y) with a Gaussian spread.
type Spot struct {
	// X and Y are frame meters.
	X, Y float64
	// SigmaM is the standard deviation of the spread, meters (> 0).
	SigmaM float64
	// Weight is the spot's share relative to the other spots and the
	// background (>= 0).
	Weight float64
}

// Model is the demand of one city.
type Model struct {
	// PerMinute is the mean number of requests per simulated minute when
	// the profile's factor is 1.
	PerMinute float64
	// Profile shapes demand over the day.
	Profile Profile
	// StartHour is the time of day at simulated second 0 (8.5: 8:30).
	StartHour float64
	// Spots are the hot spots.
	Spots []Spot
	// Background is the weight of requests uniform over the bounds.
	Background float64
	// MinX, MinY, MaxX, MaxY bound the city (frame meters).
	MinX, MinY, MaxX, MaxY float64
}

// Validate checks the model.
func (m Model) Validate() error {
	if !(m.PerMinute >= 0) || math.IsInf(m.PerMinute, 0) {
		return fmt.Errorf("demand: %v requests per minute, want a finite number >= 0", m.PerMinute)
	}
	if err := m.Profile.Validate(); err != nil {
		return err
	}
	if !(m.MaxX > m.MinX && m.MaxY > m.MinY) {
		return errors.New("demand: the city's bounds are empty")
	}
	total := m.Background
	if !(m.Background >= 0) {
		return fmt.Errorf("demand: background weight %v, want >= 0", m.Background)
	}
	for i, s := range m.Spots {
		if !(s.Weight >= 0) || !(s.SigmaM > 0) || math.IsInf(s.SigmaM, 0) || math.IsInf(s.Weight, 0) {
			return fmt.Errorf("demand: spot %d: weight %v and sigma %v m, want weight >= 0 and sigma > 0", i, s.Weight, s.SigmaM)
		}
		total += s.Weight
	}
	if !(total > 0) || math.IsInf(total, 0) {
		return errors.New("demand: spots and background weigh nothing")
	}
	return nil
}

// Rate is the arrival rate at simulated second t, in requests per second.
func (m Model) Rate(t float64) float64 {
	return m.PerMinute / 60 * m.Profile.At(m.StartHour+t/3600)
}

// Expected is the mean number of arrivals in [t0, t1), integrated
// numerically in one-minute steps (the profile is piecewise linear, so
// this is exact up to the step's trapezoids).
func (m Model) Expected(t0, t1 float64) float64 {
	if t1 <= t0 {
		return 0
	}
	n := int(math.Ceil((t1 - t0) / 60))
	step := (t1 - t0) / float64(n)
	sum := 0.0
	for i := 0; i < n; i++ {
		a := t0 + float64(i)*step
		sum += (m.Rate(a) + m.Rate(a+step)) / 2 * step
	}
	return sum
}

// NextArrival returns the first arrival after simulated second t (thinning
// against the profile's maximum), or +Inf when there is no demand at all.
func (m Model) NextArrival(rng *rand.Rand, t float64) float64 {
	peak := m.PerMinute / 60 * m.Profile.Max()
	if !(peak > 0) {
		return math.Inf(1)
	}
	// Thinning needs at most a few tries per arrival on sensible profiles;
	// the bound keeps a near-zero profile from spinning for long.
	for i := 0; i < 1_000_000; i++ {
		t += rng.ExpFloat64() / peak
		if rng.Float64()*peak <= m.Rate(t) {
			return t
		}
	}
	return math.Inf(1)
}

// Place draws a request's position and the spot it came from (-1 for the
// background). Gaussian draws that fall outside the bounds are clamped to
// them.
func (m Model) Place(rng *rand.Rand) (x, y float64, spot int) {
	total := m.Background
	for _, s := range m.Spots {
		total += s.Weight
	}
	k := rng.Float64() * total
	for i, s := range m.Spots {
		if k < s.Weight {
			x = s.X + rng.NormFloat64()*s.SigmaM
			y = s.Y + rng.NormFloat64()*s.SigmaM
			return min(max(x, m.MinX), m.MaxX), min(max(y, m.MinY), m.MaxY), i
		}
		k -= s.Weight
	}
	return m.MinX + rng.Float64()*(m.MaxX-m.MinX), m.MinY + rng.Float64()*(m.MaxY-m.MinY), -1
}

// Trip draws a request's pickup and drop-off at least minM meters apart
// (best effort: after 20 draws it keeps the farthest pair).
func (m Model) Trip(rng *rand.Rand, minM float64) (px, py, dx, dy float64) {
	px, py, _ = m.Place(rng)
	best := -1.0
	for i := 0; i < 20; i++ {
		x, y, _ := m.Place(rng)
		if d := math.Hypot(x-px, y-py); d > best {
			best, dx, dy = d, x, y
			if d >= minM {
				break
			}
		}
	}
	return px, py, dx, dy
}

// Event is a hot spot for a while: between simulated seconds From and To,
// Share of all requests (0..1) come from Spot, the rest from the model's
// usual mixture (a stadium letting out).
type Event struct {
	Spot     Spot
	Share    float64
	From, To float64
}

// Validate checks the event.
func (e Event) Validate() error {
	switch {
	case !(e.Share >= 0 && e.Share <= 1):
		return fmt.Errorf("demand event: share %v, want within [0, 1]", e.Share)
	case !(e.Spot.SigmaM > 0) || math.IsInf(e.Spot.SigmaM, 0):
		return fmt.Errorf("demand event: sigma %v m, want > 0", e.Spot.SigmaM)
	case !(e.To >= e.From):
		return fmt.Errorf("demand event: from %v s to %v s, want from <= to", e.From, e.To)
	}
	return nil
}

// PlaceAt is Place at simulated second t: while an event of events runs,
// its share of the requests come from its spot (the first running event
// wins); otherwise Place.
func (m Model) PlaceAt(rng *rand.Rand, t float64, events []Event) (x, y float64, spot int) {
	for i, e := range events {
		if t >= e.From && t < e.To {
			if rng.Float64() < e.Share {
				x = e.Spot.X + rng.NormFloat64()*e.Spot.SigmaM
				y = e.Spot.Y + rng.NormFloat64()*e.Spot.SigmaM
				return min(max(x, m.MinX), m.MaxX), min(max(y, m.MinY), m.MaxY), len(m.Spots) + i
			}
			break
		}
	}
	return m.Place(rng)
}

// TripAt is Trip at simulated second t with events: the pickup comes from
// PlaceAt, the drop-off from the usual mixture (riders leave the hot spot).
func (m Model) TripAt(rng *rand.Rand, t float64, events []Event, minM float64) (px, py, dx, dy float64) {
	if len(events) == 0 {
		return m.Trip(rng, minM)
	}
	px, py, _ = m.PlaceAt(rng, t, events)
	best := -1.0
	for i := 0; i < 20; i++ {
		x, y, _ := m.Place(rng)
		if d := math.Hypot(x-px, y-py); d > best {
			best, dx, dy = d, x, y
			if d >= minM {
				break
			}
		}
	}
	return px, py, dx, dy
}

package simulator

import (
	"math"
	"testing"
	"time"

	"github.com/geomatch/geomatch/simulator/city"
)

// TestStadiumDrawsItsShareAndSteersThem: about Share of the fleet goes;
// during the event an idle driver of it drives to the stadium and stays
// within its radius; afterwards it roams again; drivers on trips and
// drivers not drawn are left alone.
func TestStadiumDrawsItsShareAndSteersThem(t *testing.T) {
	cfg := testConfig(t)
	cfg.Drivers = 4000
	st := DefaultStadium()
	cfg.Stadium = &st
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	e := &engine{cfg: cfg, g: cfg.City}
	s, err := newStadiumRun(e, 0)
	if err != nil {
		t.Fatal(err)
	}
	hot := 0
	for _, h := range s.hot {
		if h {
			hot++
		}
	}
	if share := float64(hot) / float64(cfg.Drivers); math.Abs(share-0.3) > 0.03 {
		t.Errorf("%.3f of the fleet goes to the stadium, want about 0.30", share)
	}
	t0 := time.Unix(1_800_000_000, 0)
	s.start(t0, cfg.Duration)
	during := t0.Add(time.Duration(0.3 * float64(cfg.Duration)))
	after := t0.Add(time.Duration(0.6 * float64(cfg.Duration)))

	var hotIdx, coldIdx int = -1, -1
	for i, h := range s.hot {
		if h && hotIdx < 0 {
			hotIdx = i
		}
		if !h && coldIdx < 0 {
			coldIdx = i
		}
	}
	g := cfg.City
	newDriver := func(i int) *driver {
		start := g.At(city.NodeID(0)) // the first intersection: far from the stadium
		return &driver{idx: i, rng: entityRNG(1, streamDriver, i), mv: city.NewMover(g, start), state: idle}
	}
	d, cold := newDriver(hotIdx), newDriver(coldIdx)
	dist := func(d *driver) float64 {
		x, y := g.XY(d.mv.Loc())
		return math.Hypot(x-s.x, y-s.y)
	}
	if dist(d) < 2*st.RadiusM {
		t.Fatalf("the test driver starts %v m from the stadium: pick another start", dist(d))
	}
	s.steer(g, d, t0) // before the event: nothing
	if d.mv.Routed() {
		t.Fatal("steered before the event")
	}
	within := 0
	for step := range 2000 { // 2000 × 5 s of driving
		s.steer(g, d, during)
		s.steer(g, cold, during)
		d.advance(float64(step) * 5)
		cold.advance(float64(step) * 5)
		if dist(d) <= st.RadiusM+50 {
			within++
		}
	}
	if within < 1000 {
		t.Errorf("the driver was near the stadium in %d of 2000 steps, want most once it got there", within)
	}
	if cold.mv.Routed() {
		t.Error("a driver that was not drawn was steered")
	}
	d.state = toPickup
	routed := d.mv.Routed()
	s.steer(g, d, after)
	if d.mv.Routed() != routed {
		t.Error("a driver on a trip was steered")
	}
	d.state = idle
	s.steer(g, d, after)
	if d.mv.Routed() {
		t.Error("after the event the driver still heads for the stadium")
	}
}

func TestStadiumValidate(t *testing.T) {
	for _, bad := range []Stadium{{Share: 0, From: 0.1, To: 0.5, RadiusM: 400}, {Share: 0.3, From: 0.5, To: 0.5, RadiusM: 400}, {Share: 0.3, From: 0.1, To: 0.5, RadiusM: 10}} {
		cfg := testConfig(t)
		cfg.Stadium = &bad
		if err := cfg.Validate(); err == nil {
			t.Errorf("%+v: accepted", bad)
		}
	}
}

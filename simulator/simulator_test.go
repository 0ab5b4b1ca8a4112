package simulator

import (
	"math"
	"strings"
	"testing"
	"time"

	"github.com/geomatch/geomatch/internal/geo"
	geomatchv1 "github.com/geomatch/geomatch/proto/geomatch/v1"
	"github.com/geomatch/geomatch/simulator/city"
	"github.com/geomatch/geomatch/simulator/report"
)

func testCity(t *testing.T, name string) (*city.Graph, []city.Place) {
	t.Helper()
	p, ok := city.PresetByName(name)
	if !ok {
		t.Fatalf("no preset %s", name)
	}
	g, err := city.Grid(p.Grid)
	if err != nil {
		t.Fatal(err)
	}
	return g, p.Places
}

func testConfig(t *testing.T) Config {
	cfg := DefaultConfig()
	cfg.Target = "127.0.0.1:1"
	cfg.City, cfg.Places = testCity(t, "nyc")
	return cfg
}

func TestConfigValidate(t *testing.T) {
	for _, tc := range []struct {
		name string
		edit func(*Config)
		want string
	}{
		{"defaults", func(*Config) {}, ""},
		{"no target", func(c *Config) { c.Target = "" }, "target"},
		{"no city", func(c *Config) { c.City = nil }, "city"},
		{"no drivers", func(c *Config) { c.Drivers = 0 }, "drivers"},
		{"too many drivers", func(c *Config) { c.Drivers = MaxDrivers + 1 }, "drivers"},
		{"short window", func(c *Config) { c.Duration = time.Millisecond }, "duration"},
		{"slow motion", func(c *Config) { c.Speedup = 0.5 }, "speedup"},
		{"too fast", func(c *Config) { c.Speedup = 1000 }, "speedup"},
		{"unknown transport", func(c *Config) { c.Transport = "carrier pigeon" }, "transport"},
		{"huge batches", func(c *Config) { c.BatchSize = 20000 }, "batch size"},
		{"probability above 1", func(c *Config) { c.AcceptProbability = 1.5 }, "accept probability"},
		{"think range reversed", func(c *Config) { c.ThinkMin, c.ThinkMax = 5*time.Second, time.Second }, "think"},
		{"no patience", func(c *Config) { c.PatienceMin = 0 }, "patience"},
		{"long prefix", func(c *Config) { c.DriverPrefix = strings.Repeat("x", 40) }, "prefix"},
		{"bad hour", func(c *Config) { c.StartHour = 24 }, "start hour"},
		{"several at once", func(c *Config) { c.Drivers, c.Workers = 0, 0 }, "workers"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := testConfig(t)
			tc.edit(&cfg)
			err := cfg.Validate()
			if (err == nil) != (tc.want == "") || (err != nil && !strings.Contains(err.Error(), tc.want)) {
				t.Fatalf("err = %v, want %q", err, tc.want)
			}
		})
	}
}

func TestClockRoundTrip(t *testing.T) {
	t0 := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	for _, speedup := range []float64{1, 2.5, 10, 100} {
		c := clock{t0: t0, speedup: speedup}
		for _, sim := range []float64{0, 0.001, 1, 59.5, 3600, 86400} {
			if got := c.sim(c.wall(sim)); math.Abs(got-sim) > 1e-6*speedup {
				t.Fatalf("speedup %v: sim(wall(%v)) = %v", speedup, sim, got)
			}
		}
		if got := c.wall(speedup * 10); !got.Equal(t0.Add(10 * time.Second)) {
			t.Fatalf("speedup %v: %v simulated seconds end at %v, want 10 s of wall time", speedup, speedup*10, got.Sub(t0))
		}
	}
}

func trip(id string, s geomatchv1.TripState, driver string) *geomatchv1.Trip {
	return &geomatchv1.Trip{TripId: id, State: s, DriverId: driver}
}

const (
	requested = geomatchv1.TripState_TRIP_STATE_REQUESTED
	offered   = geomatchv1.TripState_TRIP_STATE_OFFERED
	assigned  = geomatchv1.TripState_TRIP_STATE_ASSIGNED
	pickedUp  = geomatchv1.TripState_TRIP_STATE_PICKED_UP
	completed = geomatchv1.TripState_TRIP_STATE_COMPLETED
	cancelled = geomatchv1.TripState_TRIP_STATE_CANCELLED
	noDriver  = geomatchv1.TripState_TRIP_STATE_NO_DRIVER
)

// TestLedgerCountsEachTripOnceByItsEnd feeds the ledger the views of trips
// a run gets (out of order, repeated) and checks the tally.
func TestLedgerCountsEachTripOnceByItsEnd(t *testing.T) {
	for _, tc := range []struct {
		name  string
		views []*geomatchv1.Trip
		end   endKind
		want  report.Trips
	}{
		{"completed", []*geomatchv1.Trip{trip("a", requested, ""), trip("a", offered, "d"), trip("a", assigned, "d"), trip("a", pickedUp, "d"), trip("a", completed, "d")}, endNone,
			report.Trips{Requests: 1, Assigned: 1, MatchRate: 1, Completed: 1}},
		{"completed when the run ended", []*geomatchv1.Trip{trip("a", pickedUp, "d"), trip("a", completed, "d")}, endCompletedAtEnd,
			report.Trips{Requests: 1, Assigned: 1, MatchRate: 1, CompletedAtEnd: 1}},
		{"an old view after the end changes nothing", []*geomatchv1.Trip{trip("a", completed, "d"), trip("a", assigned, "d")}, endNone,
			report.Trips{Requests: 1, Assigned: 1, MatchRate: 1, Completed: 1}},
		{"no driver", []*geomatchv1.Trip{trip("a", offered, "d"), trip("a", requested, ""), trip("a", noDriver, "")}, endNone,
			report.Trips{Requests: 1, NoDriver: 1}},
		{"rider gave up while offered", []*geomatchv1.Trip{trip("a", offered, "d"), trip("a", cancelled, "")}, endGaveUp,
			report.Trips{Requests: 1, RiderGaveUp: 1}},
		{"gave up just after the assignment", []*geomatchv1.Trip{trip("a", cancelled, "d")}, endGaveUp,
			report.Trips{Requests: 1, Assigned: 1, MatchRate: 1, CancelledAfterMatch: 1}},
		{"cancelled at the end", []*geomatchv1.Trip{trip("a", assigned, "d"), trip("a", cancelled, "d")}, endCancelledAtEnd,
			report.Trips{Requests: 1, Assigned: 1, MatchRate: 1, CancelledAtEnd: 1}},
		{"still waiting at the end", []*geomatchv1.Trip{trip("a", offered, "d"), trip("a", cancelled, "")}, endCancelledAtEnd,
			report.Trips{Requests: 1, CancelledAtEnd: 1, WaitingAtEnd: 1}},
		{"still open", []*geomatchv1.Trip{trip("a", offered, "d")}, endNone,
			report.Trips{Requests: 1, Open: 1}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			l := newLedger(10)
			req := &geomatchv1.RequestRideRequest{RequestId: "r-a", RiderId: "rider"}
			l.request(req)
			if got := l.unanswered(); len(got) != 1 {
				t.Fatalf("%d unanswered requests, want 1", len(got))
			}
			l.add(tc.views[0], "r-a", "rider", report.Pickup{})
			if got := l.unanswered(); len(got) != 0 {
				t.Fatalf("%d unanswered requests after the answer", len(got))
			}
			newly := 0
			for _, v := range tc.views[1:] {
				if l.observe(v) {
					newly++
				}
			}
			if tc.end != endNone {
				l.ended("a", tc.end)
			}
			if got := l.tally(); got != tc.want {
				t.Fatalf("tally = %+v, want %+v", got, tc.want)
			}
			if a := tc.want.Assigned; newly > 1 || (a == 0 && newly > 0) {
				t.Fatalf("%d first signs of an assignment", newly)
			}
			if o := l.open(); int64(len(o)) != tc.want.Open {
				t.Fatalf("%d open trips, want %d", len(o), tc.want.Open)
			}
		})
	}
}

func TestLedgerIsBounded(t *testing.T) {
	l := newLedger(2)
	l.add(trip("a", requested, ""), "ra", "x", report.Pickup{})
	if l.full() {
		t.Fatal("full with one trip of two")
	}
	l.request(&geomatchv1.RequestRideRequest{RequestId: "rb"})
	if !l.full() {
		t.Fatal("not full with a trip and a pending request")
	}
	if l.observe(trip("unknown", assigned, "d")) {
		t.Fatal("a trip the run did not create counted")
	}
}

// TestScenarioIsTheSameForTheSameSeed: drivers and riders are drawn from
// their own seeded sources, so the same seed gives the same city.
func TestScenarioIsTheSameForTheSameSeed(t *testing.T) {
	build := func(seed uint64) (*engine, []rider) {
		cfg := testConfig(t)
		cfg.Seed, cfg.Drivers = seed, 500
		e := &engine{cfg: cfg, g: cfg.City, ledger: newLedger(10)}
		e.demand = demandModel(&e.cfg)
		e.placeDrivers()
		var rs []rider
		at := 0.0
		rng := entityRNG(seed, streamArrivals, 0)
		for n := 0; n < 200; n++ {
			at = e.demand.NextArrival(rng, at)
			rs = append(rs, e.newRider(n, at))
		}
		return e, rs
	}
	a, ra := build(42)
	b, rb := build(42)
	c, rc := build(43)
	same := func(x, y *engine, i int) bool {
		dx, dy := x.drivers[i], y.drivers[i]
		return dx.mv.Loc() == dy.mv.Loc() && dx.class == dy.class && dx.online == dy.online && dx.mv.Factor == dy.mv.Factor && dx.shiftChange == dy.shiftChange
	}
	differ := 0
	for i := range a.drivers {
		if !same(a, b, i) {
			t.Fatalf("driver %d differs between two runs of seed 42", i)
		}
		if !same(a, c, i) {
			differ++
		}
	}
	if differ < len(a.drivers)/2 {
		t.Fatalf("only %d of %d drivers differ between seeds 42 and 43", differ, len(a.drivers))
	}
	for i := range ra {
		if ra[i] != rb[i] {
			t.Fatalf("rider %d differs between two runs of seed 42: %+v vs %+v", i, ra[i], rb[i])
		}
	}
	if ra[0] == rc[0] {
		t.Fatal("rider 0 is the same for seeds 42 and 43")
	}
	// Offer decisions depend on the driver and the offer only.
	if offerRNG(1, 5, "trp_x-o1").Float64() != offerRNG(1, 5, "trp_x-o1").Float64() {
		t.Fatal("an offer's decision is not reproducible")
	}
}

func TestRidersStartAndEndAtIntersections(t *testing.T) {
	for _, name := range city.PresetNames() {
		t.Run(name, func(t *testing.T) {
			cfg := testConfig(t)
			cfg.City, cfg.Places = testCity(t, name)
			e := &engine{cfg: cfg, g: cfg.City, runID: "x"}
			e.demand = demandModel(&e.cfg)
			if err := e.demand.Validate(); err != nil {
				t.Fatal(err)
			}
			for n := 0; n < 300; n++ {
				r := e.newRider(n, 0)
				if err := r.pickup.Validate(); err != nil {
					t.Fatal(err)
				}
				for _, p := range []geo.LatLng{r.pickup, r.dropoff} {
					x, y := e.g.Frame.XY(p)
					if n := e.g.Nodes[e.g.Nearest(x, y)]; n.Pos != p {
						t.Fatalf("%v is not an intersection (nearest %v)", p, n.Pos)
					}
				}
				if r.pickup == r.dropoff {
					t.Fatalf("rider %d goes nowhere", n)
				}
				if r.patience < cfg.PatienceMin.Seconds() || r.patience > cfg.PatienceMax.Seconds() {
					t.Fatalf("patience %v s outside the configured range", r.patience)
				}
				if !strings.HasPrefix(r.requestID, "sim-x-r") || len(r.requestID) > 128 {
					t.Fatalf("request id %q", r.requestID)
				}
			}
		})
	}
}

func TestDriverStatusAndTimestamps(t *testing.T) {
	for _, tc := range []struct {
		online bool
		state  dstate
		want   geomatchv1.DriverStatus
	}{
		{false, idle, geomatchv1.DriverStatus_DRIVER_STATUS_OFFLINE},
		{true, idle, geomatchv1.DriverStatus_DRIVER_STATUS_AVAILABLE},
		{true, thinking, geomatchv1.DriverStatus_DRIVER_STATUS_RESERVED},
		{true, accepting, geomatchv1.DriverStatus_DRIVER_STATUS_ON_TRIP},
		{true, toPickup, geomatchv1.DriverStatus_DRIVER_STATUS_ON_TRIP},
		{true, toDropoff, geomatchv1.DriverStatus_DRIVER_STATUS_ON_TRIP},
	} {
		d := &driver{online: tc.online, state: tc.state}
		if got := d.status(); got != tc.want {
			t.Errorf("online %v, state %d: status %v, want %v", tc.online, tc.state, got, tc.want)
		}
	}
	d := &driver{}
	now := time.Now()
	prev := int64(0)
	for i := 0; i < 100; i++ {
		ts := d.timestamp(now) // the same wall time over and over
		if ts <= prev {
			t.Fatalf("timestamp %d after %d: the service would ignore it", ts, prev)
		}
		prev = ts
	}
}

func TestValuesAreBoundedAndUnbiased(t *testing.T) {
	v := newValues(1)
	const n = maxSamples * 3
	for i := 0; i < n; i++ {
		v.add(float64(i % 1000))
	}
	d := v.dist()
	if d.Count != n {
		t.Fatalf("count %d, want %d", d.Count, n)
	}
	if len(v.v) != maxSamples {
		t.Fatalf("kept %d values, want %d", len(v.v), maxSamples)
	}
	if math.Abs(d.Mean-499.5) > 5 || math.Abs(d.P50-500) > 10 || math.Abs(d.P90-900) > 10 {
		t.Fatalf("sampled distribution %+v, want mean 499.5, p50 500, p90 900", d)
	}
}

package report

import (
	"math"
	"strings"
	"testing"
)

var nan = math.NaN()

func near(a, b float64) bool { return math.Abs(a-b) < 1e-9 }

// TestDriverTime integrates the gauges by hand: each sample's gauges hold
// since the previous sample, and the warm-up's seconds are left out (a
// sample straddling its end counts from it).
func TestDriverTime(t *testing.T) {
	series := []Sample{
		{SimS: 10, Online: 100, Busy: 10, Offered: 5},  // 0..10
		{SimS: 20, Online: 100, Busy: 40, Offered: 0},  // 10..20
		{SimS: 30, Online: 80, Busy: 40, Offered: 10},  // 20..30
		{SimS: 40, Online: 10, Busy: 20, Offered: 0},   // 30..40: more busy than online counts no one available
		{SimS: 40, Online: 999, Busy: 999, Offered: 0}, // zero-length interval
	}
	for _, tc := range []struct {
		name                     string
		from                     float64
		online, avail, busy, thk float64
	}{
		{"whole run", 0, 10*100 + 10*100 + 10*80 + 10*10, 10*85 + 10*60 + 10*30 + 0, 10*10 + 10*40 + 10*40 + 10*20, 10*5 + 10*10},
		{"warm-up on a sample", 20, 10*80 + 10*10, 10 * 30, 10*40 + 10*20, 10 * 10},
		{"warm-up inside an interval", 25, 5*80 + 10*10, 5*30 + 0, 5*40 + 10*20, 5 * 10},
		{"warm-up past the end", 50, 0, 0, 0, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			on, av, bs, th := DriverTime(series, tc.from)
			if !near(on, tc.online) || !near(av, tc.avail) || !near(bs, tc.busy) || !near(th, tc.thk) {
				t.Fatalf("DriverTime = online %v, available %v, busy %v, thinking %v; want %v, %v, %v, %v", on, av, bs, th, tc.online, tc.avail, tc.busy, tc.thk)
			}
		})
	}
}

// TestLegMetersIn shares a leg's length out over its time.
func TestLegMetersIn(t *testing.T) {
	for _, tc := range []struct {
		name     string
		leg      Leg
		from, to float64
		want     float64
	}{
		{"inside", Leg{10, 20, 1000}, 0, 100, 1000},
		{"before", Leg{10, 20, 1000}, 30, 100, 0},
		{"after", Leg{10, 20, 1000}, 0, 5, 0},
		{"starts in the warm-up", Leg{10, 20, 1000}, 15, 100, 500},
		{"cut by the end", Leg{10, 20, 1000}, 0, 12, 200},
		{"both", Leg{0, 100, 1000}, 20, 30, 100},
		{"instant, inside", Leg{10, 10, 300}, 0, 100, 300},
		{"instant, outside", Leg{10, 10, 300}, 20, 100, 0},
		{"never driven", Leg{}, 0, 100, 0},
		{"reversed", Leg{20, 10, 500}, 0, 100, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := tc.leg.metersIn(tc.from, tc.to); !near(got, tc.want) {
				t.Fatalf("%+v in [%v, %v] = %v m, want %v", tc.leg, tc.from, tc.to, got, tc.want)
			}
		})
	}
}

// fact is a trip requested at sim second at, in district zone.
func fact(at float64, zone int) TripFact {
	return TripFact{RequestedSimS: at, Zone: zone, Place: -1, MatchMs: nan, ServiceMs: nan, FirstOfferMs: nan, ETAS: nan, WaitS: nan}
}

// TestMeasure computes a window's KPIs from hand-made facts: the warm-up's
// requests are left out of the request-based figures, the legs count
// their part in the window, the ratios are the definitions'.
func TestMeasure(t *testing.T) {
	matched := func(at, matchMs, serviceMs, waitS, etaS float64) TripFact {
		f := fact(at, 0)
		f.Assigned, f.MatchMs, f.ServiceMs, f.WaitS, f.ETAS = true, matchMs, serviceMs, waitS, etaS
		return f
	}
	warm := matched(50, 9999, 9999, 9999, 9999) // in the warm-up: not counted
	warm.Pickup = Leg{80, 120, 400}             // but its legs' driving in the window is
	warm.Ride = Leg{120, 220, 2000}
	a := matched(150, 600, 100, 60, 40)
	a.Pickup = Leg{160, 200, 300}
	a.Ride = Leg{200, 400, 3000} // half of it after the window's end
	b := matched(200, 800, 300, 120, 80)
	gaveUp := fact(250, 0)
	gaveUp.Unmatched = true
	waiting := fact(290, 0)
	waiting.WaitingAtEnd = true
	carried := TripFact{RequestedSimS: nan, Zone: -1, Place: -1, Ride: Leg{0, 140, 1400}}

	in := Window{FromSimS: 100, ToSimS: 300, Offers: 8, Accepted: 6, DropOffs: 3, CarriedDropOffs: 1}
	series := []Sample{
		{SimS: 100, Online: 50, Busy: 50},               // warm-up
		{SimS: 200, Online: 100, Busy: 30, Offered: 10}, // 100..200
		{SimS: 300, Online: 100, Busy: 50, Offered: 10}, // 200..300
	}
	w := Measure(in, []TripFact{warm, a, b, gaveUp, waiting, carried}, series)

	if w.Requests != 4 || w.Answered != 3 || w.Assigned != 2 || w.Unmatched != 1 {
		t.Fatalf("requests %d, answered %d, assigned %d, unmatched %d; want 4, 3, 2, 1", w.Requests, w.Answered, w.Assigned, w.Unmatched)
	}
	if !near(w.MatchRate, 2.0/3) || !near(w.AcceptanceRate, 0.75) {
		t.Fatalf("match rate %v, acceptance %v; want 2/3 and 0.75", w.MatchRate, w.AcceptanceRate)
	}
	// Pickups: warm's 400 m over 80..120, 20 s of 40 in the window = 200;
	// a's 300. Rides: warm's 2000 whole, a's 3000 half = 1500, carried
	// 1400 over 0..140: 40 s of 140 = 400.
	if !near(w.PickupM, 500) || !near(w.RiderM, 3900) || !near(w.DeadheadShare, 500.0/4400) {
		t.Fatalf("pickup %v m, rider %v m, deadhead %v; want 500, 3900, %v", w.PickupM, w.RiderM, w.DeadheadShare, 500.0/4400)
	}
	// Driver time: 100 s at 100 online twice; busy 30, 50; available 60, 40.
	if !near(w.OnlineDriverS, 20000) || !near(w.Utilisation, 0.4) || !near(w.IdleShare, 0.5) {
		t.Fatalf("online %v driver-s, utilisation %v, idle %v; want 20000, 0.4, 0.5", w.OnlineDriverS, w.Utilisation, w.IdleShare)
	}
	// 4 drop-offs (3 + 1 carried) in 20000/3600 driver-hours.
	if !near(w.TripsPerDriverHour, 4/(20000.0/3600)) {
		t.Fatalf("trips per driver-hour %v, want %v", w.TripsPerDriverHour, 4/(20000.0/3600))
	}
	if w.WaitToPickupS.Count != 2 || w.WaitToPickupS.Mean != 90 || w.TimeToMatchMs.Mean != 700 || w.ServiceMs.Mean != 200 || w.PickupETAS.Mean != 60 {
		t.Fatalf("wait %+v, match %+v, service %+v, eta %+v", w.WaitToPickupS, w.TimeToMatchMs, w.ServiceMs, w.PickupETAS)
	}
}

// TestMeasureEmpty: no requests, no drivers: zeros, no NaN (the JSON
// encoder refuses NaN).
func TestMeasureEmpty(t *testing.T) {
	w := Measure(Window{FromSimS: 0, ToSimS: 60}, nil, nil)
	for name, v := range map[string]float64{"match": w.MatchRate, "accept": w.AcceptanceRate, "deadhead": w.DeadheadShare,
		"util": w.Utilisation, "idle": w.IdleShare, "trips/h": w.TripsPerDriverHour} {
		if v != 0 {
			t.Errorf("%s = %v, want 0", name, v)
		}
	}
}

// TestZoneKPIs: per zone of the pickup, districts and places apart;
// shares of the districts; supply averaged after the warm-up only.
func TestZoneKPIs(t *testing.T) {
	zones := []ZoneInfo{{"district-a", "A", "district"}, {"district-b", "B", "district"}, {"airport", "Airport", "airport"}}
	w := Window{FromSimS: 60, ToSimS: 180} // 2 minutes
	at := func(zone, place int, assigned bool, eta float64) TripFact {
		f := fact(100, zone)
		f.Place, f.Assigned, f.ETAS = place, assigned, eta
		f.Unmatched = !assigned
		return f
	}
	facts := []TripFact{
		at(0, -1, true, 10), at(0, -1, true, 30), at(0, -1, false, nan),
		at(1, 2, true, 100), // district B, at the airport
		fact(10, 1),         // in the warm-up
	}
	supply := &Zones{Zones: make([]Zone, 3), Series: []ZoneSample{
		{T: 1, Available: []int64{1000, 1000, 1000}}, // 10 s simulated: warm-up
		{T: 7, Available: []int64{30, 10, 4}},
		{T: 8, Available: []int64{50, 10, 6}},
	}}
	got := ZoneKPIs(zones, w, facts, supply, 10)
	a, b, ap := got[0], got[1], got[2]
	if a.Requests != 3 || a.Assigned != 2 || a.Unmatched != 1 || !near(a.UnmatchedShare, 1.0/3) || a.RequestsPerMin != 1.5 || a.ETAMeanS != 20 {
		t.Fatalf("district A: %+v", a)
	}
	if b.Requests != 1 || ap.Requests != 1 || ap.ETAMeanS != 100 || !near(a.DemandShare, 0.75) || !near(b.DemandShare, 0.25) {
		t.Fatalf("district B %+v, airport %+v", b, ap)
	}
	if a.AvailableMean != 40 || b.AvailableMean != 10 || ap.AvailableMean != 5 || !near(a.SupplyShare, 0.8) || !near(b.SupplyShare, 0.2) {
		t.Fatalf("supply: A %+v, B %+v, airport %+v", a, b, ap)
	}
	if noSupply := ZoneKPIs(zones, w, facts, nil, 10); noSupply[0].AvailableMean != -1 {
		t.Fatalf("without fence counts the supply is %v, want -1 (unknown)", noSupply[0].AvailableMean)
	}
}

// TestClockTicks labels a time-of-day axis.
func TestClockTicks(t *testing.T) {
	ticks := clockTicks{}.Ticks(8*3600, 8*3600+600)
	var labels []string
	for _, tk := range ticks {
		if tk.Label != "" {
			labels = append(labels, tk.Label)
		}
	}
	if len(labels) < 3 || labels[0] != "08:00" || labels[len(labels)-1] != "08:10" {
		t.Fatalf("labels %v, want 08:00 .. 08:10", labels)
	}
	if got := ClockTime(23*3600 + 59*60 + 120); got != "00:01" {
		t.Fatalf("past midnight: %s, want 00:01", got)
	}
	short := clockTicks{}.Ticks(8*3600, 8*3600+30)
	if short[0].Label != "08:00:00" {
		t.Fatalf("a 30 s axis starts at %q, want 08:00:00", short[0].Label)
	}
}

// TestCompareSkipsWhatOneRunLacks: a KPI one run has not (an API method it
// never called) is left out of the comparison, which stays valid JSON.
func TestCompareSkipsWhatOneRunLacks(t *testing.T) {
	a, b := sampleResult("greedy", 100), sampleResult("batch", 100)
	a.Latency["GetTrip"] = Latency{Count: 1, P99: 2}
	c := Compare([]string{"greedy", "batch"}, []*Result{a, b})
	for _, d := range c.Deltas {
		if d.KPI == "GetTrip p99" {
			t.Fatalf("GetTrip compared: %+v", d)
		}
	}
	var buf strings.Builder
	if err := WriteJSON(&buf, c); err != nil {
		t.Fatal(err)
	}
}

package simulator

import (
	"math"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	geomatchv1 "github.com/geomatch/geomatch/proto/geomatch/v1"
	"github.com/geomatch/geomatch/simulator/city"
	"github.com/geomatch/geomatch/simulator/report"
)

// TestSteadyBusy checks Little's law by hand, the cap, and that the fixed
// point holds with the pickup drive.
func TestSteadyBusy(t *testing.T) {
	inf := math.Inf(1)
	for _, tc := range []struct {
		name        string
		rate, trip  float64
		online      int
		area, speed float64
		want        int
	}{
		{"no pickup drive: rate × trip", 0.5, 200, 1000, 1e6, inf, 100},
		{"capped at 90% of the fleet", 10, 200, 1000, 1e6, inf, 900},
		{"no demand", 0, 200, 1000, 1e6, 10, 0},
		{"no fleet", 1, 200, 0, 1e6, 10, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := steadyBusy(tc.rate, tc.trip, tc.online, tc.area, tc.speed); got != tc.want {
				t.Fatalf("steadyBusy = %d, want %d", got, tc.want)
			}
		})
	}
	// With a pickup drive: busy = rate × (trip + detour·0.5/√(free/area)/speed).
	rate, trip, online, area, speed := 1.0, 300.0, 2000, 3600.0*20000, 8.0
	busy := float64(steadyBusy(rate, trip, online, area, speed))
	pickup := streetDetour * 0.5 / math.Sqrt((float64(online)-busy)/area) / speed
	if want := rate * (trip + pickup); math.Abs(busy-want) > 1 {
		t.Fatalf("busy %v, but rate × (trip + pickup %.1f s) = %v", busy, pickup, want)
	}
}

// TestResidualIsLengthBiased: the time left of a trip in progress at a
// random moment has mean E[D²] / 2E[D] (here trips of 10 and 30 s: 12.5 s).
func TestResidualIsLengthBiased(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	lengths := []float64{10, 30}
	sum, picked := 0.0, [2]int{}
	const n = 200000
	for range n {
		i, left := residual(rng, lengths)
		if left < 0 || left > lengths[i] {
			t.Fatalf("residual %v of a %v s trip", left, lengths[i])
		}
		picked[i]++
		sum += left
	}
	if mean := sum / n; math.Abs(mean-12.5) > 0.1 {
		t.Fatalf("mean residual %.2f s, want 12.5", mean)
	}
	if share := float64(picked[1]) / n; math.Abs(share-0.75) > 0.01 {
		t.Fatalf("the 30 s trip was picked %.3f of the time, want 0.75", share)
	}
	if i, left := residual(rng, nil); i != 0 || left != 0 {
		t.Fatalf("no trips: %d, %v", i, left)
	}
}

// TestWarmupFor: the warm-up asked for, cut to half a short window.
func TestWarmupFor(t *testing.T) {
	for _, tc := range []struct {
		asked time.Duration
		simS  float64
		want  float64
		note  bool
	}{
		{2 * time.Minute, 600, 120, false},
		{0, 600, 0, false},
		{2 * time.Minute, 120, 60, true},
	} {
		got, note := warmupFor(tc.asked, tc.simS)
		if got != tc.want || (note != "") != tc.note {
			t.Fatalf("warmupFor(%v, %v) = %v, %q; want %v (note %v)", tc.asked, tc.simS, got, note, tc.want, tc.note)
		}
	}
}

// TestZoneLocator finds the district and the place of positions: every
// intersection lies in one district or in the park (the hole of its
// district); the places' centres lie in their place.
func TestZoneLocator(t *testing.T) {
	g, _ := testCity(t, "nyc")
	zones := city.Zones(g)
	l, err := newZoneLocator(zones)
	if err != nil {
		t.Fatal(err)
	}
	for i, n := range g.Nodes {
		if i%37 != 0 {
			continue
		}
		zone, place := l.locate(n.Pos.Lat, n.Pos.Lng)
		inPark := place >= 0 && zones[place].Kind == city.ZonePark
		if (zone < 0 && !inPark) || (zone >= 0 && zones[zone].Kind != city.ZoneDistrict) {
			t.Fatalf("intersection %d at %v is in no district (zone %d, place %d)", i, n.Pos, zone, place)
		}
	}
	for i, z := range zones {
		if !z.IsCircle() {
			continue
		}
		if _, place := l.locate(z.Center.Lat, z.Center.Lng); place != i {
			t.Fatalf("the centre of %s is in place %d, want %d", z.Name, place, i)
		}
	}
	if zone, place := l.locate(0, 0); zone != -1 || place != -1 {
		t.Fatalf("a point far away is in zone %d, place %d", zone, place)
	}
}

// TestLedgerFacts follows a trip through the ledger's hooks and checks
// the facts the window's KPIs are computed from: the wait to pickup, the
// service time (time to match less the think time), the first offer
// (which may beat the RequestRide answer), the legs.
func TestLedgerFacts(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 8, 0, 0, 0, time.UTC)
	l := newLedger(10)
	wall, sim := t0, 100.0
	l.now = func() (time.Time, float64) { return wall, sim }
	l.locate = func(lat, lng float64) (int, int) { return 3, -1 }
	req := &geomatchv1.RequestRideRequest{RequestId: "r1"}
	l.request(req)
	l.offered("t1", t0.Add(40*time.Millisecond)) // before the answer: remembered
	l.add(trip("t1", requested, ""), "r1", "rider", report.Pickup{})
	l.offered("t1", t0.Add(900*time.Millisecond)) // a later offer: not the first
	l.thought("t1", 300*time.Millisecond)         // a decline
	l.thought("t1", 200*time.Millisecond)         // the acceptance
	l.matched("t1", 700)
	l.matched("t1", 9999) // the first one counts
	l.observe(trip("t1", assigned, "d1"))
	l.routed("t1", 50, report.Leg{FromSimS: 107, ToSimS: 160, Meters: 400})
	l.pickedUp("t1", 155, report.Leg{FromSimS: 155, ToSimS: 400, Meters: 3000})
	l.droppedOff("t1", 390)

	// A trip whose rider gave up, and one still waiting at the end.
	l.request(&geomatchv1.RequestRideRequest{RequestId: "r2"})
	l.add(trip("t2", requested, ""), "r2", "rider", report.Pickup{})
	l.ended("t2", endGaveUp)
	l.observe(trip("t2", cancelled, ""))
	l.request(&geomatchv1.RequestRideRequest{RequestId: "r3"})
	l.add(trip("t3", requested, ""), "r3", "rider", report.Pickup{})
	l.ended("t3", endCancelledAtEnd)
	l.observe(trip("t3", cancelled, ""))

	byTrip := map[string]report.TripFact{}
	for id, r := range l.trips {
		byTrip[id] = factOf(r)
	}
	f := byTrip["t1"]
	if f.RequestedSimS != 100 || f.Zone != 3 || !f.Assigned || f.Unmatched || f.WaitingAtEnd {
		t.Fatalf("t1: %+v", f)
	}
	if f.MatchMs != 700 || f.ServiceMs != 200 || f.FirstOfferMs != 40 || f.WaitS != 55 || f.ETAS != 50 {
		t.Fatalf("t1: match %v, service %v, first offer %v, wait %v, eta %v; want 700, 200, 40, 55, 50", f.MatchMs, f.ServiceMs, f.FirstOfferMs, f.WaitS, f.ETAS)
	}
	if f.Pickup != (report.Leg{FromSimS: 107, ToSimS: 155, Meters: 400}) || f.Ride != (report.Leg{FromSimS: 155, ToSimS: 390, Meters: 3000}) {
		t.Fatalf("t1 legs: %+v, %+v", f.Pickup, f.Ride)
	}
	if g := byTrip["t2"]; !g.Unmatched || g.WaitingAtEnd || !math.IsNaN(g.WaitS) || !math.IsNaN(g.MatchMs) {
		t.Fatalf("t2 (gave up): %+v", g)
	}
	if w := byTrip["t3"]; w.Unmatched || !w.WaitingAtEnd {
		t.Fatalf("t3 (waiting at the end): %+v", w)
	}
	if len(l.facts()) != 3 {
		t.Fatalf("%d facts, want 3", len(l.facts()))
	}
}

// TestEarlyOffersAreBounded: offers of trips the run never learns of do
// not grow the ledger without bound.
func TestEarlyOffersAreBounded(t *testing.T) {
	l := newLedger(10)
	for i := range maxEarlyOffers + 100 {
		l.offered("x"+strings.Repeat("y", i%3)+string(rune('a'+i%26))+time.Duration(i).String(), time.Now())
	}
	if len(l.earlyOffers) > maxEarlyOffers {
		t.Fatalf("%d early offers kept, want at most %d", len(l.earlyOffers), maxEarlyOffers)
	}
}

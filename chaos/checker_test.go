package chaos

import (
	"bytes"
	"reflect"
	"strings"
	"testing"
	"time"
)

func ms(n int) time.Duration { return time.Duration(n) * time.Millisecond }

// cleanHistory is a small run with nothing wrong: two drivers streaming
// (d1 near the query, d2 far), a query that sees d1 fresh, a trip
// assigned to r1 and completed, another trip for r1 after it, and the
// final readback.
func cleanHistory() []Op {
	return []Op{
		{Kind: KindStream, Driver: "d1", Start: 0, End: ms(10_000), Outcome: OK},
		{Kind: KindStream, Driver: "d2", Start: 0, End: ms(10_000), Outcome: OK},
		{Kind: KindUpdate, Driver: "d1", TS: 1000, Lat: 40.7, Lng: -74.0, Start: ms(100), End: ms(150), Outcome: OK},
		{Kind: KindUpdate, Driver: "d1", TS: 2000, Lat: 40.7001, Lng: -74.0, Start: ms(1100), End: ms(1150), Outcome: OK},
		{Kind: KindUpdate, Driver: "d2", TS: 1000, Lat: 41.5, Lng: -74.0, Start: ms(100), End: ms(150), Outcome: OK},
		{Kind: KindNearby, Lat: 40.7, Lng: -74.0, RadiusM: 1000, Limit: 10, Start: ms(1200), End: ms(1210), Outcome: OK,
			Results: []Seen{{Driver: "d1", TS: 2000, Lat: 40.7001, Lng: -74.0}}},
		{Kind: KindRide, Trip: "t1", Start: ms(2000), End: ms(2010), Outcome: OK},
		{Kind: KindAnswer, Driver: "r1", Trip: "t1", Start: ms(2100), End: ms(2110), Outcome: OK},
		{Kind: KindTrip, Trip: "t1", Driver: "r1", State: StateAssigned, Start: ms(2200), End: ms(2210), Outcome: OK},
		{Kind: KindTrip, Trip: "t1", Driver: "r1", State: StatePickedUp, Start: ms(3000), End: ms(3010), Outcome: OK},
		{Kind: KindTrip, Trip: "t1", Driver: "r1", State: StateCompleted, Start: ms(4000), End: ms(4010), Outcome: OK},
		{Kind: KindRide, Trip: "t2", Start: ms(4100), End: ms(4110), Outcome: OK},
		{Kind: KindTrip, Trip: "t2", Driver: "r1", State: StateAssigned, Start: ms(4200), End: ms(4210), Outcome: OK},
		{Kind: KindTrip, Trip: "t2", Driver: "r1", State: StateCompleted, Start: ms(5000), End: ms(5010), Outcome: OK},
		{Kind: KindFault, Node: "m1", Detail: "sigkill", Start: ms(1000), End: ms(1000), Outcome: OK},
		{Kind: KindReadback, Driver: "d1", TS: 2000, Start: ms(9000), End: ms(9010), Outcome: OK},
		{Kind: KindReadback, Driver: "d2", TS: 1000, Start: ms(9000), End: ms(9010), Outcome: OK},
	}
}

// setReadback makes the final readback of driver find ts (0: not found).
func setReadback(h []Op, driver string, ts int64) []Op {
	for i := range h {
		if h[i].Kind == KindReadback && h[i].Driver == driver {
			h[i].TS = ts
		}
	}
	return h
}

// TestCheckFlagsPlantedViolations feeds the checker histories with one
// planted violation each: it must find exactly that one (a checker that
// cannot fail proves nothing), and nothing in the clean history.
func TestCheckFlagsPlantedViolations(t *testing.T) {
	cases := []struct {
		name  string
		plant func([]Op) []Op
		want  string // "" for none
	}{
		{"clean", func(h []Op) []Op { return h }, ""},
		{"double assignment", func(h []Op) []Op {
			// t2 assigned to r1 while t1 is still live (before its pickup).
			return append(h,
				Op{Kind: KindRide, Trip: "t3", Start: ms(2300), End: ms(2310), Outcome: OK},
				Op{Kind: KindTrip, Trip: "t3", Driver: "r1", State: StateAssigned, Start: ms(2400), End: ms(2410), Outcome: OK},
				Op{Kind: KindTrip, Trip: "t3", Driver: "r1", State: StatePickedUp, Start: ms(2600), End: ms(2610), Outcome: OK},
				Op{Kind: KindTrip, Trip: "t3", Driver: "r1", State: StateCompleted, Start: ms(6000), End: ms(6010), Outcome: OK})
		}, VDoubleAssignment},
		{"lost trip", func(h []Op) []Op {
			return append(h, Op{Kind: KindTrip, Trip: "t2", State: StateNotFound, Start: ms(8000), End: ms(8010), Outcome: OK})
		}, VLostTrip},
		{"lost update", func(h []Op) []Op {
			// d2's acknowledged ts=3000 is neither held (the readback finds 1000)
			// nor superseded.
			return append(h, Op{Kind: KindUpdate, Driver: "d2", TS: 3000, Lat: 41.5, Lng: -74.0001, Start: ms(3000), End: ms(3050), Outcome: OK})
		}, VLostUpdate},
		{"lost update: driver gone", func(h []Op) []Op {
			return setReadback(h, "d2", 0)
		}, VLostUpdate},
		{"stale answer", func(h []Op) []Op {
			// d1's ts=2000 was acknowledged at 1150 ms; an answer begun at
			// 5000 ms still shows ts=1000, a second older.
			h = append(setReadback(h, "d1", 2500), Op{Kind: KindUpdate, Driver: "d1", TS: 2500, Lat: 40.7002, Lng: -74.0, Start: ms(2500), End: ms(2550), Outcome: OK})
			return append(h, Op{Kind: KindNearby, Lat: 40.7, Lng: -74.0, RadiusM: 1000, Limit: 10, Start: ms(5000), End: ms(5010), Outcome: OK,
				Results: []Seen{{Driver: "d1", TS: 1000, Lat: 40.7, Lng: -74.0}}})
		}, VStaleAnswer},
		{"phantom position", func(h []Op) []Op {
			return append(h, Op{Kind: KindNearby, Lat: 40.7, Lng: -74.0, RadiusM: 1000, Limit: 10, Start: ms(5000), End: ms(5010), Outcome: OK,
				Results: []Seen{{Driver: "d1", TS: 7777, Lat: 40.7, Lng: -74.0}}})
		}, VPhantomPosition},
		{"incomplete answer", func(h []Op) []Op {
			return append(h, Op{Kind: KindNearby, Lat: 40.7, Lng: -74.0, RadiusM: 1000, Limit: 10, Start: ms(5000), End: ms(5010), Outcome: OK})
		}, VIncompleteAnswer},
		{"rejected update", func(h []Op) []Op {
			return append(h, Op{Kind: KindUpdate, Driver: "d2", TS: 900, Start: ms(50), End: ms(60), Outcome: Rejected, Code: "REJECT_REASON_UNAVAILABLE"})
		}, VRejectedUpdate},
		{"failed query", func(h []Op) []Op {
			return append(h, Op{Kind: KindNearby, Lat: 40.7, Lng: -74.0, RadiusM: 1000, Limit: 10, Start: ms(5000), End: ms(5010), Outcome: Failed, Code: "Unavailable"})
		}, VFailedQuery},
		{"failed ride", func(h []Op) []Op {
			return append(h, Op{Kind: KindRide, Start: ms(5000), End: ms(9000), Outcome: Failed, Code: "DeadlineExceeded"})
		}, VFailedRide},
		{"stream ended", func(h []Op) []Op {
			return append(h, Op{Kind: KindStream, Driver: "d3", Start: ms(0), End: ms(5000), Outcome: Failed, Code: "DeadlineExceeded"})
		}, VStreamEnded},
		{"stranded trip", func(h []Op) []Op {
			return append(h,
				Op{Kind: KindRide, Trip: "t9", Start: ms(100), End: ms(110), Outcome: OK},
				Op{Kind: KindTrip, Trip: "t9", State: StateRequested, Start: ms(30_000), End: ms(30_010), Outcome: OK})
		}, VStrandedTrip},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			res := Check(c.plant(cleanHistory()), CheckConfig{})
			if c.want == "" {
				if !res.OK() {
					t.Fatalf("clean history flagged: %+v", res.Violations)
				}
				return
			}
			if len(res.Violations) != 1 || res.Violations[0].Kind != c.want || res.Violations[0].Count != 1 {
				t.Fatalf("want exactly one %s, got %+v", c.want, res.Violations)
			}
			if len(res.Violations[0].Examples) != 1 || res.Violations[0].Examples[0] == "" {
				t.Fatalf("no example for %s: %+v", c.want, res.Violations[0])
			}
		})
	}
}

// TestCheckToleratesWhatIsAllowed: things that look like violations but
// are not — an unacknowledged update lost, a position superseded by a
// later update, a flagged partial answer leaving a driver out, a stale
// position within the tolerated age, an unavailable ride, a driver whose
// newer update was in flight during the query.
func TestCheckToleratesWhatIsAllowed(t *testing.T) {
	h := setReadback(cleanHistory(), "d1", 2500)
	h = append(h,
		// Sent but never acknowledged (its stream broke): may be lost.
		Op{Kind: KindUpdate, Driver: "d2", TS: 5000, Lat: 41.5, Lng: -74.0, Start: ms(5000), End: ms(6000), Outcome: Unknown},
		// Flagged partial, d1 left out.
		Op{Kind: KindNearby, Lat: 40.7, Lng: -74.0, RadiusM: 1000, Limit: 10, Start: ms(5000), End: ms(5010), Outcome: Partial, Missing: []string{"872a1072fffffff"}},
		// Shows d1 500 ms older than acknowledged: within the default 1 s.
		Op{Kind: KindUpdate, Driver: "d1", TS: 2500, Lat: 40.7002, Lng: -74.0, Start: ms(2500), End: ms(2550), Outcome: OK},
		Op{Kind: KindNearby, Lat: 40.7, Lng: -74.0, RadiusM: 1000, Limit: 10, Start: ms(2600), End: ms(2610), Outcome: OK,
			Results: []Seen{{Driver: "d1", TS: 2000, Lat: 40.7001, Lng: -74.0}}},
		Op{Kind: KindRide, Start: ms(5000), End: ms(5100), Outcome: Failed, Code: "Unavailable"},
		// d1 sends ts=2600 before the query ends: the answer may leave its
		// older position out.
		Op{Kind: KindUpdate, Driver: "d1", TS: 2600, Lat: 45, Lng: -74.0, Start: ms(2700), End: ms(2800), Outcome: Rejected, Code: "REJECT_REASON_STALE"},
		Op{Kind: KindNearby, Lat: 40.7, Lng: -74.0, RadiusM: 1000, Limit: 10, Start: ms(2650), End: ms(2750), Outcome: OK},
	)
	res := Check(h, CheckConfig{})
	for _, v := range res.Violations {
		if v.Kind != VRejectedUpdate { // the planted stale rejection
			t.Errorf("flagged %s: %v", v.Kind, v.Examples)
		}
	}
	if res.Stats.QueriesPartial != 1 || res.Stats.RidesUnavailable != 1 || res.Stats.StaleResults != 1 || res.Stats.PositionAge.Max != 500 {
		t.Fatalf("stats: %+v", res.Stats)
	}
}

// TestServeAgain: the time to serve again is from the fault to the end of
// the last degraded op that ended after it and before the next fault; an
// op begun before a fault and slowed by it is that fault's.
func TestServeAgain(t *testing.T) {
	ops := []Op{
		{Kind: KindFault, Start: ms(1000)},
		{Kind: KindNearby, Start: ms(1500), End: ms(2500), Outcome: Partial},
		{Kind: KindUpdate, Driver: "x", TS: 1, Start: ms(1200), End: ms(3200), Outcome: OK}, // slow ack
		{Kind: KindFault, Start: ms(10_000)},
	}
	res := Check(ops, CheckConfig{})
	if q := res.Stats.ServeAgain; q.N != 2 || q.Max != 2200 || q.P50 != 0 {
		t.Fatalf("serve again: %+v", q)
	}
	// A slow ack begun just before the second fault ends 1.5 s after it:
	// 1.5 s for the second, not 10.5 s for the first.
	ops = append(ops, Op{Kind: KindUpdate, Driver: "y", TS: 1, Start: ms(9_800), End: ms(11_500), Outcome: OK})
	res = Check(ops, CheckConfig{})
	if q := res.Stats.ServeAgain; q.N != 2 || q.Max != 2200 || q.P50 != 1500 {
		t.Fatalf("serve again: %+v, want 2.2 s and 1.5 s", q)
	}
}

// TestHistoryBoundsAndRoundTrips: a history keeps at most its bound (and
// counts the rest), and what it writes reads back as the same ops.
func TestHistoryBoundsAndRoundTrips(t *testing.T) {
	var buf bytes.Buffer
	h := NewHistory(3, &buf)
	ops := cleanHistory()
	for _, op := range ops {
		h.Add(op)
	}
	if err := h.Flush(); err != nil {
		t.Fatal(err)
	}
	kept, dropped := h.Ops()
	if len(kept) != 3 || dropped != len(ops)-3 {
		t.Fatalf("kept %d, dropped %d", len(kept), dropped)
	}
	back, err := ReadHistory(&buf)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(back, ops) {
		t.Fatalf("read back %d ops differing from the %d written", len(back), len(ops))
	}
	if _, err := ReadHistory(strings.NewReader(`{"kind":"update"}` + "\n{")); err == nil || !strings.Contains(err.Error(), "operation 2") {
		t.Fatalf("bad line: %v", err)
	}
}

package trip

import (
	"errors"
	"math"
	"reflect"
	"strings"
	"testing"
	"time"
)

// TestMarshalRoundTrip checks that a trip in every state, with tried
// drivers, comes back from its record equal.
func TestMarshalRoundTrip(t *testing.T) {
	trips := []Trip{
		mustStep(t, newTrip(), offerEv("d1", "o1", 1), declineEv("d1", "o1", 2), offerEv("d2", "o2", 3)),
		mustStep(t, newTrip(), offerEv("d1", "o1", 1), expiredEv("o1", 16), giveUpEv(17)),
		mustStep(t, newTrip(), offerEv("d1", "o1", 1), declineEv("d1", "o1", 2), offerEv("d2", "o2", 3),
			acceptEv("d2", "o2", 4), pickUpEv("d2", 5), driverCancelEv("d2", 6)),
	}
	for s := StateRequested; s <= StateNoDriver; s++ {
		trips = append(trips, tripIn(t, s))
	}
	for _, tr := range trips {
		rec, err := tr.Marshal()
		if err != nil {
			t.Fatalf("%v: %v", tr.State, err)
		}
		back, err := Unmarshal(rec)
		if err != nil {
			t.Fatalf("%v: %v\n%s", tr.State, err, rec)
		}
		if !reflect.DeepEqual(back, tr) {
			t.Errorf("%v: round trip\n got %+v\nwant %+v", tr.State, back, tr)
		}
	}
}

// TestMarshalTimesInUTC checks that times in another zone come back as the
// same instants, in UTC.
func TestMarshalTimesInUTC(t *testing.T) {
	zone := time.FixedZone("UTC+5:30", 5*3600+1800)
	tr := New("t1", "", "r", "", LatLng{}, LatLng{}, t0.In(zone).Add(123456789))
	tr = mustStep(t, tr, Event{Kind: EventOffer, Driver: "d", OfferID: "o", ExpiresAt: t0.Add(time.Hour).In(zone), At: t0.Add(time.Minute).In(zone)})
	rec, err := tr.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	back, err := Unmarshal(rec)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range [][2]time.Time{{back.CreatedAt, tr.CreatedAt}, {back.UpdatedAt, tr.UpdatedAt}, {back.OfferExpiresAt, tr.OfferExpiresAt}} {
		if !p[0].Equal(p[1]) || p[0].Location() != time.UTC {
			t.Errorf("time %v came back as %v", p[1], p[0])
		}
	}
}

// TestRecordFormat pins the record's field names: they are the store's
// format, and renaming one would make stored trips unreadable.
func TestRecordFormat(t *testing.T) {
	tr := mustStep(t, newTrip(), offerEv("d1", "o1", 1), declineEv("d1", "o1", 2), offerEv("d2", "o2", 3))
	rec, err := tr.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	want := `{"v":1,"id":"t1","request_id":"req-1","rider_id":"rider-1","vehicle_class":"car",` +
		`"pickup":{"lat":52.52,"lng":13.405},"dropoff":{"lat":52.5,"lng":13.45},"state":"offered",` +
		`"driver":"d2","offer_id":"o2","offer_expires_at":"2026-03-01T08:00:18Z","pickup_distance_m":420,` +
		`"attempts":2,"tried":["d1"],"declined":1,"created_at":"2026-03-01T08:00:00Z","updated_at":"2026-03-01T08:00:03Z"}`
	if string(rec) != want {
		t.Errorf("record\n got %s\nwant %s", rec, want)
	}
	rec, err = mustStep(t, newTrip(), riderCancelEv(1)).Marshal()
	if err != nil {
		t.Fatal(err)
	}
	want = `{"v":1,"id":"t1","request_id":"req-1","rider_id":"rider-1","vehicle_class":"car",` +
		`"pickup":{"lat":52.52,"lng":13.405},"dropoff":{"lat":52.5,"lng":13.45},"state":"cancelled",` +
		`"reason":"cancelled by rider: changed plans","created_at":"2026-03-01T08:00:00Z","updated_at":"2026-03-01T08:00:01Z"}`
	if string(rec) != want {
		t.Errorf("record\n got %s\nwant %s", rec, want)
	}
}

// TestUnmarshalRejects checks that malformed records, other versions,
// unknown states and records breaking an invariant are refused.
func TestUnmarshalRejects(t *testing.T) {
	const (
		head = `{"v":1,"id":"t1","pickup":{"lat":1,"lng":2},"dropoff":{"lat":1,"lng":2},` +
			`"created_at":"2026-03-01T08:00:00Z","updated_at":"2026-03-01T08:00:00Z",`
	)
	valid := head + `"state":"requested"}`
	if _, err := Unmarshal([]byte(valid)); err != nil {
		t.Fatalf("the base record is refused: %v", err)
	}
	tests := []struct{ name, rec, says string }{
		{"empty", ``, "unmarshal"},
		{"not an object", `[1]`, "unmarshal"},
		{"trailing data", valid + `{}`, "unmarshal"},
		{"no version", strings.Replace(valid, `"v":1,`, ``, 1), "version 0"},
		{"future version", strings.Replace(valid, `"v":1,`, `"v":2,`, 1), "version 2"},
		{"no state", head + `"attempts":0}`, "unknown state"},
		{"unknown state", head + `"state":"state(9)"}`, "unknown state"},
		{"unspecified state", head + `"state":"unspecified"}`, "unknown state"},
		{"state in upper case", head + `"state":"REQUESTED"}`, "unknown state"},
		{"state as a number", head + `"state":1}`, "unmarshal"},
		{"no id", strings.Replace(valid, `"id":"t1",`, ``, 1), "no id"},
		{"latitude out of range", strings.Replace(valid, `"lat":1`, `"lat":91`, 1), "pickup"},
		{"offered without offer", head + `"state":"offered","driver":"d1","attempts":1}`, "offer id"},
		{"assigned without driver", head + `"state":"assigned"}`, "without a driver"},
		{"requested with driver", head + `"state":"requested","driver":"d1","attempts":1}`, "with driver"},
		{"attempts not matching tried", head + `"state":"requested","attempts":3,"tried":["a"]}`, "attempts"},
		{"too many attempts", head + `"state":"requested","attempts":11,"tried":["a","b","c","d","e","f","g","h","i","j","k"]}`, "attempts"},
		{"repeated tried driver", head + `"state":"requested","attempts":2,"tried":["a","a"]}`, "twice"},
		{"negative distance", head + `"state":"assigned","driver":"d1","attempts":1,"pickup_distance_m":-1}`, "pickup distance"},
		{"cancelled without reason", head + `"state":"cancelled"}`, "reason"},
		{"reason on a live trip", head + `"state":"requested","reason":"x"}`, "reason"},
		{"updated before created", strings.Replace(valid, `"updated_at":"2026-03-01T08:00:00Z"`, `"updated_at":"2026-03-01T07:00:00Z"`, 1), "updated before"},
		{"bad time", strings.Replace(valid, `"2026-03-01T08:00:00Z"`, `"yesterday"`, 1), "unmarshal"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tr, err := Unmarshal([]byte(tt.rec))
			if err == nil {
				t.Fatalf("accepted: %+v", tr)
			}
			if !strings.Contains(err.Error(), tt.says) {
				t.Errorf("error %q does not say %q", err, tt.says)
			}
			if !reflect.DeepEqual(tr, Trip{}) {
				t.Errorf("returned a trip with the error: %+v", tr)
			}
		})
	}
}

// TestUnmarshalIgnoresUnknownFields checks forward compatibility: a record
// with fields a newer version added still reads.
func TestUnmarshalIgnoresUnknownFields(t *testing.T) {
	rec, err := tripIn(t, StateAssigned).Marshal()
	if err != nil {
		t.Fatal(err)
	}
	rec = append(rec[:len(rec)-1], `,"eta_s":120}`...)
	if _, err := Unmarshal(rec); err != nil {
		t.Errorf("refused a record with a new field: %v", err)
	}
}

// TestMarshalRejectsInvalidTrips checks that Marshal refuses what Unmarshal
// would refuse, and times JSON cannot hold.
func TestMarshalRejectsInvalidTrips(t *testing.T) {
	nan := newTrip()
	nan.Pickup.Lat = math.NaN()
	far := newTrip()
	far.UpdatedAt = time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC)
	for name, tr := range map[string]Trip{"zero": {}, "no id": New("", "", "", "", LatLng{}, LatLng{}, t0), "NaN pickup": nan, "year 10000": far} {
		if _, err := tr.Marshal(); err == nil {
			t.Errorf("%s: marshalled", name)
		}
	}
	if _, err := (Trip{}).Marshal(); !errors.Is(err, ErrInvalid) {
		t.Errorf("zero trip: error %v is not ErrInvalid", err)
	}
}

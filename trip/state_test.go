package trip

import (
	"strings"
	"testing"

	geomatchv1 "github.com/geomatch/geomatch/proto/geomatch/v1"
)

// TestStatesMatchTheAPI checks that every State has the number and, in
// lower case without its prefix, the name of geomatch.v1.TripState, so the
// API edge converts with a type conversion.
func TestStatesMatchTheAPI(t *testing.T) {
	if len(geomatchv1.TripState_name) != numStates {
		t.Fatalf("the API has %d trip states, this package %d", len(geomatchv1.TripState_name), numStates)
	}
	for n, name := range geomatchv1.TripState_name {
		want := strings.ToLower(strings.TrimPrefix(name, "TRIP_STATE_"))
		if got := State(n).String(); got != want {
			t.Errorf("State(%d) is %q, the API says %q", n, got, want)
		}
	}
}

// TestStrings checks the names of states and event kinds, in and outside
// their enums.
func TestStrings(t *testing.T) {
	for _, tt := range []struct{ got, want string }{
		{StatePickedUp.String(), "picked_up"},
		{StateNoDriver.String(), "no_driver"},
		{State(8).String(), "state(8)"},
		{EventOfferExpired.String(), "offer_expired"},
		{EventGiveUp.String(), "give_up"},
		{EventKind(0).String(), "event(0)"},
		{EventKind(9).String(), "event(9)"},
	} {
		if tt.got != tt.want {
			t.Errorf("got %q, want %q", tt.got, tt.want)
		}
	}
	for k := EventOffer; k <= EventGiveUp; k++ {
		if strings.HasPrefix(k.String(), "event(") {
			t.Errorf("kind %d has no name", k)
		}
	}
}

// TestFinal checks which states are final.
func TestFinal(t *testing.T) {
	for s := State(0); s < 10; s++ {
		want := s == StateCompleted || s == StateCancelled || s == StateNoDriver
		if s.Final() != want {
			t.Errorf("%v.Final() = %v", s, s.Final())
		}
	}
}

// TestParseState checks that every valid state name parses back and that
// the rest do not.
func TestParseState(t *testing.T) {
	for s := StateRequested; s <= StateNoDriver; s++ {
		if got, ok := parseState(s.String()); !ok || got != s {
			t.Errorf("parseState(%q) = %v, %v", s.String(), got, ok)
		}
	}
	for _, name := range []string{"", "unspecified", "state(8)", "OFFERED", "Offered", "2"} {
		if _, ok := parseState(name); ok {
			t.Errorf("parseState(%q) accepted", name)
		}
	}
}

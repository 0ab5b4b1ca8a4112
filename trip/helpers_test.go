package trip

import (
	"errors"
	"reflect"
	"testing"
	"time"
)

// t0 is the fixtures' creation time.
var t0 = time.Date(2026, 3, 1, 8, 0, 0, 0, time.UTC)

// at returns t0 plus sec seconds.
func at(sec int) time.Time { return t0.Add(time.Duration(sec) * time.Second) }

// newTrip is the fixture trip, just requested.
func newTrip() Trip {
	return New("t1", "req-1", "rider-1", "car", LatLng{52.52, 13.405}, LatLng{52.50, 13.45}, t0)
}

// The well-formed events of the fixtures: each names the driver and offer
// it is about and happens at second sec.
func offerEv(driver, offerID string, sec int) Event {
	return Event{Kind: EventOffer, Driver: driver, OfferID: offerID, ExpiresAt: at(sec + 15), PickupDistanceM: 420, At: at(sec)}
}
func acceptEv(driver, offerID string, sec int) Event {
	return Event{Kind: EventAccept, Driver: driver, OfferID: offerID, At: at(sec)}
}
func declineEv(driver, offerID string, sec int) Event {
	return Event{Kind: EventDecline, Driver: driver, OfferID: offerID, At: at(sec)}
}
func expiredEv(offerID string, sec int) Event {
	return Event{Kind: EventOfferExpired, OfferID: offerID, At: at(sec)}
}
func pickUpEv(driver string, sec int) Event {
	return Event{Kind: EventPickUp, Driver: driver, At: at(sec)}
}
func completeEv(driver string, sec int) Event {
	return Event{Kind: EventComplete, Driver: driver, At: at(sec)}
}
func riderCancelEv(sec int) Event {
	return Event{Kind: EventCancel, Reason: "changed plans", At: at(sec)}
}
func driverCancelEv(driver string, sec int) Event {
	return Event{Kind: EventCancel, ByDriver: true, Driver: driver, Reason: "flat tyre", At: at(sec)}
}
func giveUpEv(sec int) Event {
	return Event{Kind: EventGiveUp, Reason: "no candidates", At: at(sec)}
}

// mustStep applies the events in order and fails the test on a refusal.
func mustStep(tb testing.TB, t Trip, events ...Event) Trip {
	tb.Helper()
	for _, e := range events {
		next, err := t.Step(e)
		if err != nil {
			tb.Fatalf("step %v from %v: %v", e.Kind, t.State, err)
		}
		t = next
	}
	return t
}

// tripIn returns the fixture trip in state s, reached by well-formed events
// (driver d1, offer o1); for StateUnspecified a zero trip with an ID.
func tripIn(tb testing.TB, s State) Trip {
	tb.Helper()
	t := newTrip()
	switch s {
	case StateUnspecified:
		return Trip{ID: "t1"}
	case StateRequested:
		return t
	case StateOffered:
		return mustStep(tb, t, offerEv("d1", "o1", 1))
	case StateAssigned:
		return mustStep(tb, t, offerEv("d1", "o1", 1), acceptEv("d1", "o1", 2))
	case StatePickedUp:
		return mustStep(tb, t, offerEv("d1", "o1", 1), acceptEv("d1", "o1", 2), pickUpEv("d1", 3))
	case StateCompleted:
		return mustStep(tb, t, offerEv("d1", "o1", 1), acceptEv("d1", "o1", 2), pickUpEv("d1", 3), completeEv("d1", 4))
	case StateCancelled:
		return mustStep(tb, t, riderCancelEv(1))
	case StateNoDriver:
		return mustStep(tb, t, giveUpEv(1))
	}
	tb.Fatalf("no fixture for state %v", s)
	return Trip{}
}

// wantRefused checks that err is a *TransitionError for kind in state s and
// that the returned trip is before, unchanged.
func wantRefused(tb testing.TB, before Trip, e Event, got Trip, err error) {
	tb.Helper()
	var te *TransitionError
	if !errors.As(err, &te) {
		tb.Fatalf("%v in %v: got err %v, want a *TransitionError", e.Kind, before.State, err)
	}
	if !errors.Is(err, ErrTransition) {
		tb.Errorf("%v in %v: errors.Is(err, ErrTransition) is false", e.Kind, before.State)
	}
	if te.State != before.State || te.Event != e.Kind || te.Reason == "" {
		tb.Errorf("%v in %v: error %+v does not name the state, event and reason", e.Kind, before.State, te)
	}
	if !reflect.DeepEqual(got, before) {
		tb.Errorf("%v in %v: refused step changed the trip:\n got %+v\nwant %+v", e.Kind, before.State, got, before)
	}
}

package trip

import (
	"reflect"
	"testing"
)

// refused marks a table row whose event Step must refuse.
const refused State = 255

// tableEvents are the columns of the transition table: one well-formed
// event per kind (cancel twice: by the rider and by the driver), each
// naming the fixture's driver d1 and offer o1, so a refusal in the table is
// about the state alone, never about a guard.
var tableEvents = map[string]Event{
	"offer":         {Kind: EventOffer, Driver: "d2", OfferID: "o2", ExpiresAt: at(100), PickupDistanceM: 300, At: at(50)},
	"accept":        acceptEv("d1", "o1", 10),
	"decline":       declineEv("d1", "o1", 10),
	"offer_expired": expiredEv("o1", 10),
	"pick_up":       pickUpEv("d1", 10),
	"complete":      completeEv("d1", 10),
	"cancel/rider":  riderCancelEv(10),
	"cancel/driver": driverCancelEv("d1", 10),
	"give_up":       giveUpEv(10),
}

// transitionTable is the whole state machine: every state a trip can be in
// (and the zero state) against every event. release says the step frees
// the driver the trip held (the caller releases the reservation or puts the
// driver back to available).
var transitionTable = []struct {
	from    State
	event   string
	to      State
	release bool
}{
	// A zero trip is not a trip.
	{StateUnspecified, "offer", refused, false},
	{StateUnspecified, "accept", refused, false},
	{StateUnspecified, "decline", refused, false},
	{StateUnspecified, "offer_expired", refused, false},
	{StateUnspecified, "pick_up", refused, false},
	{StateUnspecified, "complete", refused, false},
	{StateUnspecified, "cancel/rider", refused, false},
	{StateUnspecified, "cancel/driver", refused, false},
	{StateUnspecified, "give_up", refused, false},

	// Requested: waiting for an offer; no driver held.
	{StateRequested, "offer", StateOffered, false},
	{StateRequested, "accept", refused, false},
	{StateRequested, "decline", refused, false},
	{StateRequested, "offer_expired", refused, false},
	{StateRequested, "pick_up", refused, false},
	{StateRequested, "complete", refused, false},
	{StateRequested, "cancel/rider", StateCancelled, false},
	{StateRequested, "cancel/driver", refused, false}, // no driver to cancel
	{StateRequested, "give_up", StateNoDriver, false},

	// Offered: one driver reserved, waiting for the answer.
	{StateOffered, "offer", refused, false}, // one offer at a time
	{StateOffered, "accept", StateAssigned, false},
	{StateOffered, "decline", StateRequested, true},
	{StateOffered, "offer_expired", StateRequested, true},
	{StateOffered, "pick_up", refused, false},
	{StateOffered, "complete", refused, false},
	{StateOffered, "cancel/rider", StateCancelled, true},
	{StateOffered, "cancel/driver", refused, false}, // the offered driver declines
	{StateOffered, "give_up", StateNoDriver, true},

	// Assigned: the driver is on the way.
	{StateAssigned, "offer", refused, false},
	{StateAssigned, "accept", refused, false},
	{StateAssigned, "decline", refused, false},
	{StateAssigned, "offer_expired", refused, false},
	{StateAssigned, "pick_up", StatePickedUp, false},
	{StateAssigned, "complete", refused, false}, // not picked up yet
	{StateAssigned, "cancel/rider", StateCancelled, true},
	{StateAssigned, "cancel/driver", StateCancelled, true},
	{StateAssigned, "give_up", refused, false},

	// Picked up: the rider is in the car.
	{StatePickedUp, "offer", refused, false},
	{StatePickedUp, "accept", refused, false},
	{StatePickedUp, "decline", refused, false},
	{StatePickedUp, "offer_expired", refused, false},
	{StatePickedUp, "pick_up", refused, false},
	{StatePickedUp, "complete", StateCompleted, true},
	{StatePickedUp, "cancel/rider", refused, false}, // too late for the rider
	{StatePickedUp, "cancel/driver", StateCancelled, true},
	{StatePickedUp, "give_up", refused, false},

	// Final states absorb everything.
	{StateCompleted, "offer", refused, false},
	{StateCompleted, "accept", refused, false},
	{StateCompleted, "decline", refused, false},
	{StateCompleted, "offer_expired", refused, false},
	{StateCompleted, "pick_up", refused, false},
	{StateCompleted, "complete", refused, false},
	{StateCompleted, "cancel/rider", refused, false},
	{StateCompleted, "cancel/driver", refused, false},
	{StateCompleted, "give_up", refused, false},

	{StateCancelled, "offer", refused, false},
	{StateCancelled, "accept", refused, false},
	{StateCancelled, "decline", refused, false},
	{StateCancelled, "offer_expired", refused, false},
	{StateCancelled, "pick_up", refused, false},
	{StateCancelled, "complete", refused, false},
	{StateCancelled, "cancel/rider", refused, false},
	{StateCancelled, "cancel/driver", refused, false},
	{StateCancelled, "give_up", refused, false},

	{StateNoDriver, "offer", refused, false},
	{StateNoDriver, "accept", refused, false},
	{StateNoDriver, "decline", refused, false},
	{StateNoDriver, "offer_expired", refused, false},
	{StateNoDriver, "pick_up", refused, false},
	{StateNoDriver, "complete", refused, false},
	{StateNoDriver, "cancel/rider", refused, false},
	{StateNoDriver, "cancel/driver", refused, false},
	{StateNoDriver, "give_up", refused, false},
}

// TestTransitionTableIsExhaustive checks that the table has exactly one row
// for every state (zero included) and every event column, so no pair is
// left to chance.
func TestTransitionTableIsExhaustive(t *testing.T) {
	seen := map[State]map[string]int{}
	for _, row := range transitionTable {
		if _, ok := tableEvents[row.event]; !ok {
			t.Errorf("row %v/%s: no such event column", row.from, row.event)
		}
		if seen[row.from] == nil {
			seen[row.from] = map[string]int{}
		}
		seen[row.from][row.event]++
	}
	kinds := map[EventKind]bool{}
	for _, e := range tableEvents {
		kinds[e.Kind] = true
	}
	for k := EventOffer; k <= EventGiveUp; k++ {
		if !kinds[k] {
			t.Errorf("no event column for kind %v", k)
		}
	}
	for s := StateUnspecified; s <= StateNoDriver; s++ {
		for name := range tableEvents {
			if n := seen[s][name]; n != 1 {
				t.Errorf("state %v, event %s: %d rows, want 1", s, name, n)
			}
		}
	}
}

// TestTransitionTable steps the fixture trip in each state with each
// well-formed event and checks the outcome against the table: the new
// state, whether the held driver is released, or a TransitionError naming
// the state and event with the trip unchanged. The receiver is never
// modified either way.
func TestTransitionTable(t *testing.T) {
	for _, row := range transitionTable {
		t.Run(row.from.String()+"/"+row.event, func(t *testing.T) {
			before := tripIn(t, row.from)
			snapshot := before.Clone()
			e := tableEvents[row.event]
			got, err := before.Step(e)
			if !reflect.DeepEqual(before, snapshot) {
				t.Fatalf("Step modified its receiver")
			}
			if row.to == refused {
				wantRefused(t, before, e, got, err)
				return
			}
			if err != nil {
				t.Fatalf("refused: %v", err)
			}
			if got.State != row.to {
				t.Fatalf("state %v, want %v", got.State, row.to)
			}
			if err := got.Validate(); err != nil {
				t.Errorf("result invalid: %v", err)
			}
			if !got.UpdatedAt.Equal(e.At) {
				t.Errorf("UpdatedAt %v, want the event's %v", got.UpdatedAt, e.At)
			}
			released := ReleasedDriver(before, got)
			if row.release != (released != "") {
				t.Errorf("released driver %q, want release=%v", released, row.release)
			}
			if released != "" && released != before.HeldDriver() {
				t.Errorf("released %q, but the trip held %q", released, before.HeldDriver())
			}
		})
	}
}

// TestUnknownEventKindsRefused checks that kinds outside the enum are
// refused in every state.
func TestUnknownEventKindsRefused(t *testing.T) {
	for s := StateUnspecified; s <= StateNoDriver; s++ {
		for _, k := range []EventKind{0, EventGiveUp + 1, 255} {
			before := tripIn(t, s)
			e := Event{Kind: k, Driver: "d1", OfferID: "o1", At: at(10)}
			got, err := before.Step(e)
			wantRefused(t, before, e, got, err)
		}
	}
}

// TestUnknownStateRefused checks that a trip whose state is outside the enum
// refuses every event.
func TestUnknownStateRefused(t *testing.T) {
	before := newTrip()
	before.State = StateNoDriver + 1
	for _, e := range tableEvents {
		got, err := before.Step(e)
		wantRefused(t, before, e, got, err)
	}
}

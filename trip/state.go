package trip

import "strconv"

// State is where a trip is in its lifecycle. The numeric values equal the
// public enum geomatch.v1.TripState, so the API edge converts with a plain
// type conversion.
type State uint8

// The trip states. StateUnspecified is the zero value of a Trip that was not
// made by New; Step refuses every event in it.
const (
	// StateUnspecified is no state: a zero Trip.
	StateUnspecified State = 0
	// StateRequested is a trip waiting for a driver: no offer is pending.
	StateRequested State = 1
	// StateOffered is a trip offered to one reserved driver, waiting for the
	// answer or the offer's expiry.
	StateOffered State = 2
	// StateAssigned is a trip whose driver accepted and is on the way.
	StateAssigned State = 3
	// StatePickedUp is a trip whose rider is in the car.
	StatePickedUp State = 4
	// StateCompleted is a trip whose rider was dropped off. Final.
	StateCompleted State = 5
	// StateCancelled is a trip cancelled by the rider or the driver. Final.
	StateCancelled State = 6
	// StateNoDriver is a trip that ran out of candidates or attempts. Final.
	StateNoDriver State = 7
)

// numStates is one past the largest valid State.
const numStates = 8

var stateNames = [numStates]string{
	StateUnspecified: "unspecified",
	StateRequested:   "requested",
	StateOffered:     "offered",
	StateAssigned:    "assigned",
	StatePickedUp:    "picked_up",
	StateCompleted:   "completed",
	StateCancelled:   "cancelled",
	StateNoDriver:    "no_driver",
}

// String returns the state's name in snake case ("picked_up"), or
// "state(N)" for a value outside the enum. The names are also the stable
// names of the encoded record.
func (s State) String() string {
	if s < numStates {
		return stateNames[s]
	}
	return "state(" + strconv.Itoa(int(s)) + ")"
}

// Final reports whether s is a final state (completed, cancelled,
// no_driver): a trip in it refuses every event.
func (s State) Final() bool {
	return s == StateCompleted || s == StateCancelled || s == StateNoDriver
}

// valid reports whether s is one of the seven states a trip can be in.
func (s State) valid() bool {
	return s >= StateRequested && s <= StateNoDriver
}

// parseState is the inverse of String for the valid states; it refuses
// "unspecified" and unknown names.
func parseState(name string) (State, bool) {
	for s := StateRequested; s <= StateNoDriver; s++ {
		if stateNames[s] == name {
			return s, true
		}
	}
	return StateUnspecified, false
}

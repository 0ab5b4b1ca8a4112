package trip

import (
	"errors"
	"fmt"
)

// ErrTransition is the error every refused transition matches with
// errors.Is.
var ErrTransition = errors.New("invalid trip transition")

// TransitionError is Step's refusal: the event is not allowed in the trip's
// state, or a guard failed (wrong driver, wrong offer, repeat driver,
// attempts exhausted...). The trip is unchanged.
type TransitionError struct {
	// State is the trip's state when the event was refused.
	State State
	// Event is the refused event's kind.
	Event EventKind
	// Reason says why, e.g. "accept from driver d2 but the offer is to d1".
	Reason string
}

// Error returns "invalid trip transition: <event> in state <state>: <reason>".
func (e *TransitionError) Error() string {
	return fmt.Sprintf("%v: %v in state %v: %s", ErrTransition, e.Event, e.State, e.Reason)
}

// Unwrap returns ErrTransition.
func (e *TransitionError) Unwrap() error { return ErrTransition }

// refuse builds the TransitionError for event k in state s.
func refuse(s State, k EventKind, format string, args ...any) error {
	return &TransitionError{State: s, Event: k, Reason: fmt.Sprintf(format, args...)}
}

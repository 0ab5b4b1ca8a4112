package trip

import (
	"strconv"
	"time"
)

// EventKind says what happened to a trip.
type EventKind uint8

// The event kinds. Which fields of Event each one reads is listed beside it;
// the others are ignored.
const (
	// EventOffer: a reserved driver is offered the trip (Driver, OfferID,
	// ExpiresAt, PickupDistanceM).
	EventOffer EventKind = iota + 1
	// EventAccept: the offered driver accepted (Driver and OfferID must match
	// the pending offer).
	EventAccept
	// EventDecline: the offered driver declined (Driver and OfferID must
	// match).
	EventDecline
	// EventOfferExpired: the pending offer timed out (OfferID must match;
	// Driver too when it is set).
	EventOfferExpired
	// EventPickUp: the assigned driver picked the rider up (Driver must
	// match).
	EventPickUp
	// EventComplete: the driver dropped the rider off (Driver must match;
	// from picked_up only).
	EventComplete
	// EventCancel: the rider, or with ByDriver the assigned driver (Driver
	// must match), cancels; Reason.
	EventCancel
	// EventGiveUp: no (more) candidates or attempts left: the trip ends as
	// no_driver; Reason.
	EventGiveUp
)

// numEventKinds is one past the largest valid EventKind.
const numEventKinds = 9

var eventNames = [numEventKinds]string{
	EventOffer:        "offer",
	EventAccept:       "accept",
	EventDecline:      "decline",
	EventOfferExpired: "offer_expired",
	EventPickUp:       "pick_up",
	EventComplete:     "complete",
	EventCancel:       "cancel",
	EventGiveUp:       "give_up",
}

// String returns the kind's name in snake case ("offer_expired"), or
// "event(N)" for a value outside the enum.
func (k EventKind) String() string {
	if k >= EventOffer && k < numEventKinds {
		return eventNames[k]
	}
	return "event(" + strconv.Itoa(int(k)) + ")"
}

// Event is one input to Trip.Step. Kind selects the transition; the fields
// it reads are listed on the EventKind constants.
type Event struct {
	// Kind is what happened.
	Kind EventKind
	// Driver is the driver the event is about (offered, answering, driving
	// or cancelling).
	Driver string
	// OfferID identifies an offer: the new one for EventOffer, the pending
	// one for the answers to it.
	OfferID string
	// ExpiresAt is when a new offer lapses (EventOffer).
	ExpiresAt time.Time
	// PickupDistanceM is the offered driver's distance to the pickup, in
	// meters (EventOffer; finite, >= 0).
	PickupDistanceM float64
	// Reason says why the trip ends (EventCancel, EventGiveUp).
	Reason string
	// ByDriver marks an EventCancel made by the driver instead of the rider.
	ByDriver bool
	// At is when the event happened; it becomes the trip's UpdatedAt (which
	// never moves backwards: an earlier or zero At leaves it as it is).
	At time.Time
}

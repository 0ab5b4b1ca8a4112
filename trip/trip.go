package trip

import (
	"slices"
	"time"
)

// MaxAttempts is the hard bound on offers per trip. Dispatch gives up
// earlier, at its configured limit, by sending EventGiveUp; this bound only
// keeps a trip record (and its Tried list) small whatever the caller does.
const MaxAttempts = 10

// LatLng is a position in degrees (WGS84).
type LatLng struct {
	// Lat is the latitude, in [-90, 90].
	Lat float64
	// Lng is the longitude, in [-180, 180].
	Lng float64
}

// Trip is one ride request and its lifecycle. It is a plain value: Step
// returns the next trip and never modifies the one it was called on.
//
// Besides the per-state rules in Validate, every trip made by New and Step
// keeps len(Tried) + (1 if Driver != "" else 0) == Attempts: each offer
// either is the one in Driver or ended in Tried.
type Trip struct {
	// ID identifies the trip.
	ID string
	// RequestID is the rider app's idempotency key for the request.
	RequestID string
	// RiderID is the rider who asked for the trip.
	RiderID string
	// VehicleClass is the class of vehicle asked for.
	VehicleClass string
	// Pickup is where the rider waits.
	Pickup LatLng
	// Dropoff is where the rider goes.
	Dropoff LatLng
	// State is where the trip is in its lifecycle.
	State State
	// Driver is the driver offered the trip (offered) or driving it
	// (assigned, picked_up, completed; kept as a record when an assigned
	// trip is cancelled). Empty in requested and no_driver.
	Driver string
	// OfferID is the pending offer; set only in offered.
	OfferID string
	// OfferExpiresAt is when the pending offer lapses; set only in offered.
	OfferExpiresAt time.Time
	// PickupDistanceM is Driver's distance to the pickup when offered, in
	// meters; 0 when Driver is empty.
	PickupDistanceM float64
	// Attempts is the number of offers made so far, at most MaxAttempts.
	Attempts int
	// Tried lists the drivers whose offer ended without an assignment
	// (declined, expired, or withdrawn by a cancel or give-up), in order. No
	// driver is offered the trip twice.
	Tried []string
	// Declined and Expired count the offers that ended declined by their
	// driver or unanswered in time (the rest of Tried were withdrawn):
	// what a no_driver trip's reason reports.
	Declined, Expired int
	// Reason says why the trip ended; set only in cancelled and no_driver.
	Reason string
	// CreatedAt is when the trip was requested.
	CreatedAt time.Time
	// UpdatedAt is when the trip last changed; never before CreatedAt.
	UpdatedAt time.Time
}

// New returns a trip in StateRequested, created and updated at at.
func New(id, requestID, riderID, vehicleClass string, pickup, dropoff LatLng, at time.Time) Trip {
	return Trip{
		ID:           id,
		RequestID:    requestID,
		RiderID:      riderID,
		VehicleClass: vehicleClass,
		Pickup:       pickup,
		Dropoff:      dropoff,
		State:        StateRequested,
		CreatedAt:    at,
		UpdatedAt:    at,
	}
}

// Clone returns a copy of t that shares no memory with it.
func (t Trip) Clone() Trip {
	t.Tried = slices.Clone(t.Tried)
	return t
}

// HeldDriver returns the driver the trip holds: the reserved driver while
// offered, the driver on the trip while assigned or picked up; "" otherwise.
// A driver the trip holds is not available for other trips.
func (t Trip) HeldDriver() string {
	switch t.State {
	case StateOffered, StateAssigned, StatePickedUp:
		return t.Driver
	}
	return ""
}

// ReleasedDriver returns the driver that before held and after no longer
// holds, "" if none: the driver whose reservation (or trip) the caller must
// release after a successful Step from before to after.
func ReleasedDriver(before, after Trip) string {
	if held := before.HeldDriver(); held != "" && held != after.HeldDriver() {
		return held
	}
	return ""
}

// tried reports whether driver was already offered the trip and let the
// offer go.
func (t Trip) tried(driver string) bool {
	return slices.Contains(t.Tried, driver)
}

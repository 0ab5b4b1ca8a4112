// Package driver is the vocabulary every layer of geomatch shares about a
// driver: its dispatch Status, and the Outcome of one location update on
// its way from a matcher's index back to the client that sent it.
//
// It is defined once, here. The matcher's index (matcher/index), the
// durable store (store), the fleet client (fleet) and the public front door
// (router) use these types; the wire enums (geomatch.v1.DriverStatus,
// geomatch.matcher.v1.Outcome) have the same numeric values, so the gRPC
// layers convert with a plain type conversion, and a test in this package
// pins every equality.
package driver

import "strconv"

// Status is a driver's dispatch status.
type Status uint8

// Driver statuses; the values equal geomatch.v1.DriverStatus.
const (
	// StatusUnspecified on an update keeps the driver's current status
	// (available for a new driver); in a search filter it means any status
	// except offline; in the store it is a driver never seen.
	StatusUnspecified Status = iota
	// StatusAvailable drivers can be offered a trip.
	StatusAvailable
	// StatusReserved drivers hold a pending offer.
	StatusReserved
	// StatusOnTrip drivers are driving a rider.
	StatusOnTrip
	// StatusOffline drivers still report positions but take no trips;
	// filters exclude them unless asked for explicitly.
	StatusOffline
)

// Valid reports whether s is one of the defined statuses.
func (s Status) Valid() bool { return s <= StatusOffline }

// String returns the lower-case name of the status.
func (s Status) String() string {
	switch s {
	case StatusUnspecified:
		return "unspecified"
	case StatusAvailable:
		return "available"
	case StatusReserved:
		return "reserved"
	case StatusOnTrip:
		return "on_trip"
	case StatusOffline:
		return "offline"
	}
	return "Status(" + strconv.Itoa(int(s)) + ")"
}

// Outcome is the final word on one location update. The index decides the
// first five; a matcher adds NotOwner; the fleet client adds Unavailable
// when no matcher answered. The public front door turns every outcome but
// Applied and Duplicate into the client's Rejection.
type Outcome uint8

// Outcomes of an update; the values equal geomatch.matcher.v1.Outcome.
const (
	// Applied: stored (new driver, moved, or changed).
	Applied Outcome = iota + 1
	// Duplicate: same timestamp as the stored one; ignored, not an error
	// (retries are idempotent).
	Duplicate
	// Stale: older than the stored (or tombstoned) timestamp; ignored.
	Stale
	// Full: the node holds as many drivers (or vehicle classes) as it may;
	// refused.
	Full
	// NotOwner: the node does not own the update's shard at the sender's
	// epoch; the sender refreshes its ring and routes the update again.
	NotOwner
	// Invalid: the update breaks an invariant (empty id, position outside
	// the globe or not finite, unknown status, wrong cell); refused,
	// nothing changed.
	Invalid
	// Unavailable: no matcher answered for the update's shard in time
	// (never sent by a matcher; the fleet client's verdict).
	Unavailable
)

// Accepted reports whether the update counts as accepted by the service:
// applied now or before (a duplicate).
func (o Outcome) Accepted() bool { return o == Applied || o == Duplicate }

// String returns the lower-case name of the outcome.
func (o Outcome) String() string {
	switch o {
	case Applied:
		return "applied"
	case Duplicate:
		return "duplicate"
	case Stale:
		return "stale"
	case Full:
		return "full"
	case Invalid:
		return "invalid"
	case NotOwner:
		return "not_owner"
	case Unavailable:
		return "unavailable"
	}
	return "Outcome(" + strconv.Itoa(int(o)) + ")"
}

// Package store is the durable side of geomatch: what must survive a matcher
// crash. It holds driver dispatch state (available / reserved / on_trip /
// offline, with reservation leases and the pending offer), trips as
// versioned opaque records (the dispatch layer owns their schema and state
// machine), the set of unfinished trips for recovery, the last known
// position of every driver grouped by shard (warm-up after a shard moves),
// and a notification bus that carries offers and trip updates to whichever
// router holds a driver's or rider's stream.
//
// Every state change is a compare-and-set: a driver moves only from the state
// the caller names (a reservation only from available or an expired lease;
// a release or a trip start only by the trip that holds it), and a trip
// record is replaced only at the version the caller read. Two matchers that
// both believe they own a shard during a ring change can therefore never
// reserve the same driver: one of the two atomic reservations fails with
// ErrConflict.
//
// Two implementations: Memory (the embedded default of `geomatch dev`) and
// Redis (go-redis; every script touches one key, so it also runs on Redis
// Cluster). Both pass the same conformance suite (storetest).
package store

import (
	"context"
	"errors"
	"time"

	"github.com/geomatch/geomatch/driver"
)

// Errors callers branch on.
var (
	// ErrConflict: the compare-and-set failed; the state was not what the
	// caller expected. Errors wrapping it may carry the current state.
	ErrConflict = errors.New("state changed concurrently")
	// ErrNotFound: no such trip.
	ErrNotFound = errors.New("not found")
)

// DriverStatus is a driver's dispatch status (package driver holds the one
// definition; the store never holds StatusUnknown, which reads as a driver
// never seen).
type DriverStatus = driver.Status

// Driver statuses, as package driver defines them.
const (
	StatusUnknown   = driver.StatusUnspecified
	StatusAvailable = driver.StatusAvailable
	StatusReserved  = driver.StatusReserved
	StatusOnTrip    = driver.StatusOnTrip
	StatusOffline   = driver.StatusOffline
)

// Offer is a trip offered to a reserved driver, kept with the reservation
// so a driver app that reconnects gets it again.
type Offer struct {
	ID              string    `json:"id"`
	TripID          string    `json:"trip_id"`
	ExpiresAt       time.Time `json:"expires_at"`
	PickupDistanceM float64   `json:"pickup_distance_m"`
	// Trip is the trip as offered (the dispatch layer's encoding).
	Trip []byte `json:"trip,omitempty"`
}

// Driver is the durable dispatch state of one driver.
type Driver struct {
	ID string
	// Status is the effective status: a reservation whose lease has passed
	// reads as available.
	Status DriverStatus
	// TripID is the trip holding the driver (reserved or on_trip).
	TripID string
	// LeaseUntil is when a reservation lapses.
	LeaseUntil time.Time
	// Offer is the pending offer of a reserved driver, if any.
	Offer *Offer
	// Version increases with every change.
	Version uint64
}

// TripRecord is one trip as stored: an opaque encoding plus what the store
// needs to index it.
type TripRecord struct {
	ID string
	// Version is the version read; UpdateTrip writes Version+1 only if the
	// stored version still equals Version.
	Version uint64
	// Final marks trips that will not change any more (completed,
	// cancelled, no driver); they leave the active set.
	Final bool
	// Data is the dispatch layer's encoding of the trip.
	Data []byte
}

// Position is the last known position of a driver, with what a new owner
// of its shard needs to serve it before its next report.
type Position struct {
	DriverID    string
	Lat, Lng    float64
	TimestampMs int64
	// Status is the driver's app-reported status (a geomatchv1.DriverStatus
	// value; 0 when unknown).
	Status int32
	// VehicleClass is the driver's vehicle class, "" when none.
	VehicleClass string
}

// EventKind says what an event carries.
type EventKind uint8

// Event kinds.
const (
	// EventOffer: a driver has a new pending offer (Data: the offer).
	EventOffer EventKind = iota + 1
	// EventTrip: a trip changed (Data: the trip record's Data).
	EventTrip
)

// Event is a notification on the bus. Delivery is at most once and
// best-effort; the durable state is the truth (a reconnecting driver reads
// its pending offer from its Driver record).
type Event struct {
	Kind     EventKind
	DriverID string
	TripID   string
	Data     []byte
}

// Store is the durable state. Implementations are safe for concurrent use.
type Store interface {
	// Driver returns the driver's state; a driver the store has never seen
	// is available at version 0.
	Driver(ctx context.Context, id string) (Driver, error)
	// Reserve moves the driver from available (or a lapsed reservation) to
	// reserved for tripID until now+lease, atomically. ErrConflict when the
	// driver is reserved by a live lease, on a trip, or offline.
	Reserve(ctx context.Context, driverID, tripID string, lease time.Duration, now time.Time) (Driver, error)
	// SetOffer records the pending offer of a driver reserved by
	// offer.TripID and extends the lease to leaseUntil. ErrConflict when the
	// driver is not reserved by that trip (any more).
	SetOffer(ctx context.Context, driverID string, offer Offer, leaseUntil time.Time) (Driver, error)
	// Release returns a driver reserved by tripID to available (the offer
	// was declined or expired, or the trip was cancelled before assignment).
	// ErrConflict when the driver is not reserved by tripID; releasing a
	// driver whose lease has lapsed and who is available succeeds.
	Release(ctx context.Context, driverID, tripID string) (Driver, error)
	// StartTrip moves a driver reserved by tripID with a live lease to
	// on_trip for tripID. ErrConflict otherwise (the lease lapsed, another
	// trip holds the driver).
	StartTrip(ctx context.Context, driverID, tripID string, now time.Time) (Driver, error)
	// EndTrip returns a driver on_trip for tripID to available (trip
	// completed or cancelled after assignment). ErrConflict otherwise.
	EndTrip(ctx context.Context, driverID, tripID string) (Driver, error)
	// SetOffline / SetAvailable: the driver went off or on shift. Only a
	// driver that is not reserved (live lease) or on a trip changes;
	// ErrConflict otherwise.
	SetOffline(ctx context.Context, driverID string) (Driver, error)
	SetAvailable(ctx context.Context, driverID string) (Driver, error)

	// CreateTrip stores rec (at version 1) unless a trip with rec.ID exists,
	// atomically, and adds it to the active set. It returns the stored
	// record and whether this call created it: trip ids are derived from the
	// caller's request id, so this is the idempotency check.
	CreateTrip(ctx context.Context, rec TripRecord) (TripRecord, bool, error)
	// Trip returns a trip; ErrNotFound when unknown.
	Trip(ctx context.Context, id string) (TripRecord, error)
	// UpdateTrip replaces the trip if its stored version is rec.Version and
	// returns it at version rec.Version+1; a final record leaves the active
	// set. ErrConflict when the version moved on; ErrNotFound when unknown.
	UpdateTrip(ctx context.Context, rec TripRecord) (TripRecord, error)
	// ActiveTrips returns up to limit trips that are not final (recovery
	// after a matcher restart).
	ActiveTrips(ctx context.Context, limit int) ([]TripRecord, error)

	// SavePositions records the last known positions of drivers in shard.
	// A position older than the stored one for the same driver is ignored.
	SavePositions(ctx context.Context, shard uint64, ps []Position) error
	// DeletePositions forgets drivers of shard (they moved away or
	// expired).
	DeletePositions(ctx context.Context, shard uint64, driverIDs []string) error
	// Positions returns the positions recorded for shard.
	Positions(ctx context.Context, shard uint64) ([]Position, error)
	// PositionShards returns the shards with recorded positions, sorted,
	// at most limit of them (the warm-up of a dead node's shards).
	PositionShards(ctx context.Context, limit int) ([]uint64, error)

	// Publish sends an event to every subscriber (best effort).
	Publish(ctx context.Context, e Event) error
	// Subscribe delivers events published from now on until ctx is done,
	// then closes the channel. A slow subscriber loses events (bounded
	// buffer) rather than slowing publishers.
	Subscribe(ctx context.Context) (<-chan Event, error)

	// Close releases the store's connections.
	// Fence definitions and drivers' fence states (fences.go).
	Fences
	FenceStates

	Close() error
}

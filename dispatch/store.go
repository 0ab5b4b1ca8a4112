package dispatch

import (
	"context"
	"time"

	"github.com/geomatch/geomatch/store"
)

// What dispatch needs of the durable store (package store implements all
// of it, in memory and on Redis), declared here where it is used, one
// concern per interface.

// Reservations hold driver dispatch states: reservations with a lease,
// pending offers, trips held. Every change is a compare-and-set
// (store.ErrConflict when the state was not what the caller named), so no
// driver is ever held by two trips.
type Reservations interface {
	Driver(ctx context.Context, id string) (store.Driver, error)
	Reserve(ctx context.Context, driverID, tripID string, lease time.Duration, now time.Time) (store.Driver, error)
	SetOffer(ctx context.Context, driverID string, offer store.Offer, leaseUntil time.Time) (store.Driver, error)
	Release(ctx context.Context, driverID, tripID string) (store.Driver, error)
	StartTrip(ctx context.Context, driverID, tripID string, now time.Time) (store.Driver, error)
	EndTrip(ctx context.Context, driverID, tripID string) (store.Driver, error)
}

// Trips hold trip records, versioned, with the set of unfinished ones.
type Trips interface {
	CreateTrip(ctx context.Context, rec store.TripRecord) (store.TripRecord, bool, error)
	Trip(ctx context.Context, id string) (store.TripRecord, error)
	UpdateTrip(ctx context.Context, rec store.TripRecord) (store.TripRecord, error)
	ActiveTrips(ctx context.Context, limit int) ([]store.TripRecord, error)
}

// Bus carries offers and trip changes to whichever process holds the
// driver's or rider's stream (best effort; the state is the truth).
type Bus interface {
	Publish(ctx context.Context, e store.Event) error
	Subscribe(ctx context.Context) (<-chan store.Event, error)
}

// Store is everything dispatch asks of the durable store.
type Store interface {
	Reservations
	Trips
	Bus
}

var _ Store = store.Store(nil)

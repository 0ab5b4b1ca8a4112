package router

import (
	"runtime"
	"time"

	"github.com/geomatch/geomatch/auth"
	"github.com/geomatch/geomatch/dispatch"
	"github.com/geomatch/geomatch/events"
	"github.com/geomatch/geomatch/internal/defaults"
	"github.com/geomatch/geomatch/store"
)

// Config configures a router. Zero fields take the defaults of
// DefaultConfig; negative values are an error. How the router reaches the
// matchers (timeouts of searches, batching, retries, TLS to the matchers)
// is the fleet client's configuration (fleet.Config).
type Config struct {
	// UpdateTimeout bounds one UpdateLocations call and the life of an
	// update sent on a Connect stream; default 5 s.
	UpdateTimeout time.Duration
	// RideTimeout is added to a ride request's own wait for a driver to
	// bound the whole call (search, reservation, offer); default 7 s.
	RideTimeout time.Duration
	// Rides runs the trip operations (get, cancel, offer answers, trip
	// progress) against the durable store; nil turns the ride API off
	// (Unimplemented).
	Rides *dispatch.Ops
	// MaxDriverStreams bounds the drivers with a Connect stream on one
	// router (distinct driver ids); default 500000. The streams themselves,
	// however many drivers they name, are bounded by Limits.MaxStreams.
	MaxDriverStreams int
	// Auth verifies the bearer tokens of public calls; nil turns
	// authentication off (every caller may do everything). It takes effect
	// on a server built with ServerOptions.
	Auth *auth.Keyring
	// Limits bound what one client may ask (rates, streams; zero fields
	// are unlimited; they take effect on a server built with
	// ServerOptions) and the driver streams of the router (MaxStreams,
	// always in effect).
	Limits Limits
	// SlowStreamAfter is how long a driver stream's app may leave its
	// events unread (a send blocked on flow control) before the stream is
	// ended with RESOURCE_EXHAUSTED once its event queue is full; default
	// 5 s.
	SlowStreamAfter time.Duration
	// RingAdmin is the ring settings store the admin service's changes
	// (MoveShard, DrainNode, SplitShard, Rebalance with apply, ...) go
	// through; nil makes them FAILED_PRECONDITION (a static cluster's ring
	// cannot change).
	RingAdmin RingAdmin
	// Fences is the durable store of fence definitions; nil makes the
	// FenceService FAILED_PRECONDITION.
	Fences store.Fences
	// Events is the durable event log subscriptions read; nil makes
	// Subscribe FAILED_PRECONDITION.
	Events events.Log
	// MaxSubscriptions bounds the event subscriptions one router serves;
	// default 10000.
	MaxSubscriptions int
	// MaxFenceWrites bounds the fence definitions (PutFence) one router
	// validates at once (the others wait within their deadline): a
	// polygon of a few hundred vertices costs a few hundred microseconds
	// of CPU, and unbounded they starve location updates. Storing and the
	// matchers' confirmation are not bounded by it. Default half the
	// CPUs, at least 1.
	MaxFenceWrites int
	// Hooks is the hook registry; nil makes the hook methods
	// FAILED_PRECONDITION.
	Hooks Hooks
	// TripTimeout bounds one trip read or change in the store (GetTrip,
	// CancelTrip, offer answers, the repair of a reconnecting driver);
	// default 5 s.
	TripTimeout time.Duration
}

// DefaultConfig returns the router defaults.
func DefaultConfig() Config {
	return Config{
		UpdateTimeout:    5 * time.Second,
		RideTimeout:      7 * time.Second,
		MaxDriverStreams: 500_000,
		SlowStreamAfter:  5 * time.Second,
		TripTimeout:      5 * time.Second,
		MaxSubscriptions: 10_000,
		MaxFenceWrites:   max(1, runtime.GOMAXPROCS(0)/2),
	}
}

// fill replaces zero fields by their defaults and checks the rest.
func (c *Config) fill() error {
	d := DefaultConfig()
	var f defaults.Filler
	f.Duration("UpdateTimeout", &c.UpdateTimeout, d.UpdateTimeout)
	f.Duration("RideTimeout", &c.RideTimeout, d.RideTimeout)
	f.Duration("SlowStreamAfter", &c.SlowStreamAfter, d.SlowStreamAfter)
	f.Duration("TripTimeout", &c.TripTimeout, d.TripTimeout)
	f.Int("MaxDriverStreams", &c.MaxDriverStreams, d.MaxDriverStreams)
	f.Int("MaxSubscriptions", &c.MaxSubscriptions, d.MaxSubscriptions)
	f.Int("MaxFenceWrites", &c.MaxFenceWrites, d.MaxFenceWrites)
	f.Fail(c.Limits.fill())
	return f.Err("router config")
}

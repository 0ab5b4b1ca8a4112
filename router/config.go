package router

import (
	"errors"
	"time"

	"google.golang.org/grpc"

	"github.com/geomatch/geomatch/auth"
	"github.com/geomatch/geomatch/dispatch"
	"github.com/geomatch/geomatch/matcher"
)

// Config configures a router. Zero fields take the defaults of
// DefaultConfig.
type Config struct {
	// QueryTimeout bounds one nearby search across all owners involved
	// (the caller's own deadline applies when shorter); default 2 s.
	QueryTimeout time.Duration
	// UpdateTimeout bounds one UpdateLocations call and the life of an
	// update sent on a Connect stream; default 5 s.
	UpdateTimeout time.Duration
	// MaxAttempts is how many times an update or a query is routed before
	// the router gives up on an owner that keeps refusing it (NotOwner) or
	// a stream that keeps breaking; default 5.
	MaxAttempts int
	// BatchMax is the most updates one internal Apply message carries;
	// default 2048. Batches are cut earlier when the queue is empty, so a
	// lone update is sent at once.
	BatchMax int
	// QueueLen bounds the updates waiting for one matcher; callers block
	// (up to their deadline) when it is full. Default 65536.
	QueueLen int
	// EvictionQueueLen bounds the pending evictions per matcher; when full,
	// evictions are dropped and the stale copy expires by TTL. Default 16384.
	EvictionQueueLen int
	// InflightBatches is how many Apply messages may await their response
	// on one stream; default 16.
	InflightBatches int
	// Rides runs the trip operations (get, cancel, offer answers, trip
	// progress) against the durable store; nil turns the ride API off
	// (Unimplemented).
	Rides *dispatch.Ops
	// MaxDriverStreams bounds the driver Connect streams one router holds;
	// default 500000.
	MaxDriverStreams int
	// InProcess lists the matchers that run in this process, by member id
	// (`geomatch dev`; a matcher's own coordinator): the router searches
	// them and sends them updates by function call (matcher.Local) instead
	// of over loopback gRPC, the same answers for half the CPU. Their
	// other calls (rides, stats) still go over gRPC.
	InProcess map[string]*matcher.Local
	// DialOptions are added to every connection to a matcher (transport
	// credentials default to plaintext loopback; give TLS credentials with
	// a client certificate for mutual TLS).
	DialOptions []grpc.DialOption
	// Auth verifies the bearer tokens of public calls; nil turns
	// authentication off (every caller may do everything). It takes effect
	// on a server built with ServerOptions.
	Auth *auth.Keyring
	// Limits bound what one client may ask (rates, streams); zero fields
	// are unlimited. They take effect on a server built with ServerOptions.
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
	// TripTimeout bounds one trip read or change in the store (GetTrip,
	// CancelTrip, offer answers, the repair of a reconnecting driver);
	// default 5 s.
	TripTimeout time.Duration
}

// DefaultConfig returns the router defaults.
func DefaultConfig() Config {
	return Config{
		QueryTimeout:     2 * time.Second,
		UpdateTimeout:    5 * time.Second,
		MaxAttempts:      5,
		BatchMax:         2048,
		QueueLen:         65536,
		EvictionQueueLen: 16384,
		InflightBatches:  16,
		MaxDriverStreams: 500_000,
		SlowStreamAfter:  5 * time.Second,
		TripTimeout:      5 * time.Second,
	}
}

func (c *Config) fill() error {
	d := DefaultConfig()
	set := func(v *time.Duration, def time.Duration) {
		if *v <= 0 {
			*v = def
		}
	}
	seti := func(v *int, def int) {
		if *v <= 0 {
			*v = def
		}
	}
	set(&c.QueryTimeout, d.QueryTimeout)
	set(&c.UpdateTimeout, d.UpdateTimeout)
	seti(&c.MaxAttempts, d.MaxAttempts)
	seti(&c.BatchMax, d.BatchMax)
	seti(&c.QueueLen, d.QueueLen)
	seti(&c.EvictionQueueLen, d.EvictionQueueLen)
	seti(&c.InflightBatches, d.InflightBatches)
	seti(&c.MaxDriverStreams, d.MaxDriverStreams)
	set(&c.SlowStreamAfter, d.SlowStreamAfter)
	set(&c.TripTimeout, d.TripTimeout)
	if err := c.Limits.fill(); err != nil {
		return err
	}
	if c.BatchMax > 10000 {
		return errors.New("router config: BatchMax must be at most 10000")
	}
	return nil
}

package fleet

import (
	"time"

	"google.golang.org/grpc"

	"github.com/geomatch/geomatch/internal/defaults"
)

// Config configures a fleet client. Zero fields take the defaults of
// DefaultConfig; negative values are an error (New says which).
type Config struct {
	// QueryTimeout bounds one nearby search across all owners involved
	// (the caller's own deadline applies when shorter); default 2 s.
	QueryTimeout time.Duration
	// MaxAttempts is how many times an update, a query or a ride request is
	// routed before the client gives up on an owner that keeps refusing it
	// (NotOwner) or a stream that keeps breaking; default 5.
	MaxAttempts int
	// BatchMax is the most updates one internal Apply message carries;
	// default 2048, at most 10000 (the matchers' limit). Batches are cut
	// earlier when the queue is empty, so a lone update is sent at once.
	BatchMax int
	// QueueLen bounds the updates waiting for one matcher; senders block
	// (up to their deadline) when it is full. Default 8192: four full
	// batches waiting behind the InflightBatches already sent, enough to
	// keep a stream busy; a deeper queue adds only latency and memory (88
	// bytes an update, allocated up front per matcher and scanned by every
	// collection).
	QueueLen int
	// EvictionQueueLen bounds the pending evictions per matcher; when full,
	// evictions are dropped (counted by EvictionsDropped) and the stale
	// copy expires by TTL. Default 16384.
	EvictionQueueLen int
	// ParkMax bounds the updates the client holds while their owner
	// cannot be reached (a matcher died and the ring has not moved its
	// shards yet, or it restarts): they are sent again when the ring
	// changes or the owner answers, within each update's deadline; beyond
	// ParkMax, updates are refused with UNAVAILABLE. Default 200,000:
	// about 2.5 s (a failover) of a third of 250k updates/s, some 40 MB.
	ParkMax int
	// UnreachableGrace is how long a matcher that owns shards may look
	// unreachable before Reachable (a router's readiness) says so; default
	// 5 s: longer than a failover (the ring moves a dead node's shards in
	// about 2.5 s), so that routers do not all turn unready together while
	// the cluster heals itself, and short enough that a router cut off
	// from a node leaves its load balancer within a few probes.
	UnreachableGrace time.Duration
	// InflightBatches is how many Apply messages may await their response
	// on one stream; default 16.
	InflightBatches int
	// InProcess lists the matchers that run in this process, by member id:
	// the client searches them and sends them updates by function call
	// instead of over loopback gRPC, the same answers for half the CPU.
	// Their other calls (rides, stats) still go over gRPC.
	InProcess map[string]LocalNode
	// DialOptions are added to every connection to a matcher (transport
	// credentials default to plaintext; give TLS credentials with a client
	// certificate for mutual TLS).
	DialOptions []grpc.DialOption
}

// DefaultConfig returns the fleet client defaults.
func DefaultConfig() Config {
	return Config{
		QueryTimeout:     2 * time.Second,
		MaxAttempts:      5,
		BatchMax:         2048,
		QueueLen:         8192,
		EvictionQueueLen: 16384,
		InflightBatches:  16,
		ParkMax:          200_000,
		UnreachableGrace: 5 * time.Second,
	}
}

// maxBatch is the matchers' limit on one Apply message.
const maxBatch = 10000

// fill replaces zero fields by their defaults and checks the rest.
func (c *Config) fill() error {
	d := DefaultConfig()
	var f defaults.Filler
	f.Duration("QueryTimeout", &c.QueryTimeout, d.QueryTimeout)
	f.Int("MaxAttempts", &c.MaxAttempts, d.MaxAttempts)
	f.Int("BatchMax", &c.BatchMax, d.BatchMax)
	f.Int("QueueLen", &c.QueueLen, d.QueueLen)
	f.Int("EvictionQueueLen", &c.EvictionQueueLen, d.EvictionQueueLen)
	f.Int("InflightBatches", &c.InflightBatches, d.InflightBatches)
	f.Int("ParkMax", &c.ParkMax, d.ParkMax)
	f.Duration("UnreachableGrace", &c.UnreachableGrace, d.UnreachableGrace)
	f.Max("BatchMax", c.BatchMax, maxBatch)
	return f.Err("fleet config")
}

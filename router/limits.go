package router

import (
	"container/list"
	"fmt"
	"hash/maphash"
	"log/slog"
	"math"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/time/rate"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/geomatch/geomatch/internal/gcpolicy"
	"github.com/geomatch/geomatch/internal/metrics"
)

// Limits bound the load one client may put on a router, and the driver
// streams of all clients together. A client is the subject of its token,
// with its role, or its peer IP address when authentication is off (so
// everybody behind one proxy or NAT is one client). Admin tokens are not
// limited per client: they belong to operators and trusted back ends. Zero
// per-client rates and counts are unlimited; MaxStreams always applies.
// Every refusal is RESOURCE_EXHAUSTED saying which limit was hit, and is
// counted in geomatch_refused_total{reason}.
type Limits struct {
	// UpdatesPerS is the sustained rate of location updates per client:
	// an UpdateLocations call costs one per update (at least one), a
	// location on a Connect stream costs one.
	UpdatesPerS float64
	// UpdateBurst is how many updates a client may send at once beyond the
	// rate; default two seconds' worth (at least 1). A call with more
	// updates than the burst is always refused: split it.
	UpdateBurst int
	// RequestsPerS is the sustained rate of every other public call per
	// client: nearby searches, ride requests, trip reads and cancels,
	// admin calls, Connect stream opens, and offer answers and trip
	// progress on a stream (beyond it, the stream ends).
	RequestsPerS float64
	// RequestBurst is RequestsPerS's burst; default two seconds' worth (at
	// least 1).
	RequestBurst int
	// StreamsPerClient bounds the Connect streams one client holds open at
	// once (a driver app needs one; a reconnect briefly overlaps).
	StreamsPerClient int
	// MaxStreams bounds the driver Connect streams the router holds open
	// at once, all clients together, admins included: each holds three
	// goroutines and their buffers (StreamMemory). A stream beyond it is
	// refused before anything is read from it. Default DefaultMaxStreams,
	// from the memory the process may use.
	MaxStreams int
	// MaxClients bounds the clients whose rate state is kept, 1/16 of it
	// per shard of the table; beyond it the least recently seen client is
	// forgotten (and starts again with a full bucket). Default 100000,
	// some 30 MB at most.
	MaxClients int
}

func (l *Limits) fill() error {
	for _, f := range []struct {
		name string
		v    float64
	}{{"UpdatesPerS", l.UpdatesPerS}, {"RequestsPerS", l.RequestsPerS}, {"StreamsPerClient", float64(l.StreamsPerClient)},
		{"UpdateBurst", float64(l.UpdateBurst)}, {"RequestBurst", float64(l.RequestBurst)}, {"MaxClients", float64(l.MaxClients)}, {"MaxStreams", float64(l.MaxStreams)}} {
		if f.v < 0 || math.IsNaN(f.v) {
			return fmt.Errorf("limits: %s is %v, want a number ≥ 0", f.name, f.v)
		}
	}
	if l.UpdateBurst == 0 {
		l.UpdateBurst = defaultBurst(l.UpdatesPerS)
	}
	if l.RequestBurst == 0 {
		l.RequestBurst = defaultBurst(l.RequestsPerS)
	}
	if l.MaxClients == 0 {
		l.MaxClients = 100_000
	}
	if l.MaxStreams == 0 {
		l.MaxStreams = DefaultMaxStreams()
	}
	return nil
}

// StreamMemory is what one driver stream may cost a router, for sizing
// DefaultMaxStreams: the geomatch dev probe (TestRSSProbe) measured some
// 26 KiB of resident memory a stream (16 KiB of stacks for its three
// goroutines, 10 KiB of heap: the gRPC stream, the event queue); more than
// twice that leaves room for grown stacks and queued events.
const StreamMemory = 64 << 10

// Bounds of DefaultMaxStreams.
const (
	minDefaultStreams      = 1_000
	maxDefaultStreams      = 500_000
	unknownMemoryStreams   = 100_000
	streamsShareOfMemoryIn = 2 // streams may take 1/2 of the memory budget
)

// DefaultMaxStreams is the default of Limits.MaxStreams: as many streams
// of StreamMemory as fit in half the memory the process may use (its soft
// memory limit, which gcpolicy derives from the container's limit, else
// the machine's memory), within [1000, 500000]; 100000 when the memory is
// not known. A 2 GiB container gets some 14,000 streams, a 32 GiB machine
// 262,144.
func DefaultMaxStreams() int {
	budget := gcpolicy.MemoryBudget()
	if budget <= 0 {
		return unknownMemoryStreams
	}
	n := budget / streamsShareOfMemoryIn / StreamMemory
	return int(min(max(n, minDefaultStreams), maxDefaultStreams))
}

func defaultBurst(perS float64) int { return int(max(1, math.Min(math.Ceil(2*perS), 1e9))) }

// bucket says which rate a call is charged to.
type bucket int

const (
	bucketRequests bucket = iota
	bucketUpdates
)

// clientLimits enforces Limits.
type clientLimits struct {
	cfg      Limits
	updates  *limiterSet // nil: unlimited
	requests *limiterSet // nil: unlimited
	streams  *streamCounts
	// open counts the driver streams of the router (Limits.MaxStreams).
	open atomic.Int64
	// trim gives memory back once many streams have ended.
	trim *gcpolicy.Trimmer
}

// newClientLimits returns the limits of cfg; log gets the lines of memory
// trims.
func newClientLimits(cfg Limits, log *slog.Logger) *clientLimits {
	return &clientLimits{
		cfg:      cfg,
		updates:  newLimiterSet(cfg.UpdatesPerS, cfg.UpdateBurst, cfg.MaxClients),
		requests: newLimiterSet(cfg.RequestsPerS, cfg.RequestBurst, cfg.MaxClients),
		streams:  &streamCounts{max: cfg.StreamsPerClient, open: map[string]int{}},
		trim:     &gcpolicy.Trimmer{Name: "driver streams", Log: log},
	}
}

// openServerStream counts a new driver stream against Limits.MaxStreams,
// or refuses it; the caller calls the returned release when the stream
// ends. It is checked before the stream's first message is read, so a
// refused stream costs no more than the goroutine gRPC gave it.
func (l *clientLimits) openServerStream() (release func(), err error) {
	n := l.open.Add(1)
	if n > int64(l.cfg.MaxStreams) {
		l.open.Add(-1)
		metrics.CountRefused(metrics.RefusedServerStreams)
		return nil, status.Errorf(codes.ResourceExhausted, "server stream limit: this router holds %d driver streams, its limit (--max-driver-streams); retry with backoff or connect to another router", l.cfg.MaxStreams)
	}
	metrics.AddDriverStreams(1)
	l.trim.Observe(int(n))
	var once sync.Once
	return func() {
		once.Do(func() {
			metrics.AddDriverStreams(-1)
			l.trim.Observe(int(l.open.Add(-1)))
		})
	}, nil
}

// active reports whether any limit is set.
func (l *clientLimits) active() bool {
	return l.updates != nil || l.requests != nil || l.cfg.StreamsPerClient > 0
}

// admit charges a call of cost to c's bucket b, or returns
// RESOURCE_EXHAUSTED saying which limit was hit.
func (l *clientLimits) admit(c caller, b bucket, cost int) error {
	if c.admin() {
		return nil
	}
	now := time.Now()
	switch b {
	case bucketUpdates:
		if l.updates == nil {
			return nil
		}
		if cost > l.updates.burst {
			metrics.CountRefused(metrics.RefusedUpdateBatch)
			return status.Errorf(codes.ResourceExhausted, "rate limit: %d updates in one call, more than the burst of %d allowed to %s; split the batch", cost, l.updates.burst, c.key)
		}
		if !l.updates.allow(c.key, cost, now) {
			metrics.CountRefused(metrics.RefusedUpdateRate)
			return status.Errorf(codes.ResourceExhausted, "rate limit: %s may send %g location updates/s (bursts of %d); slow down", c.key, l.cfg.UpdatesPerS, l.updates.burst)
		}
	default:
		if l.requests != nil && !l.requests.allow(c.key, cost, now) {
			metrics.CountRefused(metrics.RefusedRequestRate)
			return status.Errorf(codes.ResourceExhausted, "rate limit: %s may make %g calls/s (bursts of %d); retry later", c.key, l.cfg.RequestsPerS, l.requests.burst)
		}
	}
	return nil
}

// openStream counts a new stream of c, or refuses it; the caller calls
// the returned release when the stream ends.
func (l *clientLimits) openStream(c caller) (release func(), err error) {
	if l.cfg.StreamsPerClient <= 0 || c.admin() {
		return func() {}, nil
	}
	if !l.streams.acquire(c.key) {
		metrics.CountRefused(metrics.RefusedClientStreams)
		return nil, status.Errorf(codes.ResourceExhausted, "stream limit: %s already holds %d driver streams, its limit", c.key, l.cfg.StreamsPerClient)
	}
	return func() { l.streams.release(c.key) }, nil
}

// limiterShards spreads the limiter table over independently locked
// shards, so concurrent calls of different clients rarely wait on each
// other.
const limiterShards = 16

// limiterSet is a token bucket per client key, in a table bounded by an
// LRU per shard.
type limiterSet struct {
	limit  rate.Limit
	burst  int
	seed   maphash.Seed
	shards [limiterShards]limiterShard
}

type limiterShard struct {
	mu    sync.Mutex
	max   int
	byKey map[string]*list.Element // of *limiterEntry
	lru   list.List                // front: most recently used
}

type limiterEntry struct {
	key string
	lim *rate.Limiter
}

// newLimiterSet returns the buckets of perS tokens a second up to burst,
// keeping at most about maxClients of them; nil when perS is not positive.
func newLimiterSet(perS float64, burst, maxClients int) *limiterSet {
	if perS <= 0 {
		return nil
	}
	s := &limiterSet{limit: rate.Limit(perS), burst: burst, seed: maphash.MakeSeed()}
	for i := range s.shards {
		s.shards[i].max = max(1, maxClients/limiterShards)
		s.shards[i].byKey = make(map[string]*list.Element)
	}
	return s
}

// allow takes n tokens from key's bucket if it holds them.
func (s *limiterSet) allow(key string, n int, now time.Time) bool {
	sh := &s.shards[maphash.String(s.seed, key)%limiterShards]
	sh.mu.Lock()
	var lim *rate.Limiter
	if e, ok := sh.byKey[key]; ok {
		sh.lru.MoveToFront(e)
		lim = e.Value.(*limiterEntry).lim
	} else {
		if sh.lru.Len() >= sh.max {
			oldest := sh.lru.Back()
			sh.lru.Remove(oldest)
			delete(sh.byKey, oldest.Value.(*limiterEntry).key)
		}
		lim = rate.NewLimiter(s.limit, s.burst)
		sh.byKey[key] = sh.lru.PushFront(&limiterEntry{key: key, lim: lim})
	}
	sh.mu.Unlock()
	return lim.AllowN(now, n)
}

// len returns the number of clients tracked.
func (s *limiterSet) len() int {
	n := 0
	for i := range s.shards {
		s.shards[i].mu.Lock()
		n += s.shards[i].lru.Len()
		s.shards[i].mu.Unlock()
	}
	return n
}

// streamCounts counts the open streams per client. Entries exist only
// while a client has a stream open, so the map is bounded by the open
// streams.
type streamCounts struct {
	mu   sync.Mutex
	max  int
	open map[string]int
}

func (s *streamCounts) acquire(key string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.open[key] >= s.max {
		return false
	}
	s.open[key]++
	return true
}

func (s *streamCounts) release(key string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.open[key] <= 1 {
		delete(s.open, key)
		return
	}
	s.open[key]--
}

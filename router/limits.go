package router

import (
	"container/list"
	"errors"
	"hash/maphash"
	"math"
	"sync"
	"time"

	"golang.org/x/time/rate"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// Limits bound the load one client may put on a router. A client is the
// subject of its token, with its role, or its peer IP address when
// authentication is off. Admin tokens are not limited: they belong to
// operators and trusted back ends. Zero rates and counts are unlimited.
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
	// MaxClients bounds the clients whose rate state is kept, 1/16 of it
	// per shard of the table; beyond it the least recently seen client is
	// forgotten (and starts again with a full bucket). Default 100000,
	// some 30 MB at most.
	MaxClients int
}

func (l *Limits) fill() error {
	if l.UpdatesPerS < 0 || l.RequestsPerS < 0 || l.StreamsPerClient < 0 || l.UpdateBurst < 0 || l.RequestBurst < 0 || l.MaxClients < 0 {
		return errors.New("router config: limits must not be negative")
	}
	if math.IsNaN(l.UpdatesPerS) || math.IsNaN(l.RequestsPerS) {
		return errors.New("router config: limit rates must be numbers")
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
	return nil
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
}

func newClientLimits(cfg Limits) *clientLimits {
	return &clientLimits{
		cfg:      cfg,
		updates:  newLimiterSet(cfg.UpdatesPerS, cfg.UpdateBurst, cfg.MaxClients),
		requests: newLimiterSet(cfg.RequestsPerS, cfg.RequestBurst, cfg.MaxClients),
		streams:  &streamCounts{max: cfg.StreamsPerClient, open: map[string]int{}},
	}
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
			return status.Errorf(codes.ResourceExhausted, "rate limit: %d updates in one call, more than the burst of %d allowed to %s; split the batch", cost, l.updates.burst, c.key)
		}
		if !l.updates.allow(c.key, cost, now) {
			return status.Errorf(codes.ResourceExhausted, "rate limit: %s may send %g location updates/s (bursts of %d); slow down", c.key, l.cfg.UpdatesPerS, l.updates.burst)
		}
	default:
		if l.requests != nil && !l.requests.allow(c.key, cost, now) {
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

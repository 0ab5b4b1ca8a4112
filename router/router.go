package router

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/time/rate"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/geomatch/geomatch/matcher"
	"github.com/geomatch/geomatch/membership"
	geomatchv1 "github.com/geomatch/geomatch/proto/geomatch/v1"
	"github.com/geomatch/geomatch/shardmap"
	"github.com/geomatch/geomatch/store"
)

// Router is the public API front door. Create it with New, start Run, and
// register its services on a gRPC server with Register.
type Router struct {
	cfg Config
	src membership.Source
	log *slog.Logger

	mu     sync.RWMutex
	peers  map[string]*peer // by member id
	ctx    context.Context  // Run's context: peers live under it
	wg     sync.WaitGroup   // peer goroutines
	closed bool

	refreshing sync.Mutex // one ring refresh at a time

	sessMu   sync.Mutex
	sessions map[string]*driverSession // driver Connect streams, by driver id

	limits *clientLimits // per-client rates and streams (ServerOptions)
	tokens *tokenCache   // recently verified tokens (ServerOptions)

	evictionsDropped atomic.Uint64
	dropWarning      rate.Sometimes // at most one warning a second about them
}

// EvictionsDropped returns how many evictions were dropped because a
// matcher's eviction queue was full (each leaves a stale copy of a driver
// on that matcher until the driver's TTL or its next update there).
func (r *Router) EvictionsDropped() uint64 { return r.evictionsDropped.Load() }

// New returns a router that routes by the maps src publishes.
func New(cfg Config, src membership.Source, log *slog.Logger) (*Router, error) {
	if err := cfg.fill(); err != nil {
		return nil, err
	}
	return &Router{cfg: cfg, src: src, log: log, dropWarning: rate.Sometimes{Interval: time.Second}, peers: make(map[string]*peer), sessions: make(map[string]*driverSession),
		limits: newClientLimits(cfg.Limits), tokens: newTokenCache()}, nil
}

// Register registers the public services on s. Authentication and
// per-client limits (Config.Auth, Config.Limits) need s to be built with
// ServerOptions.
func (r *Router) Register(s *grpc.Server) {
	geomatchv1.RegisterDriverServiceServer(s, &driverService{r: r})
	geomatchv1.RegisterRiderServiceServer(s, &riderService{r: r})
	geomatchv1.RegisterAdminServiceServer(s, &adminService{r: r})
}

// Run keeps one peer (connection and update stream) per ring member, opens
// new ones and closes removed ones as the ring changes, until ctx is done;
// then it closes every peer and waits for their goroutines.
func (r *Router) Run(ctx context.Context) error {
	r.mu.Lock()
	r.ctx = ctx
	r.mu.Unlock()
	m, changed := r.src.Current()
	r.sync(m)
	var events <-chan store.Event
	if r.cfg.Rides != nil {
		var err error
		if events, err = r.cfg.Rides.Store().Subscribe(ctx); err != nil {
			if ctx.Err() != nil {
				return nil // stopped while starting
			}
			return fmt.Errorf("router: subscribe to offers and trip events: %w", err)
		}
	}
	for {
		select {
		case <-ctx.Done():
			r.mu.Lock()
			r.closed = true
			for id, p := range r.peers {
				p.close()
				delete(r.peers, id)
			}
			r.mu.Unlock()
			r.wg.Wait()
			return nil
		case <-changed:
			m, changed = r.src.Current()
			r.log.Info("ring changed", "epoch", m.Epoch(), "members", len(m.Members()))
			r.sync(m)
		case ev, ok := <-events:
			if !ok {
				events = nil
				if ctx.Err() == nil {
					r.log.Error("offer and trip event subscription ended; offers reach drivers only when they reconnect")
				}
				continue
			}
			r.deliver(ev)
		}
	}
}

// sync opens peers for new members and closes peers of departed ones.
func (r *Router) sync(m *shardmap.Map) {
	want := make(map[string]shardmap.Member)
	for _, mem := range m.Members() {
		want[mem.ID] = mem
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	for id, p := range r.peers {
		if mem, ok := want[id]; !ok || mem.Addr != p.addr {
			p.close()
			delete(r.peers, id)
		}
	}
	for _, mem := range want {
		if _, err := r.peerLocked(mem); err != nil {
			r.log.Error("cannot open matcher connection", "node", mem.ID, "addr", mem.Addr, "err", err)
		}
	}
}

// peer returns the peer of member mem, opening it if needed. The common
// case (every update and query) takes only the read lock.
func (r *Router) peer(mem shardmap.Member) (*peer, error) {
	r.mu.RLock()
	p, ok := r.peers[mem.ID]
	r.mu.RUnlock()
	if ok && p.addr == mem.Addr {
		return p, nil
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.peerLocked(mem)
}

func (r *Router) peerLocked(mem shardmap.Member) (*peer, error) {
	if p, ok := r.peers[mem.ID]; ok && p.addr == mem.Addr {
		return p, nil
	}
	if r.closed || r.ctx == nil {
		return nil, fmt.Errorf("router is not running")
	}
	p, err := newPeer(r, mem)
	if err != nil {
		return nil, err
	}
	if old, ok := r.peers[mem.ID]; ok {
		old.close()
	}
	r.peers[mem.ID] = p
	r.wg.Add(1)
	go func() {
		defer r.wg.Done()
		p.run(r.ctx)
	}()
	return p, nil
}

// otherPeers returns the open peers other than id.
func (r *Router) otherPeers(id string) []*peer {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make([]*peer, 0, len(r.peers))
	for pid, p := range r.peers {
		if pid != id {
			out = append(out, p)
		}
	}
	return out
}

// refresh asks the membership source for the newest ring, one refresh at a
// time; callers that arrive during a refresh wait for it instead of starting
// another.
func (r *Router) refresh(ctx context.Context) {
	r.refreshing.Lock()
	defer r.refreshing.Unlock()
	ctx, cancel := context.WithTimeout(ctx, time.Second)
	defer cancel()
	if err := r.src.Refresh(ctx); err != nil {
		r.log.Warn("ring refresh failed", "err", err)
	}
}

// backoff is the wait before attempt (1-based) of a retry after NotOwner.
func backoff(attempt int) time.Duration {
	d := 10 * time.Millisecond << min(attempt, 6)
	return min(d, 500*time.Millisecond)
}

// retryNotOwner runs call against the current ring until it succeeds or
// fails with anything but NotOwner, at most MaxAttempts times. A node with a
// newer epoch than the router's makes the router refresh its ring and retry
// at once; a node that is behind gets a short backoff to catch up. When the
// ring keeps moving, the caller gets UNAVAILABLE with the last refusal.
func (r *Router) retryNotOwner(ctx context.Context, what string, call func(m *shardmap.Map) error) error {
	var lastErr error
	for attempt := 0; attempt < r.cfg.MaxAttempts; attempt++ {
		m, _ := r.src.Current()
		err := call(m)
		no, isNotOwner := matcher.AsNotOwner(err)
		if err == nil || !isNotOwner {
			return err
		}
		lastErr = err
		if no.Epoch > m.Epoch() {
			r.refresh(ctx)
			continue
		}
		t := time.NewTimer(backoff(attempt + 1))
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return status.Errorf(codes.Unavailable, "%s: the ring kept changing: %v", what, lastErr)
		}
	}
	return status.Errorf(codes.Unavailable, "%s: gave up after %d attempts, the ring kept changing: %v", what, r.cfg.MaxAttempts, lastErr)
}

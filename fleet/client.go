package fleet

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/time/rate"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/geomatch/geomatch/membership"
	matcherv1 "github.com/geomatch/geomatch/proto/geomatch/matcher/v1"
	"github.com/geomatch/geomatch/shardmap"
)

// Client is the client of the matcher fleet. Create it with New and run
// Run; its methods are safe for concurrent use once Run has started.
type Client struct {
	cfg Config
	src membership.Source
	log *slog.Logger

	mu     sync.RWMutex
	peers  map[string]*peer   // by member id
	ctx    context.Context    // peers and retries live under it, from New until Run ends
	cancel context.CancelFunc // of ctx
	wg     sync.WaitGroup     // peer goroutines and delayed retries
	closed bool

	refreshing sync.Mutex // one ring refresh at a time
	fenceSync  fenceSync  // groups SyncFences calls
	parking    parking    // updates waiting for an unreachable owner
	reach      reach      // members that look unreachable (Reachable)

	peerRingAt atomic.Int64  // Unix nanoseconds of the last round asking members for their ring
	peerRings  atomic.Uint64 // rings adopted from members
	replayed   atomic.Uint64 // updates sent again from a departed matcher's redo window
	// standbySent counts updates handed to a lost matcher's successors.
	standbySent atomic.Uint64

	evictionsDropped atomic.Uint64
	dropWarning      rate.Sometimes // at most one warning a second about them
}

// New returns a client that routes by the maps src publishes.
func New(cfg Config, src membership.Source, log *slog.Logger) (*Client, error) {
	if err := cfg.fill(); err != nil {
		return nil, err
	}
	if src == nil {
		return nil, errors.New("fleet: a membership source is required")
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	ctx, cancel := context.WithCancel(context.Background())
	return &Client{cfg: cfg, src: src, log: log, peers: make(map[string]*peer), ctx: ctx, cancel: cancel,
		fenceSync:   fenceSync{slot: make(chan struct{}, 1)},
		dropWarning: rate.Sometimes{Interval: time.Second}}, nil
}

// Ring returns the ring the client routes by now.
func (c *Client) Ring() *shardmap.Map {
	m, _ := c.src.Current()
	return m
}

// Membership returns the source the client follows.
func (c *Client) Membership() membership.Source { return c.src }

// EvictionsDropped returns how many evictions were dropped because a
// matcher's eviction queue was full (each leaves a stale copy of a driver
// on that matcher until the driver's TTL or its next update there).
func (c *Client) EvictionsDropped() uint64 { return c.evictionsDropped.Load() }

// Run keeps one peer per ring member, opens new ones and closes removed
// ones as the ring changes, until ctx is done; then it closes every peer
// and waits for every goroutine the client started. The client serves
// calls from New on (a peer is opened on first use), so a caller need not
// wait for Run to start; but every client must be run, and stops serving
// when Run returns.
func (c *Client) Run(ctx context.Context) error {
	m, changed := c.src.Current()
	c.sync(m)
	c.goOwned(c.runParking)
	for {
		select {
		case <-ctx.Done():
			c.mu.Lock()
			c.closed = true
			c.cancel()
			for id, p := range c.peers {
				p.close()
				delete(c.peers, id)
			}
			c.mu.Unlock()
			c.wg.Wait()
			return nil
		case <-changed:
			m, changed = c.src.Current()
			c.log.Info("ring changed", "epoch", m.Epoch(), "members", len(m.Members()))
			if redo := c.sync(m); len(redo) > 0 {
				c.log.Info("sending again the updates departed matchers acknowledged last", "updates", len(redo), "window", redoWindow)
				c.goOwned(func(ctx context.Context) { c.replay(ctx, redo) })
			}
			c.kickPeers()
		}
	}
}

// sync opens peers for new members and closes peers of departed ones, and
// returns what departed members acknowledged in the redo window (to be
// sent again to the new owners).
func (c *Client) sync(m *shardmap.Map) (redo []*matcherv1.Update) {
	want := make(map[string]shardmap.Member)
	for _, mem := range m.Members() {
		want[mem.ID] = mem
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	for id, p := range c.peers {
		if mem, ok := want[id]; !ok || mem.Addr != p.addr {
			p.close()
			delete(c.peers, id)
			if !ok {
				redo = append(redo, p.redo.since(time.Now().Add(-redoWindow))...)
			}
		}
	}
	for _, mem := range want {
		if _, err := c.peerLocked(mem); err != nil {
			c.log.Error("cannot open matcher connection", "node", mem.ID, "addr", mem.Addr, "err", err)
		}
	}
	return redo
}

// kickPeers ends the reconnect backoff of every peer: on a ring change a
// node that came back is dialled at once, not after its backoff.
func (c *Client) kickPeers() {
	c.mu.RLock()
	defer c.mu.RUnlock()
	for _, p := range c.peers {
		p.kickBackoff()
	}
}

// peer returns the peer of member mem, opening it if needed. The common
// case (every update and query) takes only the read lock.
func (c *Client) peer(mem shardmap.Member) (*peer, error) {
	c.mu.RLock()
	p, ok := c.peers[mem.ID]
	c.mu.RUnlock()
	if ok && p.addr == mem.Addr {
		return p, nil
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.peerLocked(mem)
}

func (c *Client) peerLocked(mem shardmap.Member) (*peer, error) {
	if p, ok := c.peers[mem.ID]; ok && p.addr == mem.Addr {
		return p, nil
	}
	if c.closed {
		return nil, errors.New("fleet client is not running")
	}
	p, err := newPeer(c, mem)
	if err != nil {
		return nil, err
	}
	if old, ok := c.peers[mem.ID]; ok {
		old.close()
	}
	c.peers[mem.ID] = p
	c.wg.Add(1)
	go func() {
		defer c.wg.Done()
		p.run(c.ctx)
	}()
	return p, nil
}

// otherPeers returns the open peers other than id.
func (c *Client) otherPeers(id string) []*peer {
	c.mu.RLock()
	defer c.mu.RUnlock()
	out := make([]*peer, 0, len(c.peers))
	for pid, p := range c.peers {
		if pid != id {
			out = append(out, p)
		}
	}
	return out
}

// goOwned runs f on a goroutine Run waits for, unless the client is
// stopping; it reports whether f was started.
func (c *Client) goOwned(f func(ctx context.Context)) bool {
	c.mu.RLock()
	defer c.mu.RUnlock()
	if c.closed {
		return false
	}
	ctx := c.ctx
	c.wg.Add(1)
	go func() {
		defer c.wg.Done()
		f(ctx)
	}()
	return true
}

// refresh asks the membership source for the newest ring, one refresh at a
// time; callers that arrive during a refresh wait for it instead of starting
// another.
func (c *Client) refresh(ctx context.Context) {
	c.refreshing.Lock()
	defer c.refreshing.Unlock()
	ctx, cancel := context.WithTimeout(ctx, time.Second)
	defer cancel()
	if err := c.src.Refresh(ctx); err != nil {
		// The source cannot be read (Consul unreachable from here): the
		// members may know the newer ring.
		if c.ringFromPeers(ctx) {
			c.peerRings.Add(1)
			return
		}
		c.log.Warn("ring refresh failed", "err", err)
	}
}

// backoff is the wait before attempt (1-based) of a retry after NotOwner.
func backoff(attempt int) time.Duration {
	d := 10 * time.Millisecond << min(attempt, 6)
	return min(d, 500*time.Millisecond)
}

// retryNotOwner runs call against the current ring until it succeeds or
// fails with anything but NotOwner, at most MaxAttempts times. A node with a
// newer epoch than the client's makes the client refresh its ring and retry
// at once; a node that is behind gets a short backoff to catch up. When the
// ring keeps moving, the caller gets UNAVAILABLE with the last refusal.
func (c *Client) retryNotOwner(ctx context.Context, what string, call func(m *shardmap.Map) error) error {
	var lastErr error
	for attempt := 0; attempt < c.cfg.MaxAttempts; attempt++ {
		m, _ := c.src.Current()
		err := call(m)
		no, isNotOwner := AsNotOwner(err)
		if err == nil || !isNotOwner {
			return err
		}
		lastErr = err
		if no.Epoch > m.Epoch() {
			c.refresh(ctx)
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
	return status.Errorf(codes.Unavailable, "%s: gave up after %d attempts, the ring kept changing: %v", what, c.cfg.MaxAttempts, lastErr)
}

// unreachable turns a failed call to a matcher into the caller's error,
// naming the matcher; what says which operation failed. Transport failures
// become UNAVAILABLE or DEADLINE_EXCEEDED; any other status keeps its code.
func unreachable(what string, mem shardmap.Member, err error) error {
	st := status.Convert(err)
	switch st.Code() {
	case codes.DeadlineExceeded:
		return status.Errorf(codes.DeadlineExceeded, "%s: matcher %s at %s did not answer in time: %s", what, mem.ID, mem.Addr, st.Message())
	case codes.Canceled:
		return status.Errorf(codes.Canceled, "%s: canceled: %s", what, st.Message())
	case codes.Unavailable:
		return status.Errorf(codes.Unavailable, "%s: matcher %s at %s unreachable: %s", what, mem.ID, mem.Addr, st.Message())
	}
	return status.Errorf(st.Code(), "%s: matcher %s at %s: %s", what, mem.ID, mem.Addr, st.Message())
}

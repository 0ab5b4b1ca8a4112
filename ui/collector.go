package ui

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/geomatch/geomatch/fleet"
	"github.com/geomatch/geomatch/membership"
	"github.com/geomatch/geomatch/shardmap"
	"github.com/geomatch/geomatch/ui/mapview"
)

// Cluster is what the map reads and acts through: the router
// (*router.Router implements it).
type Cluster interface {
	// Ring returns the ring the router routes by, and a channel closed
	// once a newer one is published.
	Ring() (*shardmap.Map, <-chan struct{})
	// MembershipKind names where the ring comes from.
	MembershipKind() string
	// AuthOn reports whether the router checks tokens.
	AuthOn() bool
	// Stats asks every member of m for its stats.
	Stats(ctx context.Context, m *shardmap.Map) []fleet.NodeStats
	// Call calls an AdminService or FenceService method as the router's gRPC server
	// would, with the caller's bearer token ("" for none).
	Call(ctx context.Context, remote net.Addr, token, method string, req proto.Message) (proto.Message, error)
}

// Config tunes the map. Zero fields take the defaults of DefaultConfig.
type Config struct {
	// Interval is how often the matchers' load is probed and a snapshot
	// pushed: 1 s, the map's resolution. A ring change is pushed at once.
	Interval time.Duration
	// StatsTimeout bounds one probe of the matchers; an unreachable
	// matcher shows as such after it. 1.5 s.
	StatsTimeout time.Duration
	// Retain keeps a shard drawn for this long after it last held drivers
	// or saw traffic, so that shards do not blink as drivers cross
	// borders. 10 min.
	Retain time.Duration
	// MaxShards bounds the shards drawn (the busiest are kept): 20,000
	// hexagons are some 2.5 MB of snapshot. 20,000.
	MaxShards int
	// TimelineSize bounds the timeline's events: 500.
	TimelineSize int
	// MaxClients bounds the open event streams (browsers): 64.
	MaxClients int
	// Title heads the page: "geomatch shard map".
	Title string
}

// DefaultConfig returns the defaults documented on Config's fields.
func DefaultConfig() Config {
	return Config{
		Interval: time.Second, StatsTimeout: 1500 * time.Millisecond, Retain: 10 * time.Minute,
		MaxShards: 20000, TimelineSize: 500, MaxClients: 64, Title: "geomatch shard map",
	}
}

func (c *Config) fill() error {
	d := DefaultConfig()
	if c.Interval == 0 {
		c.Interval = d.Interval
	}
	if c.StatsTimeout == 0 {
		c.StatsTimeout = d.StatsTimeout
	}
	if c.Retain == 0 {
		c.Retain = d.Retain
	}
	if c.MaxShards == 0 {
		c.MaxShards = d.MaxShards
	}
	if c.TimelineSize == 0 {
		c.TimelineSize = d.TimelineSize
	}
	if c.MaxClients == 0 {
		c.MaxClients = d.MaxClients
	}
	if c.Title == "" {
		c.Title = d.Title
	}
	switch {
	case c.Interval < 100*time.Millisecond:
		return fmt.Errorf("ui: interval %v, want at least 100ms", c.Interval)
	case c.StatsTimeout < 0, c.Retain < 0:
		return errors.New("ui: negative stats timeout or retention")
	case c.MaxShards < 1 || c.TimelineSize < 1 || c.MaxClients < 1:
		return errors.New("ui: max shards, timeline size and max clients must be positive")
	}
	return nil
}

// published is one snapshot, encoded once for every client.
type published struct {
	snap *mapview.Snapshot
	// full is the snapshot's JSON, every boundary included; update leaves
	// out the boundaries of the shards the previous snapshot had.
	full, update []byte
}

// Collector gathers the ring and the matchers' load into snapshots, once a
// second and at once on a ring change, and keeps the ring's timeline. One
// per router: every page reads its latest snapshot. Run it with Run.
type Collector struct {
	src Cluster
	cfg Config
	log *slog.Logger

	mu      sync.Mutex
	cur     *published
	changed chan struct{} // closed and replaced on every publish
	done    chan struct{} // closed when Run returns

	// Nobody watching, nobody probed: the matchers are asked for their
	// load only while a page is open (an event stream) or a snapshot was
	// fetched within idleAfter.
	viewers  atomic.Int64  // open event streams
	lastView atomic.Int64  // unix ns of the last snapshot fetched
	wake     chan struct{} // cap 1: a first viewer arrived

	// Owned by Run's loop.
	seq        uint64
	last       *shardmap.Map
	prevCells  map[string]bool
	recent     map[shardmap.Cell]time.Time
	colors     map[string]string
	boundaries map[shardmap.Cell][][2]float64
	tl         timeline
}

// NewCollector returns a collector of src's ring and load.
func NewCollector(src Cluster, cfg Config, log *slog.Logger) (*Collector, error) {
	if src == nil {
		return nil, errors.New("ui: a cluster is required")
	}
	if err := cfg.fill(); err != nil {
		return nil, err
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Collector{
		src: src, cfg: cfg, log: log, changed: make(chan struct{}), done: make(chan struct{}), wake: make(chan struct{}, 1),
		recent: map[shardmap.Cell]time.Time{}, colors: map[string]string{}, boundaries: map[shardmap.Cell][][2]float64{},
		tl: timeline{max: cfg.TimelineSize},
	}, nil
}

// Latest returns the newest snapshot (nil before the first) and a
// channel closed when a newer one is published or the collector stops.
func (c *Collector) Latest() (*published, <-chan struct{}) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.cur, c.changed
}

// Done is closed when Run has returned.
func (c *Collector) Done() <-chan struct{} { return c.done }

// Run collects until ctx is done: a snapshot at once, then one on every
// probe of the matchers (every Interval) and on every ring change (with
// the last probe's load, so that a new owner shows without waiting for
// the matchers).
func (c *Collector) Run(ctx context.Context) error {
	defer close(c.done)
	results := make(chan []fleet.NodeStats, 1)
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		c.probeLoop(ctx, results)
	}()
	defer wg.Wait()
	var stats []fleet.NodeStats
	for {
		m, changed := c.src.Ring()
		c.publish(m, stats, time.Now())
		select {
		case <-ctx.Done():
			return nil
		case <-changed:
		case stats = <-results:
		}
	}
}

// idleAfter is how long after the last snapshot fetched (with no event
// stream open) the matchers are still probed.
const idleAfter = 30 * time.Second

// watched reports whether a page is looking.
func (c *Collector) watched(now time.Time) bool {
	return c.viewers.Load() > 0 || now.UnixNano()-c.lastView.Load() < int64(idleAfter)
}

// watch counts an open event stream until release is called; the first
// viewer wakes the prober.
func (c *Collector) watch() (release func()) {
	was := c.watched(time.Now())
	c.viewers.Add(1) // before the poke: the prober checks watched when woken
	if !was {
		c.poke()
	}
	return func() { c.viewers.Add(-1) }
}

// viewed notes a snapshot fetched.
func (c *Collector) viewed() {
	now := time.Now()
	was := c.watched(now)
	c.lastView.Store(now.UnixNano())
	if !was {
		c.poke()
	}
}

func (c *Collector) poke() {
	select {
	case c.wake <- struct{}{}:
	default:
	}
}

// probeLoop probes the matchers every Interval while a page is looking
// (once at start in any case) and hands the newest answers to Run (an
// older unread answer is replaced).
func (c *Collector) probeLoop(ctx context.Context, results chan []fleet.NodeStats) {
	t := time.NewTicker(c.cfg.Interval)
	defer t.Stop()
	for first := true; ; first = false {
		if !first && !c.watched(time.Now()) {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			case <-c.wake:
			}
			continue
		}
		m, _ := c.src.Ring()
		pctx, cancel := context.WithTimeout(ctx, c.cfg.StatsTimeout)
		s := c.src.Stats(pctx, m)
		cancel()
		if ctx.Err() != nil {
			return
		}
		select {
		case <-results:
		default:
		}
		results <- s
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		case <-c.wake:
		}
	}
}

// publish builds, encodes and publishes the snapshot of ring m with the
// matchers' stats.
func (c *Collector) publish(m *shardmap.Map, stats []fleet.NodeStats, now time.Time) {
	recent := make([]shardmap.Cell, 0, len(c.recent))
	for cell, seen := range c.recent {
		if now.Sub(seen) > c.cfg.Retain {
			delete(c.recent, cell)
			continue
		}
		recent = append(recent, cell)
	}
	for _, mem := range m.Members() {
		if _, ok := c.colors[mem.ID]; !ok {
			if len(c.colors) > 4096 {
				clear(c.colors) // ids churned far beyond any cluster: start over
			}
			c.colors[mem.ID] = mapview.OwnerColor(len(c.colors))
		}
	}
	if len(c.boundaries) > 2*c.cfg.MaxShards {
		clear(c.boundaries)
	}
	snap, active := build(frame{
		ring: m, stats: stats, recent: recent, now: now, maxShards: c.cfg.MaxShards,
		color:    func(id string) string { return c.colors[id] },
		boundary: c.boundary,
	})
	for _, cell := range active {
		c.recent[cell] = now
	}
	if c.last != nil && m.Epoch() != c.last.Epoch() {
		var watched []shardmap.Cell
		for _, s := range snap.Shards {
			if cell, err := parseShownCell(s.Cell); err == nil {
				watched = append(watched, cell)
			}
		}
		if prev := c.cur; prev != nil {
			for _, s := range prev.snap.Shards {
				if cell, err := parseShownCell(s.Cell); err == nil {
					watched = append(watched, cell)
				}
			}
		}
		evs := diffRings(c.last, m, dedupCells(watched), now)
		c.tl.add(evs...)
		for _, e := range evs {
			c.log.Info("ring change seen", "epoch", e.Epoch, "kind", e.Kind, "event", e.Text)
		}
	}
	c.last = m
	c.seq++
	snap.Seq, snap.Title, snap.Auth, snap.Live, snap.Membership = c.seq, c.cfg.Title, c.src.AuthOn(), true, c.src.MembershipKind()
	snap.Timeline = c.tl.list()

	full, err := json.Marshal(snap)
	if err != nil {
		c.log.Error("encode shard map snapshot", "err", err)
		return
	}
	// The update: the same, without boundaries the previous one had.
	cells := make(map[string]bool, len(snap.Shards))
	upd := *snap
	upd.Shards = make([]mapview.Shard, len(snap.Shards))
	for i, s := range snap.Shards {
		cells[s.Cell] = true
		if c.prevCells[s.Cell] {
			s.Boundary = nil
		}
		upd.Shards[i] = s
	}
	update, err := json.Marshal(&upd)
	if err != nil {
		c.log.Error("encode shard map update", "err", err)
		return
	}
	c.prevCells = cells
	c.mu.Lock()
	c.cur = &published{snap: snap, full: full, update: update}
	close(c.changed)
	c.changed = make(chan struct{})
	c.mu.Unlock()
}

// boundary returns a shard's hexagon, computed once.
func (c *Collector) boundary(cell shardmap.Cell) [][2]float64 {
	if b, ok := c.boundaries[cell]; ok {
		return b
	}
	b, err := mapview.Boundary(cell)
	if err != nil {
		return nil
	}
	c.boundaries[cell] = b
	return b
}

func parseShownCell(s string) (shardmap.Cell, error) { return membership.ParseCell(s) }

func dedupCells(cs []shardmap.Cell) []shardmap.Cell {
	seen := make(map[shardmap.Cell]bool, len(cs))
	out := cs[:0]
	for _, c := range cs {
		if !seen[c] {
			seen[c] = true
			out = append(out, c)
		}
	}
	return out
}

package matcher

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"slices"
	"time"

	"google.golang.org/grpc"

	"github.com/uber/h3-go/v4"

	"github.com/geomatch/geomatch/driver"
	"github.com/geomatch/geomatch/events"
	"github.com/geomatch/geomatch/internal/defaults"
	"github.com/geomatch/geomatch/internal/geo"
	"github.com/geomatch/geomatch/matcher/index"
	"github.com/geomatch/geomatch/membership"
	"github.com/geomatch/geomatch/shardmap"
	"github.com/geomatch/geomatch/store"
)

// Limits of the internal API, enforced on every call.
const (
	// MaxBatch is the most updates (and, separately, evictions) one Apply
	// message may carry.
	MaxBatch = 10000
	// MaxLimit is the most neighbours one Nearby call may ask for.
	MaxLimit = 1000
	// MaxRadiusM is the largest search radius, in meters.
	MaxRadiusM = 100_000
	// MaxShardsPerQuery bounds the shard list of one Nearby call.
	MaxShardsPerQuery = 100_000
	// MaxIDBytes bounds driver ids.
	MaxIDBytes = 128
	// MaxFenceCountIDs bounds the fences of one FenceCounts call.
	MaxFenceCountIDs = 10_000
)

// Config configures a node. Zero fields take the defaults of DefaultConfig.
type Config struct {
	// NodeID is the node's member id on the ring; required.
	NodeID string
	// Index configures the driver index: TTL of silent drivers (default
	// 30 s) and the bound on drivers held (default 5M).
	Index index.Config
	// ExpireEvery is how often silent drivers are expired; default 1 s, so a
	// driver lives at most TTL + 1 s after its last update.
	ExpireEvery time.Duration
	// RateWindow is the time constant of the per-shard load rates reported
	// by Stats; default 10 s.
	RateWindow time.Duration
	// RefreshTimeout bounds the ring refresh a node does when a caller shows
	// a newer epoch; default 1 s.
	RefreshTimeout time.Duration
	// Store, when set, receives the last known position of every driver,
	// grouped by shard and written behind (warm-up data for a shard's next
	// owner), and a warm-up reads the positions of a dead owner's shards
	// from it. A store with a KeepsPositions method that reports false
	// (store.Memory.WithoutPositions) is sent none.
	Store PositionStore
	// HandoffGrace is how long the node keeps the drivers of a shard it
	// gave up, for the new owner to fetch; default 15 s.
	HandoffGrace time.Duration
	// WarmTimeout bounds the warm-up of gained shards; searches over them
	// wait at most this long; default 5 s.
	WarmTimeout time.Duration
	// TransferTimeout bounds the transfer from one old owner; default 3 s.
	TransferTimeout time.Duration
	// DialOptions are used to reach other matchers (Transfer); default
	// plaintext.
	DialOptions []grpc.DialOption
	// Fences, FenceStates and Events, all three set, turn fences on: the
	// node follows the fence definitions of Fences, checks every update
	// it applies against them, and logs the events to Events (see
	// fences.go).
	Fences      store.Fences
	FenceStates store.FenceStates
	Events      events.Log
	// FenceSyncEvery is how often the node reads fence changes from the
	// store (a router also makes it read them before a PutFence returns);
	// default 1 s.
	FenceSyncEvery time.Duration
	// Lease, when set, is checked before every search answered and every
	// batch applied (see Lease); nil (a dev or static cluster, where no
	// writer moves shards behind the node's back) always serves.
	Lease Lease
}

// DefaultConfig returns the defaults for node id.
func DefaultConfig(id string) Config {
	return Config{
		NodeID:          id,
		Index:           index.DefaultConfig(),
		ExpireEvery:     time.Second,
		RateWindow:      10 * time.Second,
		RefreshTimeout:  time.Second,
		HandoffGrace:    15 * time.Second,
		WarmTimeout:     5 * time.Second,
		TransferTimeout: 3 * time.Second,
		FenceSyncEvery:  time.Second,
	}
}

// fill replaces zero fields by their defaults and checks the rest.
func (c *Config) fill() error {
	d := DefaultConfig(c.NodeID)
	var f defaults.Filler
	if c.NodeID == "" {
		f.Fail(errors.New("NodeID: required"))
	}
	f.Duration("ExpireEvery", &c.ExpireEvery, d.ExpireEvery)
	f.Duration("RateWindow", &c.RateWindow, d.RateWindow)
	f.Duration("RefreshTimeout", &c.RefreshTimeout, d.RefreshTimeout)
	f.Duration("HandoffGrace", &c.HandoffGrace, d.HandoffGrace)
	f.Duration("WarmTimeout", &c.WarmTimeout, d.WarmTimeout)
	f.Duration("TransferTimeout", &c.TransferTimeout, d.TransferTimeout)
	f.Duration("FenceSyncEvery", &c.FenceSyncEvery, d.FenceSyncEvery)
	return f.Err("matcher config")
}

// Node is one matcher node. Its methods are safe for concurrent use.
type Node struct {
	cfg   Config
	ix    *index.Index
	src   membership.Source
	log   *slog.Logger
	loads *loads
	pos   *positionWriter // nil without a store
	ho    handoff
	count counters
	fence *fenceEngine // nil without fences
	// standby keeps updates a lost matcher acknowledged, for the shards
	// this node takes over (standby.go).
	standby standbyTable
}

// NewNode returns a node that learns its shards from src.
func NewNode(cfg Config, src membership.Source, log *slog.Logger) (*Node, error) {
	if err := cfg.fill(); err != nil {
		return nil, err
	}
	ix, err := index.New(cfg.Index)
	if err != nil {
		return nil, fmt.Errorf("matcher %s: %w", cfg.NodeID, err)
	}
	n := &Node{cfg: cfg, ix: ix, src: src, log: log.With("node", cfg.NodeID), loads: newLoads(cfg.RateWindow)}
	n.ho.peers.opts = cfg.DialOptions
	if cfg.Store != nil && keepsPositions(cfg.Store) {
		n.pos = newPositionWriter(cfg.Store)
	}
	if cfg.Fences != nil && cfg.FenceStates != nil && cfg.Events != nil {
		m, _ := src.Current()
		if n.fence, err = newFenceEngine(cfg.Fences, cfg.FenceStates, cfg.Events, m.Layout().FineRes()); err != nil {
			return nil, fmt.Errorf("matcher %s: %w", cfg.NodeID, err)
		}
	}
	return n, nil
}

// ID returns the node's member id.
func (n *Node) ID() string { return n.cfg.NodeID }

// Index returns the node's driver index (read access for status and tests).
func (n *Node) Index() *index.Index { return n.ix }

// Run expires silent drivers, refreshes load rates and follows ring changes
// (handing shards over, see Handoff) until ctx is done.
func (n *Node) Run(ctx context.Context) error {
	tick := time.NewTicker(n.cfg.ExpireEvery)
	defer tick.Stop()
	if n.pos != nil {
		done := make(chan struct{})
		pctx, cancel := context.WithCancel(ctx)
		go func() { defer close(done); n.runPositions(pctx, n.pos) }()
		defer func() { cancel(); <-done }()
	}
	defer n.ho.peers.close()
	defer n.stopWarm()
	if n.fence != nil {
		done := make(chan struct{})
		fctx, cancel := context.WithCancel(ctx)
		go func() { defer close(done); n.followFences(fctx) }()
		defer func() { cancel(); <-done }()
	}
	m, changed := n.src.Current()
	n.log.Info("matcher running", "epoch", m.Epoch())
	n.advance(ctx)
	last := time.Now()
	for {
		select {
		case <-ctx.Done():
			return nil
		case now := <-tick.C:
			if k := n.expire(ctx); k > 0 {
				n.log.Debug("expired silent drivers", "count", k)
			}
			n.expireRetired(now)
			n.loads.tick(now.Sub(last))
			last = now
		case <-changed:
			_, changed = n.src.Current()
			n.advance(ctx)
		}
	}
}

// stopWarm cancels a running warm-up and waits for it.
func (n *Node) stopWarm() {
	n.ho.mu.Lock()
	if n.ho.cancel != nil {
		n.ho.cancel()
	}
	n.ho.mu.Unlock()
	n.ho.wg.Wait()
}

func (n *Node) owns(m *shardmap.Map, shard h3.Cell) bool {
	if !m.Layout().IsShard(shard) {
		return false
	}
	o, ok := m.Owner(shard)
	return ok && o.ID == n.cfg.NodeID
}

// view returns the map to judge ownership by for a caller at epoch, and
// whether the node is behind the caller even after a refresh.
func (n *Node) view(ctx context.Context, epoch uint64) (*shardmap.Map, bool) {
	m, _ := n.src.Current()
	if epoch <= m.Epoch() {
		return m, false
	}
	rctx, cancel := context.WithTimeout(ctx, n.cfg.RefreshTimeout)
	defer cancel()
	if err := n.src.Refresh(rctx); err != nil {
		n.log.Warn("ring refresh failed", "caller_epoch", epoch, "err", err)
	}
	m, _ = n.src.Current()
	return m, epoch > m.Epoch()
}

// Apply applies one batch of updates and evictions and returns the batch's
// result. s may be nil; a sender that reuses one scratch across its
// batches makes steady-state batches allocate nothing but the result. The
// result's slices belong to s and are valid until its next use.
func (n *Node) Apply(ctx context.Context, b Batch, s *ApplyScratch) (BatchResult, error) {
	if len(b.Updates) > MaxBatch || len(b.Evictions) > MaxBatch {
		return BatchResult{}, errBatchTooLarge(len(b.Updates), len(b.Evictions))
	}
	if s == nil {
		s = &ApplyScratch{}
	}
	n.view(ctx, b.Epoch) // a refresh, if the caller is ahead, happens before any lock
	n.advance(ctx)       // shard moves first: evictions during a warm-up are recorded
	n.awaitReleases(ctx, &b)
	res := n.applyLocked(b, s)
	if n.fence != nil && len(s.fence) > 0 {
		// After the lock: the fence engine reads and writes the store.
		n.processFences(ctx, s.fence)
		clear(s.fence)
		s.fence = s.fence[:0]
	}
	return res, nil
}

// applyLocked applies a batch under the ring lock (no I/O while it is
// held) and leaves the applied updates in s.fence when fences are on.
func (n *Node) applyLocked(b Batch, s *ApplyScratch) BatchResult {
	n.ho.ring.RLock()
	defer n.ho.ring.RUnlock()
	// Judged under the lock, so no retire slips between the check and the
	// index; no I/O while it is held.
	m, _ := n.src.Current()
	behind := b.Epoch > m.Epoch()
	// Evictions first: they come from claims acknowledged before any of
	// the batch's updates were sent, so an update of an evicted driver
	// finds it gone (new here, Claimed) rather than its stale copy.
	res := BatchResult{Epoch: m.Epoch(), Exceptions: s.exc[:0], Claimed: s.claimed[:0], Newer: s.newer[:0]}
	// Evictions and claims are logged one by one at debug level only (a
	// chaos run's --process-log-level debug), to follow a driver's copies.
	debug := n.log.Enabled(context.Background(), slog.LevelDebug)
	for _, e := range b.Evictions {
		if e.DriverID == "" || len(e.DriverID) > MaxIDBytes {
			continue
		}
		if d, ok := n.ix.Get(e.DriverID); ok && d.TimestampMs > e.OlderThanMs && e.ClaimedBy != "" && len(e.ClaimedBy) <= MaxIDBytes {
			// The claim was answered late: the driver moved on and this
			// node holds it newer (evict leaves that copy alone). The
			// claimer's copy is the one to go.
			res.Newer = append(res.Newer, Eviction{DriverID: e.DriverID, OlderThanMs: d.TimestampMs, ClaimedBy: e.ClaimedBy})
			if debug {
				n.log.Debug("eviction: a newer copy is held here", "driver", e.DriverID, "older_than_ms", e.OlderThanMs, "held_ms", d.TimestampMs, "claimed_by", e.ClaimedBy)
			}
		} else if debug {
			n.log.Debug("eviction", "driver", e.DriverID, "older_than_ms", e.OlderThanMs, "claimed_by", e.ClaimedBy)
		}
		// Always: the timestamps it supersedes are recorded for the
		// handoff either way.
		n.evict(e.DriverID, e.OlderThanMs)
	}
	layout := m.Layout()
	s.updates, s.pos = s.updates[:0], s.pos[:0]
	if s.owned == nil || len(s.owned) > maxOwnedCache {
		s.owned = make(map[h3.Cell]bool)
	} else {
		clear(s.owned)
	}
	for i := range b.Updates {
		u := &b.Updates[i]
		if err := checkUpdate(u, layout); err != nil {
			res.Exceptions = append(res.Exceptions, Exception{Index: uint32(i), Outcome: driver.Invalid})
			continue
		}
		shard := layout.ShardOfFine(u.FineCell)
		owned, ok := s.owned[shard]
		if !ok {
			owned = n.owns(m, shard)
			s.owned[shard] = owned
		}
		if behind || !owned {
			res.Exceptions = append(res.Exceptions, Exception{Index: uint32(i), Outcome: driver.NotOwner})
			continue
		}
		s.updates = append(s.updates, index.Update{
			ID:           u.DriverID,
			Pos:          u.Pos,
			TimestampMs:  u.TimestampMs,
			Status:       u.Status,
			VehicleClass: u.VehicleClass,
			Shard:        shard,
			OnStream:     u.OnStream,
		})
		s.pos = append(s.pos, uint32(i))
	}
	if cap(s.results) < len(s.updates) {
		s.results = make([]index.Result, len(s.updates))
	}
	results := s.results[:len(s.updates)]
	n.ix.Apply(s.updates, results)
	applied := uint64(0)
	for j, r := range results {
		i := s.pos[j]
		switch r.Outcome {
		case index.OutcomeApplied:
			applied++
			u := &s.updates[j]
			if debug && !r.Claimed {
				n.log.Debug("applied", "driver", u.ID, "ts", u.TimestampMs, "shard", u.Shard.String())
			}
			n.loads.get(u.Shard).updates.Add(1)
			if r.Claimed {
				res.Claimed = append(res.Claimed, i)
				if debug {
					n.log.Debug("claimed", "driver", u.ID, "ts", u.TimestampMs, "shard", u.Shard.String())
				}
			}
			if n.fence != nil {
				w := fenceWork{u: *u, prev: r.Prev, claimed: r.Claimed, cell: b.Updates[i].FineCell}
				if r.Prev.Live {
					// The previous position's cell from the layout's
					// locator: pure Go for a cell seen before, where the
					// fence index would make a cgo call.
					w.prevCell = layout.FineCell(r.Prev.Pos)
				}
				s.fence = append(s.fence, w)
			}
			if n.pos != nil {
				n.pos.put(posWrite{shard: uint64(u.Shard), pos: storePosition(u)})
				if r.MovedFrom != 0 {
					n.pos.put(posWrite{shard: uint64(r.MovedFrom), pos: store.Position{DriverID: u.ID}, del: true})
				}
			}
		default:
			res.Exceptions = append(res.Exceptions, Exception{Index: i, Outcome: r.Outcome})
		}
	}
	for _, e := range res.Exceptions {
		if int(e.Outcome) < len(n.count.updates) {
			n.count.updates[e.Outcome].Add(1)
		}
	}
	n.count.updates[driver.Applied].Add(applied)
	clear(s.updates) // no references to the batch's strings between batches
	s.exc, s.claimed, s.newer = res.Exceptions, res.Claimed, res.Newer
	return res
}

// maxOwnedCache bounds the ownership cache an Apply stream keeps between
// batches (a batch of MaxBatch updates in as many shards grows it that far).
const maxOwnedCache = 4096

func checkUpdate(u *Update, layout *shardmap.Layout) error {
	switch {
	case u.DriverID == "" || len(u.DriverID) > MaxIDBytes:
		return fmt.Errorf("driver_id: must be 1..%d bytes: %w", MaxIDBytes, errInvalid)
	case u.TimestampMs <= 0:
		return fmt.Errorf("timestamp_ms: must be > 0: %w", errInvalid)
	case !u.Status.Valid():
		return fmt.Errorf("status: unknown value %d: %w", u.Status, errInvalid)
	case u.FineCell == 0 || shardmap.Resolution(u.FineCell) != layout.FineRes():
		return fmt.Errorf("fine_cell: not a cell at resolution %d: %w", layout.FineRes(), errInvalid)
	}
	if err := u.Pos.Validate(); err != nil {
		return fmt.Errorf("position: %w: %w", err, errInvalid)
	}
	return nil
}

// Nearby answers an exact k-nearest search over q's shards, all of which
// the node must own at the caller's epoch (a *shardmap.NotOwnerError
// otherwise). It returns the node's epoch and the neighbours, nearest
// first. q.Shards may be reordered.
func (n *Node) Nearby(ctx context.Context, q Query) (uint64, []index.Neighbor, error) {
	switch {
	case q.Pos.Validate() != nil:
		return 0, nil, fmt.Errorf("position: %w: %w", q.Pos.Validate(), errInvalid)
	case math.IsNaN(q.RadiusM) || q.RadiusM < 0 || q.RadiusM > MaxRadiusM:
		return 0, nil, fmt.Errorf("radius_m: must be within [0, %d], got %v: %w", MaxRadiusM, q.RadiusM, errInvalid)
	case q.Limit <= 0 || q.Limit > MaxLimit:
		return 0, nil, fmt.Errorf("limit: must be within [1, %d], got %d: %w", MaxLimit, q.Limit, errInvalid)
	case len(q.Shards) > MaxShardsPerQuery:
		return 0, nil, errTooManyShards(len(q.Shards))
	case !q.Status.Valid():
		return 0, nil, fmt.Errorf("status: unknown value %d: %w", q.Status, errInvalid)
	}
	m, behind := n.view(ctx, q.Epoch)
	var refused []h3.Cell
	for _, c := range q.Shards {
		if behind || !n.owns(m, c) {
			refused = append(refused, c)
		}
	}
	if len(refused) > 0 {
		return 0, nil, &shardmap.NotOwnerError{NodeID: n.cfg.NodeID, Epoch: m.Epoch(), Shards: refused}
	}
	if err := n.waitWarm(ctx, q.Shards); err != nil {
		return 0, nil, err
	}
	for _, c := range q.Shards {
		n.loads.get(c).queries.Add(1)
	}
	n.count.searches.Add(1)
	f := index.Filter{Status: q.Status, VehicleClass: q.VehicleClass, OnStreamOnly: q.OnStreamOnly}
	return m.Epoch(), n.ix.Nearby(q.Pos, q.RadiusM, q.Limit, q.Shards, f, nil), nil
}

// Stats reports the node's drivers and load per shard, most drivers first.
func (n *Node) Stats() Stats {
	m, _ := n.src.Current()
	rates := n.loads.rates()
	out := Stats{NodeID: n.cfg.NodeID, Epoch: m.Epoch(), Drivers: int64(n.ix.Len()), ConsulLease: n.consulLease()}
	seen := make(map[h3.Cell]bool, len(rates))
	for _, st := range n.ix.Shards() {
		r := rates[st.Shard]
		seen[st.Shard] = true
		out.Shards = append(out.Shards, ShardStats{Shard: st.Shard, Drivers: int64(st.Drivers), UpdatesPerS: r[0], QueriesPerS: r[1]})
	}
	for c, r := range rates {
		if !seen[c] && (r[0] > 0.01 || r[1] > 0.01) {
			out.Shards = append(out.Shards, ShardStats{Shard: c, UpdatesPerS: r[0], QueriesPerS: r[1]})
		}
	}
	slices.SortFunc(out.Shards, func(a, b ShardStats) int {
		if a.Drivers != b.Drivers {
			return int(b.Drivers - a.Drivers)
		}
		return int(int64(a.Shard>>1) - int64(b.Shard>>1))
	})
	return out
}

// CheckOwner returns a *shardmap.NotOwnerError unless the node owns shard for a caller
// at epoch (the rules of the package doc).
func (n *Node) CheckOwner(ctx context.Context, epoch uint64, shard h3.Cell) error {
	m, behind := n.view(ctx, epoch)
	if behind || !n.owns(m, shard) {
		return &shardmap.NotOwnerError{NodeID: n.cfg.NodeID, Epoch: m.Epoch(), Shards: []h3.Cell{shard}}
	}
	return nil
}

// Owns reports whether the node owns the shard of p on the current ring.
func (n *Node) Owns(p geo.LatLng) bool {
	m, _ := n.src.Current()
	_, _, owner, ok := m.Locate(p)
	return ok && owner.ID == n.cfg.NodeID
}

// Shard returns the shard of p on the current ring.
func (n *Node) Shard(p geo.LatLng) uint64 {
	m, _ := n.src.Current()
	return uint64(m.Layout().ShardOf(p))
}

// CheckOwnerOf is CheckOwner for a shard given as a number (the internal
// API's encoding); it fits dispatch.OwnerCheck.
func (n *Node) CheckOwnerOf(ctx context.Context, epoch, shard uint64) error {
	return n.CheckOwner(ctx, epoch, h3.Cell(shard))
}

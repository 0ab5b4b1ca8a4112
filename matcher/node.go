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

	"github.com/geomatch/geomatch/internal/geo"
	"github.com/geomatch/geomatch/matcher/index"
	"github.com/geomatch/geomatch/membership"
	matcherv1 "github.com/geomatch/geomatch/proto/geomatch/matcher/v1"
	geomatchv1 "github.com/geomatch/geomatch/proto/geomatch/v1"
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
	// owner).
	Store store.Store
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
	}
}

func (c *Config) fill() error {
	d := DefaultConfig(c.NodeID)
	if c.NodeID == "" {
		return errors.New("matcher config: node id is required")
	}
	if c.ExpireEvery <= 0 {
		c.ExpireEvery = d.ExpireEvery
	}
	if c.RateWindow <= 0 {
		c.RateWindow = d.RateWindow
	}
	if c.RefreshTimeout <= 0 {
		c.RefreshTimeout = d.RefreshTimeout
	}
	if c.HandoffGrace <= 0 {
		c.HandoffGrace = d.HandoffGrace
	}
	if c.WarmTimeout <= 0 {
		c.WarmTimeout = d.WarmTimeout
	}
	if c.TransferTimeout <= 0 {
		c.TransferTimeout = d.TransferTimeout
	}
	return nil
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
	if cfg.Store != nil {
		n.pos = newPositionWriter(cfg.Store)
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
	m, changed := n.src.Current()
	n.log.Info("matcher running", "epoch", m.Epoch())
	n.advance(ctx)
	last := time.Now()
	for {
		select {
		case <-ctx.Done():
			return nil
		case now := <-tick.C:
			if k := n.ix.Expire(); k > 0 {
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

// applyBuf holds the scratch slices of one Apply stream, reused across
// batches so steady-state batches do not allocate them.
type applyBuf struct {
	updates []index.Update
	results []index.Result
	pos     []uint32
	// owned caches n.owns for one call's map: a batch's updates fall in
	// few shards, and the ring lookup cost a fifth of Apply.
	owned map[h3.Cell]bool
}

// Apply applies one batch of updates and evictions and returns the batch's
// response. buf may be nil.
func (n *Node) Apply(ctx context.Context, req *matcherv1.ApplyRequest, buf *applyBuf) (*matcherv1.ApplyResponse, error) {
	if len(req.GetUpdates()) > MaxBatch || len(req.GetEvictions()) > MaxBatch {
		return nil, fmt.Errorf("apply batch: %d updates and %d evictions, at most %d each: %w",
			len(req.GetUpdates()), len(req.GetEvictions()), MaxBatch, errInvalid)
	}
	if buf == nil {
		buf = &applyBuf{}
	}
	n.view(ctx, req.GetEpoch()) // a refresh, if the caller is ahead, happens before any lock
	n.advance(ctx)              // shard moves first: evictions during a warm-up are recorded
	n.ho.ring.RLock()
	defer n.ho.ring.RUnlock()
	// Judged under the lock, so no retire slips between the check and the
	// index; no I/O while it is held.
	m, _ := n.src.Current()
	behind := req.GetEpoch() > m.Epoch()
	resp := &matcherv1.ApplyResponse{Seq: req.GetSeq(), Epoch: m.Epoch()}
	layout := m.Layout()
	buf.updates, buf.pos = buf.updates[:0], buf.pos[:0]
	if buf.owned == nil || len(buf.owned) > maxOwnedCache {
		buf.owned = make(map[h3.Cell]bool)
	} else {
		clear(buf.owned)
	}
	for i, u := range req.GetUpdates() {
		fine := h3.Cell(u.GetFineCell())
		if err := checkUpdate(u, layout); err != nil {
			resp.Exceptions = append(resp.Exceptions, &matcherv1.Exception{Index: uint32(i), Outcome: matcherv1.Outcome_OUTCOME_INVALID})
			continue
		}
		shard := layout.ShardOfFine(fine)
		owned, ok := buf.owned[shard]
		if !ok {
			owned = n.owns(m, shard)
			buf.owned[shard] = owned
		}
		if behind || !owned {
			resp.Exceptions = append(resp.Exceptions, &matcherv1.Exception{Index: uint32(i), Outcome: matcherv1.Outcome_OUTCOME_NOT_OWNER})
			continue
		}
		buf.updates = append(buf.updates, index.Update{
			ID:           u.GetDriverId(),
			Pos:          geo.LatLng{Lat: u.GetLat(), Lng: u.GetLng()},
			TimestampMs:  u.GetTimestampMs(),
			Status:       index.Status(u.GetStatus()),
			VehicleClass: u.GetVehicleClass(),
			Shard:        shard,
		})
		buf.pos = append(buf.pos, uint32(i))
	}
	if cap(buf.results) < len(buf.updates) {
		buf.results = make([]index.Result, len(buf.updates))
	}
	results := buf.results[:len(buf.updates)]
	n.ix.Apply(buf.updates, results)
	for j, r := range results {
		i := buf.pos[j]
		switch r.Outcome {
		case index.OutcomeApplied:
			u := &buf.updates[j]
			n.loads.get(u.Shard).updates.Add(1)
			if r.Claimed {
				resp.Claimed = append(resp.Claimed, i)
			}
			if n.pos != nil {
				n.pos.put(posWrite{shard: uint64(u.Shard), pos: storePosition(u)})
				if r.MovedFrom != 0 {
					n.pos.put(posWrite{shard: uint64(r.MovedFrom), pos: store.Position{DriverID: u.ID}, del: true})
				}
			}
		case index.OutcomeDuplicate:
			resp.Exceptions = append(resp.Exceptions, &matcherv1.Exception{Index: i, Outcome: matcherv1.Outcome_OUTCOME_DUPLICATE})
		case index.OutcomeStale:
			resp.Exceptions = append(resp.Exceptions, &matcherv1.Exception{Index: i, Outcome: matcherv1.Outcome_OUTCOME_STALE})
		case index.OutcomeFull:
			resp.Exceptions = append(resp.Exceptions, &matcherv1.Exception{Index: i, Outcome: matcherv1.Outcome_OUTCOME_FULL})
		}
	}
	applied := uint64(len(results))
	for _, e := range resp.Exceptions {
		if o := e.GetOutcome(); o > 0 && int(o) < len(n.count.updates) {
			n.count.updates[o].Add(1)
			if e.GetOutcome() != matcherv1.Outcome_OUTCOME_INVALID && e.GetOutcome() != matcherv1.Outcome_OUTCOME_NOT_OWNER {
				applied--
			}
		}
	}
	n.count.updates[matcherv1.Outcome_OUTCOME_APPLIED].Add(applied)
	for _, e := range req.GetEvictions() {
		if e.GetDriverId() != "" && len(e.GetDriverId()) <= MaxIDBytes {
			n.evict(e.GetDriverId(), e.GetOlderThanMs())
		}
	}
	return resp, nil
}

// maxOwnedCache bounds the ownership cache an Apply stream keeps between
// batches (a batch of MaxBatch updates in as many shards grows it that far).
const maxOwnedCache = 4096

// errInvalid marks requests the internal API refuses as malformed.
var errInvalid = errors.New("invalid request")

func checkUpdate(u *matcherv1.Update, layout *shardmap.Layout) error {
	switch {
	case u.GetDriverId() == "" || len(u.GetDriverId()) > MaxIDBytes:
		return fmt.Errorf("driver_id: must be 1..%d bytes: %w", MaxIDBytes, errInvalid)
	case u.GetTimestampMs() <= 0:
		return fmt.Errorf("timestamp_ms: must be > 0: %w", errInvalid)
	case u.GetStatus() < geomatchv1.DriverStatus_DRIVER_STATUS_UNSPECIFIED || u.GetStatus() > geomatchv1.DriverStatus_DRIVER_STATUS_OFFLINE:
		return fmt.Errorf("status: unknown value %d: %w", u.GetStatus(), errInvalid)
	case u.GetFineCell() == 0 || shardmap.Resolution(h3.Cell(u.GetFineCell())) != layout.FineRes():
		return fmt.Errorf("fine_cell: not a cell at resolution %d: %w", layout.FineRes(), errInvalid)
	}
	if err := (geo.LatLng{Lat: u.GetLat(), Lng: u.GetLng()}).Validate(); err != nil {
		return fmt.Errorf("position: %w: %w", err, errInvalid)
	}
	return nil
}

// Nearby answers an exact k-nearest search over the request's shards, all
// of which the node must own at the caller's epoch.
func (n *Node) Nearby(ctx context.Context, req *matcherv1.NearbyRequest) (*matcherv1.NearbyResponse, error) {
	q := geo.LatLng{Lat: req.GetLat(), Lng: req.GetLng()}
	switch {
	case q.Validate() != nil:
		return nil, fmt.Errorf("position: %w: %w", q.Validate(), errInvalid)
	case math.IsNaN(req.GetRadiusM()) || req.GetRadiusM() < 0 || req.GetRadiusM() > MaxRadiusM:
		return nil, fmt.Errorf("radius_m: must be within [0, %d], got %v: %w", MaxRadiusM, req.GetRadiusM(), errInvalid)
	case req.GetLimit() <= 0 || req.GetLimit() > MaxLimit:
		return nil, fmt.Errorf("limit: must be within [1, %d], got %d: %w", MaxLimit, req.GetLimit(), errInvalid)
	case len(req.GetShards()) > MaxShardsPerQuery:
		return nil, fmt.Errorf("shards: %d listed, at most %d: %w", len(req.GetShards()), MaxShardsPerQuery, errInvalid)
	case req.GetStatus() < geomatchv1.DriverStatus_DRIVER_STATUS_UNSPECIFIED || req.GetStatus() > geomatchv1.DriverStatus_DRIVER_STATUS_OFFLINE:
		return nil, fmt.Errorf("status: unknown value %d: %w", req.GetStatus(), errInvalid)
	}
	m, behind := n.view(ctx, req.GetEpoch())
	shards := make([]h3.Cell, 0, len(req.GetShards()))
	var refused []h3.Cell
	for _, s := range req.GetShards() {
		c := h3.Cell(s)
		if behind || !n.owns(m, c) {
			refused = append(refused, c)
			continue
		}
		shards = append(shards, c)
	}
	if len(refused) > 0 {
		return nil, &NotOwnerError{NodeID: n.cfg.NodeID, Epoch: m.Epoch(), Shards: refused}
	}
	if err := n.waitWarm(ctx, shards); err != nil {
		return nil, err
	}
	for _, c := range shards {
		n.loads.get(c).queries.Add(1)
	}
	n.count.searches.Add(1)
	f := index.Filter{Status: index.Status(req.GetStatus()), VehicleClass: req.GetVehicleClass()}
	found := n.ix.Nearby(q, req.GetRadiusM(), int(req.GetLimit()), shards, f, nil)
	resp := &matcherv1.NearbyResponse{Epoch: m.Epoch(), Neighbors: make([]*matcherv1.Neighbor, len(found))}
	for i, nb := range found {
		resp.Neighbors[i] = &matcherv1.Neighbor{
			DriverId:     nb.Driver.ID,
			Lat:          nb.Driver.Pos.Lat,
			Lng:          nb.Driver.Pos.Lng,
			DistanceM:    nb.DistanceM,
			TimestampMs:  nb.Driver.TimestampMs,
			Status:       geomatchv1.DriverStatus(nb.Driver.Status),
			VehicleClass: nb.Driver.VehicleClass,
		}
	}
	return resp, nil
}

// Stats reports the node's drivers and load per shard, most drivers first.
func (n *Node) Stats() *matcherv1.StatsResponse {
	m, _ := n.src.Current()
	rates := n.loads.rates()
	resp := &matcherv1.StatsResponse{NodeId: n.cfg.NodeID, Epoch: m.Epoch(), Drivers: int64(n.ix.Len())}
	seen := make(map[h3.Cell]bool, len(rates))
	for _, st := range n.ix.Shards() {
		r := rates[st.Shard]
		seen[st.Shard] = true
		resp.Shards = append(resp.Shards, &matcherv1.ShardStats{Cell: uint64(st.Shard), Drivers: int64(st.Drivers), UpdatesPerS: r[0], QueriesPerS: r[1]})
	}
	for c, r := range rates {
		if !seen[c] && (r[0] > 0.01 || r[1] > 0.01) {
			resp.Shards = append(resp.Shards, &matcherv1.ShardStats{Cell: uint64(c), UpdatesPerS: r[0], QueriesPerS: r[1]})
		}
	}
	slices.SortFunc(resp.Shards, func(a, b *matcherv1.ShardStats) int {
		if a.Drivers != b.Drivers {
			return int(b.Drivers - a.Drivers)
		}
		return int(int64(a.Cell>>1) - int64(b.Cell>>1))
	})
	return resp
}

// CheckOwner returns a NotOwnerError unless the node owns shard for a caller
// at epoch (the rules of the package doc).
func (n *Node) CheckOwner(ctx context.Context, epoch uint64, shard h3.Cell) error {
	m, behind := n.view(ctx, epoch)
	if behind || !n.owns(m, shard) {
		return &NotOwnerError{NodeID: n.cfg.NodeID, Epoch: m.Epoch(), Shards: []h3.Cell{shard}}
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

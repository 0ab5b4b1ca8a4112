package store

import (
	"cmp"
	"context"
	"fmt"
	"maps"
	"slices"
	"sync"
	"time"
)

// Memory is the in-process Store: the embedded default of `geomatch dev`
// and the store of unit tests. State lives in maps guarded by one mutex, so
// every compare-and-set is trivially atomic; it is durable only for the
// life of the process and shared only within it.
//
// Memory holds everything in memory and expires nothing: every driver ever
// seen (a small record each), every trip including final ones, and the last
// position of every driver not deleted. That is fine for a dev cluster and
// for tests; production runs Redis, where final trips expire.
//
// Events are fanned out to subscribers through bounded channels (see
// Subscribe); a full subscriber loses events, a publisher never blocks.
//
// Leases are judged at the caller's now where the call takes one (Reserve,
// StartTrip) and at the wall clock (time.Now) where it does not (Driver,
// Release, SetOffline, SetAvailable). A refused transition returns the
// current state along with the ErrConflict error.
type Memory struct {
	mu        sync.Mutex
	drivers   map[string]driverState
	trips     map[string]memTrip
	active    map[string]uint64 // id → creation sequence, for a stable order
	seq       uint64
	positions map[uint64]map[string]Position
	// noPositions: set by WithoutPositions before use, read-only after.
	noPositions bool

	events memoryBus

	fenceOnce  sync.Once
	fenceStore *memFences
}

// memTrip is a stored trip with its creation sequence.
type memTrip struct {
	rec TripRecord
	seq uint64
}

// memoryEventBuffer is the channel capacity of each subscriber: about a
// second of events for one router at dev-cluster rates, small enough that a
// stuck subscriber costs little.
const memoryEventBuffer = 1024

var _ Store = (*Memory)(nil)

// NewMemory returns an empty in-memory store.
func NewMemory() *Memory {
	return &Memory{
		drivers:   make(map[string]driverState),
		trips:     make(map[string]memTrip),
		active:    make(map[string]uint64),
		positions: make(map[uint64]map[string]Position),
		events:    memoryBus{buffer: memoryEventBuffer, subs: make(map[*memorySub]struct{})},
	}
}

// WithoutPositions makes m keep no driver positions: SavePositions and
// DeletePositions do nothing and Positions finds none, and KeepsPositions
// reports false so matchers do not write them at all. The positions are
// warm-up data for a shard's next owner when the old one died; the
// matchers of one process (geomatch dev) hand shards to each other directly
// and die together, so a copy of every position would only cost memory.
// Call it before m is used; it returns m.
func (m *Memory) WithoutPositions() *Memory {
	m.noPositions = true
	return m
}

// KeepsPositions reports whether m keeps the positions it is given (false
// after WithoutPositions).
func (m *Memory) KeepsPositions() bool { return !m.noPositions }

// Driver returns the driver's state at the current time.
func (m *Memory) Driver(ctx context.Context, id string) (Driver, error) {
	if err := ctx.Err(); err != nil {
		return Driver{}, fmt.Errorf("read driver %s: %w", id, err)
	}
	if id == "" {
		return Driver{}, fmt.Errorf("read driver: empty driver id")
	}
	m.mu.Lock()
	s, ok := m.drivers[id]
	m.mu.Unlock()
	if !ok {
		s = newDriverState()
	}
	return s.view(id, time.Now()), nil
}

// transition applies f to the driver's state atomically. now is the time the
// result is viewed at and conflicts are described at.
func (m *Memory) transition(ctx context.Context, op, id string, now time.Time, f func(driverState) (driverState, outcome)) (Driver, error) {
	if err := ctx.Err(); err != nil {
		return Driver{}, fmt.Errorf("%s: %w", op, err)
	}
	m.mu.Lock()
	s, ok := m.drivers[id]
	if !ok {
		s = newDriverState()
	}
	next, out := f(s)
	if out == applied {
		m.drivers[id] = next
	}
	m.mu.Unlock()
	if out == refused {
		return s.view(id, now), conflict(op, s, now.UnixMilli())
	}
	return next.view(id, now), nil
}

// Reserve implements Store.
func (m *Memory) Reserve(ctx context.Context, driverID, tripID string, lease time.Duration, now time.Time) (Driver, error) {
	op := opReserve(driverID, tripID)
	if err := checkDriverArgs(op, driverID, tripID); err != nil {
		return Driver{}, err
	}
	if err := checkLease(op, lease); err != nil {
		return Driver{}, err
	}
	leaseMs, nowMs := now.Add(lease).UnixMilli(), now.UnixMilli()
	return m.transition(ctx, op, driverID, now, func(s driverState) (driverState, outcome) {
		return s.reserve(tripID, leaseMs, nowMs)
	})
}

// SetOffer implements Store.
func (m *Memory) SetOffer(ctx context.Context, driverID string, offer Offer, leaseUntil time.Time) (Driver, error) {
	op := opSetOffer(driverID, offer.TripID)
	if err := checkDriverArgs(op, driverID, offer.TripID); err != nil {
		return Driver{}, err
	}
	o := offer.clone()
	leaseMs := leaseUntil.UnixMilli()
	return m.transition(ctx, op, driverID, time.Now(), func(s driverState) (driverState, outcome) {
		return s.setOffer(o, leaseMs)
	})
}

// Release implements Store.
func (m *Memory) Release(ctx context.Context, driverID, tripID string) (Driver, error) {
	op := opRelease(driverID, tripID)
	if err := checkDriverArgs(op, driverID, tripID); err != nil {
		return Driver{}, err
	}
	now := time.Now()
	return m.transition(ctx, op, driverID, now, func(s driverState) (driverState, outcome) {
		return s.release(tripID, now.UnixMilli())
	})
}

// StartTrip implements Store.
func (m *Memory) StartTrip(ctx context.Context, driverID, tripID string, now time.Time) (Driver, error) {
	op := opStartTrip(driverID, tripID)
	if err := checkDriverArgs(op, driverID, tripID); err != nil {
		return Driver{}, err
	}
	return m.transition(ctx, op, driverID, now, func(s driverState) (driverState, outcome) {
		return s.startTrip(tripID, now.UnixMilli())
	})
}

// EndTrip implements Store.
func (m *Memory) EndTrip(ctx context.Context, driverID, tripID string) (Driver, error) {
	op := opEndTrip(driverID, tripID)
	if err := checkDriverArgs(op, driverID, tripID); err != nil {
		return Driver{}, err
	}
	return m.transition(ctx, op, driverID, time.Now(), func(s driverState) (driverState, outcome) {
		return s.endTrip(tripID)
	})
}

// SetOffline implements Store.
func (m *Memory) SetOffline(ctx context.Context, driverID string) (Driver, error) {
	op := opSetOffline(driverID)
	if err := checkDriverArgs(op, driverID); err != nil {
		return Driver{}, err
	}
	now := time.Now()
	return m.transition(ctx, op, driverID, now, func(s driverState) (driverState, outcome) {
		return s.setOffline(now.UnixMilli())
	})
}

// SetAvailable implements Store.
func (m *Memory) SetAvailable(ctx context.Context, driverID string) (Driver, error) {
	op := opSetAvailable(driverID)
	if err := checkDriverArgs(op, driverID); err != nil {
		return Driver{}, err
	}
	now := time.Now()
	return m.transition(ctx, op, driverID, now, func(s driverState) (driverState, outcome) {
		return s.setAvailable(now.UnixMilli())
	})
}

// CreateTrip implements Store.
func (m *Memory) CreateTrip(ctx context.Context, rec TripRecord) (TripRecord, bool, error) {
	if err := ctx.Err(); err != nil {
		return TripRecord{}, false, fmt.Errorf("create trip %s: %w", rec.ID, err)
	}
	if rec.ID == "" {
		return TripRecord{}, false, fmt.Errorf("create trip: empty trip id")
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if t, ok := m.trips[rec.ID]; ok {
		return cloneTrip(t.rec), false, nil
	}
	rec = cloneTrip(rec)
	rec.Version = 1
	m.seq++
	m.trips[rec.ID] = memTrip{rec: rec, seq: m.seq}
	if !rec.Final {
		m.active[rec.ID] = m.seq
	}
	return cloneTrip(rec), true, nil
}

// Trip implements Store.
func (m *Memory) Trip(ctx context.Context, id string) (TripRecord, error) {
	if err := ctx.Err(); err != nil {
		return TripRecord{}, fmt.Errorf("read trip %s: %w", id, err)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	t, ok := m.trips[id]
	if !ok {
		return TripRecord{}, fmt.Errorf("read trip %s: %w", id, ErrNotFound)
	}
	return cloneTrip(t.rec), nil
}

// UpdateTrip implements Store. A final trip is not updated again
// (ErrConflict).
func (m *Memory) UpdateTrip(ctx context.Context, rec TripRecord) (TripRecord, error) {
	op := fmt.Sprintf("update trip %s at version %d", rec.ID, rec.Version)
	if err := ctx.Err(); err != nil {
		return TripRecord{}, fmt.Errorf("%s: %w", op, err)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	t, ok := m.trips[rec.ID]
	switch {
	case !ok:
		return TripRecord{}, fmt.Errorf("%s: %w", op, ErrNotFound)
	case t.rec.Version != rec.Version:
		return TripRecord{}, fmt.Errorf("%s: stored version is %d: %w", op, t.rec.Version, ErrConflict)
	case t.rec.Final:
		return TripRecord{}, fmt.Errorf("%s: trip is final: %w", op, ErrConflict)
	}
	rec = cloneTrip(rec)
	rec.Version++
	t.rec = rec
	m.trips[rec.ID] = t
	if rec.Final {
		delete(m.active, rec.ID)
	}
	return cloneTrip(rec), nil
}

// ActiveTrips implements Store: the oldest unfinished trips first.
func (m *Memory) ActiveTrips(ctx context.Context, limit int) ([]TripRecord, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("list active trips: %w", err)
	}
	if limit <= 0 {
		return nil, fmt.Errorf("list active trips: limit %d is not positive", limit)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	type entry struct {
		id  string
		seq uint64
	}
	all := make([]entry, 0, len(m.active))
	for id, seq := range m.active {
		all = append(all, entry{id, seq})
	}
	slices.SortFunc(all, func(a, b entry) int { return cmp.Compare(a.seq, b.seq) })
	out := make([]TripRecord, 0, min(limit, len(all)))
	for _, e := range all[:min(limit, len(all))] {
		out = append(out, cloneTrip(m.trips[e.id].rec))
	}
	return out, nil
}

// SavePositions implements Store. A position whose timestamp equals the
// stored one replaces it.
func (m *Memory) SavePositions(ctx context.Context, shard uint64, ps []Position) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("save positions of shard %d: %w", shard, err)
	}
	if len(ps) == 0 || m.noPositions {
		return nil
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	byDriver := m.positions[shard]
	if byDriver == nil {
		byDriver = make(map[string]Position, len(ps))
		m.positions[shard] = byDriver
	}
	for _, p := range ps {
		if cur, ok := byDriver[p.DriverID]; ok && cur.TimestampMs > p.TimestampMs {
			continue
		}
		byDriver[p.DriverID] = p
	}
	return nil
}

// DeletePositions implements Store.
func (m *Memory) DeletePositions(ctx context.Context, shard uint64, driverIDs []string) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("delete positions of shard %d: %w", shard, err)
	}
	if m.noPositions {
		return nil
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	byDriver := m.positions[shard]
	for _, id := range driverIDs {
		delete(byDriver, id)
	}
	if byDriver != nil && len(byDriver) == 0 {
		delete(m.positions, shard)
	}
	return nil
}

// Positions implements Store, ordered by driver id.
func (m *Memory) Positions(ctx context.Context, shard uint64) ([]Position, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("read positions of shard %d: %w", shard, err)
	}
	m.mu.Lock()
	byDriver := m.positions[shard]
	out := make([]Position, 0, len(byDriver))
	for _, p := range byDriver {
		out = append(out, p)
	}
	m.mu.Unlock()
	sortPositions(out)
	return out, nil
}

// PositionShards implements Store.
func (m *Memory) PositionShards(ctx context.Context, limit int) ([]uint64, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("list position shards: %w", err)
	}
	m.mu.Lock()
	out := slices.Sorted(maps.Keys(m.positions))
	m.mu.Unlock()
	if len(out) > limit {
		out = out[:max(limit, 0)]
	}
	return out, nil
}

// Close ends every subscription (their channels close). The state stays
// readable; Subscribe fails afterwards.
func (m *Memory) Close() error {
	m.events.close()
	return nil
}

// cloneTrip copies rec so callers never share Data with the store.
func cloneTrip(rec TripRecord) TripRecord {
	rec.Data = cloneBytes(rec.Data)
	return rec
}

// sortPositions orders positions by driver id, the order both stores
// return.
func sortPositions(ps []Position) {
	slices.SortFunc(ps, func(a, b Position) int { return cmp.Compare(a.DriverID, b.DriverID) })
}

package store

import (
	"cmp"
	"context"
	"slices"
	"strings"
	"sync"
)

// memFences is the in-memory fence store of Memory.
type memFences struct {
	mu      sync.Mutex
	byID    map[string]FenceRecord
	rev     uint64
	dead    map[string]uint64 // deleted id → revision, bounded
	floor   uint64            // highest revision of a forgotten deletion
	states  *stateTable
	maxSize int
	// changes lists (revision, id) in revision order, so FenceChanges
	// reads from a revision on without a scan; entries a later change
	// superseded are skipped when read and compacted away now and then.
	changes []fenceChange
}

type fenceChange struct {
	rev uint64
	id  string
}

// logChange records a put or delete at f.rev. Caller holds f.mu.
func (f *memFences) logChange(id string) {
	f.changes = append(f.changes, fenceChange{rev: f.rev, id: id})
	if len(f.changes) > 1024 && len(f.changes) > 2*(len(f.byID)+len(f.dead)) {
		kept := f.changes[:0]
		for _, c := range f.changes {
			if f.current(c) {
				kept = append(kept, c)
			}
		}
		clear(f.changes[len(kept):])
		f.changes = kept
	}
}

// current reports whether change c is still the last change of its fence.
func (f *memFences) current(c fenceChange) bool {
	if rec, ok := f.byID[c.id]; ok {
		return rec.Rev == c.rev
	}
	return f.dead[c.id] == c.rev
}

func (m *Memory) fences() *memFences {
	m.fenceOnce.Do(func() {
		m.fenceStore = &memFences{byID: map[string]FenceRecord{}, dead: map[string]uint64{}, states: newStateTable(), maxSize: DefaultMaxFences}
	})
	return m.fenceStore
}

// DefaultMaxFences bounds the fences a store holds.
const DefaultMaxFences = 1_000_000

// PutFence implements Fences.
func (m *Memory) PutFence(_ context.Context, rec FenceRecord) (FenceRecord, error) {
	f := m.fences()
	f.mu.Lock()
	defer f.mu.Unlock()
	if _, ok := f.byID[rec.ID]; !ok && len(f.byID) >= f.maxSize {
		return FenceRecord{}, ErrFenceLimit
	}
	f.rev++
	rec.Rev = f.rev
	rec.Data = slices.Clone(rec.Data)
	f.byID[rec.ID] = rec
	delete(f.dead, rec.ID)
	f.logChange(rec.ID)
	return rec, nil
}

// DeleteFence implements Fences.
func (m *Memory) DeleteFence(_ context.Context, id string) (uint64, error) {
	f := m.fences()
	f.mu.Lock()
	defer f.mu.Unlock()
	if _, ok := f.byID[id]; !ok {
		return 0, ErrNotFound
	}
	delete(f.byID, id)
	f.rev++
	f.dead[id] = f.rev
	f.logChange(id)
	if len(f.dead) > MaxFenceTombstones {
		// Forget the oldest deletion.
		oldest, orev := "", uint64(0)
		for d, r := range f.dead {
			if oldest == "" || r < orev {
				oldest, orev = d, r
			}
		}
		delete(f.dead, oldest)
		f.floor = max(f.floor, orev)
	}
	return f.rev, nil
}

// Fence implements Fences.
func (m *Memory) Fence(_ context.Context, id string) (FenceRecord, error) {
	f := m.fences()
	f.mu.Lock()
	defer f.mu.Unlock()
	rec, ok := f.byID[id]
	if !ok {
		return FenceRecord{}, ErrNotFound
	}
	return rec, nil
}

// ListFences implements Fences.
func (m *Memory) ListFences(_ context.Context, set, after string, limit int) ([]FenceRecord, error) {
	f := m.fences()
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []FenceRecord
	for id, rec := range f.byID {
		if id > after && (set == "" || rec.Set == set) {
			out = append(out, rec)
		}
	}
	slices.SortFunc(out, func(a, b FenceRecord) int { return strings.Compare(a.ID, b.ID) })
	if len(out) > limit {
		out = out[:limit]
	}
	return out, nil
}

// CountFences implements Fences.
func (m *Memory) CountFences(context.Context) (int, error) {
	f := m.fences()
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.byID), nil
}

// FenceChanges implements Fences.
func (m *Memory) FenceChanges(_ context.Context, since uint64, limit int) (FenceChanges, error) {
	f := m.fences()
	f.mu.Lock()
	defer f.mu.Unlock()
	out := FenceChanges{Reset: since < f.floor}
	if out.Reset {
		since = 0
	}
	i, _ := slices.BinarySearchFunc(f.changes, since+1, func(c fenceChange, rev uint64) int { return cmp.Compare(c.rev, rev) })
	for ; i < len(f.changes); i++ {
		c := f.changes[i]
		if !f.current(c) {
			continue
		}
		if len(out.Records) == limit {
			out.More = true
			break
		}
		if rec, ok := f.byID[c.id]; ok {
			out.Records = append(out.Records, rec)
		} else if since > 0 {
			out.Records = append(out.Records, FenceRecord{ID: c.id, Rev: c.rev})
		}
		out.Rev = c.rev
	}
	if !out.More {
		out.Rev = f.rev
	}
	return out, nil
}

// FenceStates implements FenceStates.
func (m *Memory) FenceStates(_ context.Context, driverIDs []string) (map[string]FenceState, error) {
	f := m.fences()
	f.mu.Lock()
	defer f.mu.Unlock()
	out := make(map[string]FenceState)
	for _, id := range driverIDs {
		if s, ok := f.states.get(id); ok {
			out[id] = s
		}
	}
	return out, nil
}

// SaveFenceStates implements FenceStates.
func (m *Memory) SaveFenceStates(_ context.Context, states map[string]FenceState) error {
	f := m.fences()
	f.mu.Lock()
	defer f.mu.Unlock()
	for id, s := range states {
		f.states.save(id, s)
	}
	return nil
}

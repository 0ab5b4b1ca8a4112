package store

import (
	"hash/maphash"
	"slices"
)

// stateTable holds the drivers' fence states of Memory compactly: a
// driver's entry is its timestamp and the number of an interned set of
// fence ids, since most drivers share a handful of sets (inside no fence
// but online, inside the airport zone, …), keyed by a 128-bit hash of the
// driver id (two maphash sums under random seeds: a collision among a
// billion drivers has a chance of about 1e-21). The map then holds no
// pointers, so the collector does not scan its million entries, and keeps
// no driver id alive. A state kept as its own slice of strings under the
// id cost about 120 bytes a driver; this costs about 50, the map's slots
// and their slack.
type stateTable struct {
	seeds   [2]maphash.Seed
	drivers map[driverKey]stateRef
	sets    []stateSet        // by number; free ones have refs 0
	byKey   map[string]uint32 // setKey of a set's ids → its number
	free    []uint32          // numbers of unused sets
	key     []byte            // scratch for setKey
}

// driverKey is the 128-bit hash of a driver id.
type driverKey [2]uint64

// keyOf returns the key of driver id.
func (t *stateTable) keyOf(id string) driverKey {
	return driverKey{maphash.String(t.seeds[0], id), maphash.String(t.seeds[1], id)}
}

// stateRef is one driver's state.
type stateRef struct {
	ms  int64
	set uint32
}

// stateSet is an interned, sorted list of fence ids and the number of
// drivers whose state it is.
type stateSet struct {
	ids  []string
	refs int32
}

func newStateTable() *stateTable {
	return &stateTable{
		seeds:   [2]maphash.Seed{maphash.MakeSeed(), maphash.MakeSeed()},
		drivers: map[driverKey]stateRef{},
		byKey:   map[string]uint32{},
	}
}

// get returns a driver's state; its IDs are shared with the table and
// must not be modified.
func (t *stateTable) get(id string) (FenceState, bool) {
	r, ok := t.drivers[t.keyOf(id)]
	if !ok {
		return FenceState{}, false
	}
	return FenceState{TimestampMs: r.ms, IDs: t.sets[r.set].ids}, true
}

// save records s as the driver's state unless the stored one is newer;
// an empty s.IDs deletes the driver's entry on the same condition.
func (t *stateTable) save(id string, s FenceState) {
	k := t.keyOf(id)
	cur, ok := t.drivers[k]
	if ok {
		if cur.ms > s.TimestampMs {
			return
		}
		t.release(cur.set)
	}
	if len(s.IDs) == 0 {
		delete(t.drivers, k)
		return
	}
	t.drivers[k] = stateRef{ms: s.TimestampMs, set: t.intern(s.IDs)}
}

// intern returns the number of the set holding ids, making it if need be,
// with one more reference.
func (t *stateTable) intern(ids []string) uint32 {
	t.setKey(ids)
	if n, ok := t.byKey[string(t.key)]; ok {
		t.sets[n].refs++
		return n
	}
	set := stateSet{ids: slices.Clone(ids), refs: 1}
	var n uint32
	if k := len(t.free); k > 0 {
		n = t.free[k-1]
		t.free = t.free[:k-1]
		t.sets[n] = set
	} else {
		n = uint32(len(t.sets))
		t.sets = append(t.sets, set)
	}
	t.byKey[string(t.key)] = n
	return n
}

// release drops a reference to set n, freeing it with the last one.
func (t *stateTable) release(n uint32) {
	s := &t.sets[n]
	if s.refs--; s.refs > 0 {
		return
	}
	delete(t.byKey, string(t.setKey(s.ids)))
	*s = stateSet{}
	t.free = append(t.free, n)
}

// setKey writes the interning key of ids into t.key and returns it.
func (t *stateTable) setKey(ids []string) []byte {
	t.key = t.key[:0]
	for _, id := range ids {
		// Fence ids hold no NUL, so NUL separates them.
		t.key = append(append(t.key, id...), 0)
	}
	return t.key
}

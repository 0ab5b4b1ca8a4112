package shardmap

import (
	"cmp"
	"slices"

	"github.com/geomatch/geomatch/internal/geo"
)

// Map is the routing view of one ring document: its layout, the ring over
// its non-drained members, and its pins. Routers use it to send a location
// update to the owner of the driver's shard and to scatter a nearby search;
// matchers use it to know which shards they own at an epoch.
//
// A Map is immutable (its route cache aside, which is internally
// synchronised) and safe for concurrent use. A new document means a new Map.
type Map struct {
	doc     Doc
	layout  *Layout
	members []Member // all, sorted by id
	placing *Ring
	pins    map[Cell]Member
	over    map[Cell]Member
	routes  *routeCache
	regions *regionCache
}

// NewMap validates d (see Doc.Validate) and builds its Map. The Map keeps
// its own copy of d.
func NewMap(d Doc) (*Map, error) {
	p, err := d.build()
	if err != nil {
		return nil, err
	}
	return &Map{
		doc:     d.Clone(),
		layout:  p.layout,
		members: p.members,
		placing: p.placing,
		pins:    p.pins,
		over:    p.over,
		routes:  newRouteCache(p.layout, routeCacheEntries, routeCacheCells),
		regions: newRegionCache(regionCachePoints),
	}, nil
}

// Epoch returns the document's epoch.
func (m *Map) Epoch() uint64 { return m.doc.Epoch }

// Doc returns a copy of the document the Map was built from.
func (m *Map) Doc() Doc { return m.doc.Clone() }

// Layout returns the shard layout.
func (m *Map) Layout() *Layout { return m.layout }

// Members returns every member, drained ones included, sorted by id, as a
// new slice.
func (m *Map) Members() []Member { return slices.Clone(m.members) }

// Drained reports whether member id is drained (a member that owns
// nothing).
func (m *Map) Drained(id string) bool { return slices.Contains(m.doc.Drained, id) }

// ActiveIDs returns the ids of the members that are not drained, sorted:
// those that can own shards.
func (m *Map) ActiveIDs() []string {
	var out []string
	for _, mem := range m.members {
		if !m.Drained(mem.ID) {
			out = append(out, mem.ID)
		}
	}
	return out
}

// Member returns the member with the given id, drained or not.
func (m *Map) Member(id string) (Member, bool) {
	i, ok := slices.BinarySearchFunc(m.members, id, func(x Member, id string) int { return cmp.Compare(x.ID, id) })
	if !ok {
		return Member{}, false
	}
	return m.members[i], true
}

// Owner returns the member owning shard: its pin if it has one, else its
// bounded-load override if it has one, else its place on the ring of
// non-drained members. It reports false when shard is
// not a shard of the layout (a split cell, a cell of another resolution,
// an invalid index) or when every member is drained. Pure Go, no
// allocation.
func (m *Map) Owner(shard Cell) (Member, bool) {
	if !m.layout.IsShard(shard) {
		return Member{}, false
	}
	return m.owner(shard)
}

// owner is Owner for a cell known to be a shard.
func (m *Map) owner(shard Cell) (Member, bool) {
	if len(m.pins) > 0 {
		if o, ok := m.pins[shard]; ok {
			return o, true
		}
	}
	if len(m.over) > 0 {
		if o, ok := m.over[shard]; ok {
			return o, true
		}
	}
	i := m.placing.ownerIndex(shard)
	if i < 0 {
		return Member{}, false
	}
	return m.placing.members[i], true
}

// Locate returns, for one location update at p, its fine cell, its shard
// and the shard's owner. ok is false when p is not a valid position or
// nobody can own the shard (every member drained). One cgo call (the fine
// cell); the rest is pure Go.
func (m *Map) Locate(p geo.LatLng) (fine, shard Cell, owner Member, ok bool) {
	fine = m.layout.FineCell(p)
	if fine == 0 {
		return 0, 0, Member{}, false
	}
	shard = m.layout.ShardOfFine(fine)
	owner, ok = m.owner(shard)
	return fine, shard, owner, ok
}

// Target is one member to ask during a scattered search, with the shards
// of the search it owns.
type Target struct {
	// Member is the member to ask.
	Member Member
	// Shards are the shards of the search Member owns, sorted.
	Shards []Cell
}

// targets groups shards (sorted) by owner, targets sorted by member id.
// Shards nobody can own are left out.
func (m *Map) targets(shards []Cell) []Target {
	var ts []Target
	for _, s := range shards {
		o, ok := m.owner(s)
		if !ok {
			continue
		}
		i, found := slices.BinarySearchFunc(ts, o.ID, func(t Target, id string) int { return cmp.Compare(t.Member.ID, id) })
		if !found {
			ts = slices.Insert(ts, i, Target{Member: o})
		}
		ts[i].Shards = append(ts[i].Shards, s)
	}
	return ts
}

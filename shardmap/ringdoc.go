package shardmap

import (
	"fmt"
	"maps"
	"slices"
)

// Defaults of a new ring document.
const (
	// DefaultShardRes is the default shard resolution: H3 resolution 7
	// cells are about 5 km² (edge about 1.2 km), so a city spans tens to
	// hundreds of shards and a typical nearby search touches a handful.
	DefaultShardRes = 7
	// DefaultMaxSplitDepth lets a hot shard be split twice, down to
	// resolution 9 cells (about 0.1 km², 49 per default shard), while
	// keeping fine cells coarse enough to be a cheap per-update lookup.
	DefaultMaxSplitDepth = 2
	// DefaultVNodes virtual nodes per unit of weight keep the most loaded
	// of 10 members within about 25% of the average (see the ring balance
	// report in ring_test.go).
	DefaultVNodes = 128
)

// Doc is the ring document: everything that decides where a shard lives.
// It is stored as JSON in Consul KV; the one elected writer changes it and
// bumps Epoch on every change, routers and matchers watch it and build a Map
// from each version. A matcher refuses work for a shard it does not own at
// the caller's epoch, so an older epoch never silently wins.
type Doc struct {
	// Epoch is the document's version, at least 1, increased by every
	// change.
	Epoch uint64 `json:"epoch"`
	// ShardRes is the H3 resolution of unsplit shards (0..15).
	ShardRes int `json:"shard_res"`
	// MaxSplitDepth is how many levels below ShardRes shards may be split
	// (0..3, ShardRes+MaxSplitDepth <= 15). Changing it (or ShardRes)
	// reshapes every shard, which moves every driver: it is chosen once per
	// cluster.
	MaxSplitDepth int `json:"max_split_depth"`
	// VNodes is the number of virtual nodes per unit of member weight.
	VNodes int `json:"vnodes"`
	// Members are all matcher nodes, in any order, drained ones included.
	Members []Member `json:"members"`
	// Splits are the split cells, each replaced by its children; the
	// parent of a split cell finer than ShardRes must be split too.
	Splits []Cell `json:"splits,omitempty"`
	// Pins assign shards to members, overriding the ring. Every key must be
	// a shard of the layout and every value a member that is not drained.
	Pins map[Cell]string `json:"pins,omitempty"`
	// Drained lists member ids that own nothing: they stay members (still
	// reachable, e.g. while they hand their shards over) but are left out
	// of the ring.
	Drained []string `json:"drained,omitempty"`
	// Overrides are placement corrections computed by the ring writer's
	// bounded-load pass (see BoundedLoad): shards moved off members that
	// the ring gave more than their share of the active shards. Pins win
	// over overrides; the same validity rules apply.
	Overrides map[Cell]string `json:"overrides,omitempty"`
}

// DefaultDoc returns the epoch 1 document for members with the default
// shard resolution, split depth and virtual nodes, no splits, pins or
// drained members.
func DefaultDoc(members []Member) Doc {
	return Doc{
		Epoch:         1,
		ShardRes:      DefaultShardRes,
		MaxSplitDepth: DefaultMaxSplitDepth,
		VNodes:        DefaultVNodes,
		Members:       slices.Clone(members),
	}
}

// Clone returns a deep copy of d (slices and the pin map are copied).
func (d Doc) Clone() Doc {
	d.Members = slices.Clone(d.Members)
	d.Splits = slices.Clone(d.Splits)
	d.Pins = maps.Clone(d.Pins)
	d.Drained = slices.Clone(d.Drained)
	d.Overrides = maps.Clone(d.Overrides)
	return d
}

// Validate reports why d cannot be used, or nil: an epoch of 0, a bad
// resolution or split depth, a bad split cell (see NewLayout), a bad member
// or vnode count (see NewRing), a drained id that is no member or is listed
// twice, or a pin on a cell that is not a shard or to a member that is
// unknown or drained.
func (d Doc) Validate() error {
	_, err := d.build()
	return err
}

// parts is what a Map is made of.
type parts struct {
	layout  *Layout
	members []Member // every member, sorted by id
	placing *Ring    // non-drained members, for placement
	pins    map[Cell]Member
	over    map[Cell]Member // bounded-load overrides
}

// build validates d and builds its layout, rings and pins.
func (d Doc) build() (parts, error) {
	var p parts
	if d.Epoch == 0 {
		return p, fmt.Errorf("ring document: epoch must be at least 1")
	}
	l, err := NewLayout(d.ShardRes, d.MaxSplitDepth, d.Splits)
	if err != nil {
		return p, fmt.Errorf("ring document epoch %d: layout: %w", d.Epoch, err)
	}
	all, _, err := checkMembers(d.Members, d.VNodes)
	if err != nil {
		return p, fmt.Errorf("ring document epoch %d: members: %w", d.Epoch, err)
	}
	byID := make(map[string]Member, len(d.Members))
	for _, m := range d.Members {
		byID[m.ID] = m
	}
	drained := make(map[string]bool, len(d.Drained))
	for _, id := range d.Drained {
		if _, ok := byID[id]; !ok {
			return p, fmt.Errorf("ring document epoch %d: drained member %q: not a member", d.Epoch, id)
		}
		if drained[id] {
			return p, fmt.Errorf("ring document epoch %d: drained member %q: listed twice", d.Epoch, id)
		}
		drained[id] = true
	}
	var active []Member
	for _, m := range d.Members {
		if !drained[m.ID] {
			active = append(active, m)
		}
	}
	placing, err := NewRing(active, d.VNodes)
	if err != nil {
		return p, fmt.Errorf("ring document epoch %d: members: %w", d.Epoch, err)
	}
	pins, err := placements(d, "pin", d.Pins, l, byID, drained)
	if err != nil {
		return p, err
	}
	over, err := placements(d, "override", d.Overrides, l, byID, drained)
	if err != nil {
		return p, err
	}
	return parts{layout: l, members: all, placing: placing, pins: pins, over: over}, nil
}

// placements checks a pin or override map: every key a shard of l, every
// value a member that is not drained.
func placements(d Doc, what string, in map[Cell]string, l *Layout, byID map[string]Member, drained map[string]bool) (map[Cell]Member, error) {
	out := make(map[Cell]Member, len(in))
	for _, c := range slices.Sorted(maps.Keys(in)) { // sorted: the same error everywhere
		id := in[c]
		m, ok := byID[id]
		switch {
		case !l.IsShard(c):
			return nil, fmt.Errorf("ring document epoch %d: %s of %s to %q: %s is not a shard of the layout", d.Epoch, what, c, id, c)
		case !ok:
			return nil, fmt.Errorf("ring document epoch %d: %s of %s to %q: not a member", d.Epoch, what, c, id)
		case drained[id]:
			return nil, fmt.Errorf("ring document epoch %d: %s of %s to %q: the member is drained", d.Epoch, what, c, id)
		}
		out[c] = m
	}
	return out, nil
}

package shardmap

import (
	"cmp"
	"fmt"
	"math"
	"slices"
)

// DefaultBalance is the default bound of BoundedLoad: no member gets more
// than 10% above its weighted share of the active shards.
const DefaultBalance = 1.10

// BoundedLoad is consistent hashing with bounded loads (Mirrokni, Thorup and
// Zadimoghaddam, 2018) applied to the shards that hold drivers. The ring alone
// gives a member up to about 1.2× its share with 128 virtual nodes, and more
// when there are only a few hundred active shards; BoundedLoad caps every
// member at about balance × its share and returns the overrides that
// achieve it, for Doc.Overrides.
//
// Each member's capacity is floor(balance × share), where share is
// len(active) × weight / total weight, but at least ceil(share) so that
// every shard fits: max/avg stays within balance whenever the shard count
// allows it. Pinned shards count against their member first. The other active
// shards, in the order of their hashes, go to the first member at or after
// their place on the ring that still has room: that is the ring owner for
// most shards, so only the overflow moves and the result changes little
// when a member joins or leaves. Shards that are not active (no drivers)
// stay with their ring owner. The answer depends only on d's members,
// weights, drains, pins and the set of active shards, never on their order.
//
// Cells of active that are not shards of d's layout are ignored, as are
// duplicates. balance below 1 is an error.
func BoundedLoad(d Doc, active []Cell, balance float64) (map[Cell]string, error) {
	if math.IsNaN(balance) || balance < 1 {
		return nil, fmt.Errorf("bounded load: balance %v must be at least 1", balance)
	}
	d = d.Clone()
	d.Overrides = nil
	p, err := d.build()
	if err != nil {
		return nil, fmt.Errorf("bounded load: %w", err)
	}
	ring := p.placing
	if len(ring.members) == 0 {
		return nil, nil
	}
	// The active shards of the layout, once each, in hash order.
	type key struct {
		cell Cell
		hash uint64
	}
	seen := make(map[Cell]bool, len(active))
	keys := make([]key, 0, len(active))
	for _, c := range active {
		if seen[c] || !p.layout.IsShard(c) {
			continue
		}
		seen[c] = true
		keys = append(keys, key{c, keyHash(c)})
	}
	slices.SortFunc(keys, func(a, b key) int { return cmp.Or(cmp.Compare(a.hash, b.hash), cmp.Compare(a.cell, b.cell)) })

	total := 0.0
	for _, m := range ring.members {
		total += m.weight()
	}
	capacity := make([]int, len(ring.members))
	for i, m := range ring.members {
		share := float64(len(keys)) * m.weight() / total
		// floor keeps max/avg within balance; ceil(share) keeps the sum of
		// the capacities at least the number of shards.
		capacity[i] = max(int(math.Floor(balance*share)), int(math.Ceil(share)))
	}
	index := make(map[string]int, len(ring.members))
	for i, m := range ring.members {
		index[m.ID] = i
	}
	load := make([]int, len(ring.members))
	free := keys[:0:0]
	for _, k := range keys {
		if m, ok := p.pins[k.cell]; ok {
			if i, ok := index[m.ID]; ok {
				load[i]++
			}
			continue
		}
		free = append(free, k)
	}
	out := map[Cell]string{}
	for _, k := range free {
		start, _ := slices.BinarySearchFunc(ring.points, k.hash, func(pt ringPoint, h uint64) int { return cmp.Compare(pt.hash, h) })
		owner := -1
		for j := range len(ring.points) {
			pt := ring.points[(start+j)%len(ring.points)]
			if load[pt.member] < capacity[pt.member] {
				owner = int(pt.member)
				break
			}
		}
		if owner < 0 { // every member full: only possible with pins over capacity
			owner = int(ring.points[start%len(ring.points)].member)
		}
		load[owner]++
		if ringOwner := ring.points[start%len(ring.points)].member; int(ringOwner) != owner {
			out[k.cell] = ring.members[owner].ID
		}
	}
	if len(out) == 0 {
		return nil, nil
	}
	return out, nil
}

// Sources returns the shards of the layout prev that may hold drivers
// belonging to shard s of the layout next: the drivers a new owner of s must
// fetch from the old owners. A driver's shard is the first unsplit ancestor
// of its fine cell, so its shard under prev is s itself, an ancestor of s
// (s was split since) or a descendant of s (s was merged since). The
// answer is nil when the layouts differ in resolution or split depth
// (every shard changes; nothing can be handed over) or s is not a shard
// of next.
func Sources(prev, next *Layout, s Cell) []Cell {
	if prev.res != next.res || prev.fineRes != next.fineRes || !next.IsShard(s) {
		return nil
	}
	if prev.IsShard(s) {
		return []Cell{s}
	}
	for r := Resolution(s) - 1; r >= prev.res; r-- {
		if a := Parent(s, r); prev.IsShard(a) {
			return []Cell{a}
		}
	}
	// s is split under prev: collect its descendants that are shards.
	var out []Cell
	var walk func(c Cell)
	walk = func(c Cell) {
		if prev.IsShard(c) {
			out = append(out, c)
			return
		}
		if Resolution(c) >= prev.fineRes {
			return
		}
		for _, ch := range c.ImmediateChildren() {
			walk(ch)
		}
	}
	walk(s)
	slices.Sort(out)
	return out
}

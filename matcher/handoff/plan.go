package handoff

import (
	"maps"
	"slices"
	"time"

	"github.com/uber/h3-go/v4"

	"github.com/geomatch/geomatch/internal/geo"
	"github.com/geomatch/geomatch/matcher/index"
	"github.com/geomatch/geomatch/shardmap"
)

// Retired is the snapshot of a shard a node gave up, kept for the shard's
// new owners until it expires.
type Retired struct {
	// Epoch is the ring epoch at which the node gave the shard up.
	Epoch uint64
	// Drivers are the drivers the node held in the shard at that moment,
	// sorted by id.
	Drivers []index.Driver
	// Until is when the snapshot expires (see Expire).
	Until time.Time
	// Served is set once the snapshot was handed to a peer (see Serve and
	// Pending).
	Served bool
	// Cold is set when the node gave the shard up before it had finished
	// warming it (Step.Cold): the snapshot may miss drivers the node never
	// received, so it does not count as covering the shard (Serve).
	Cold bool
}

// Records are what a node keeps between ring changes, as Plan reads them.
type Records struct {
	// Base is the last ring at which the node was fully warm: it then
	// held every driver of every shard it owned. Nil when it never was
	// (it starts empty).
	Base *shardmap.Map
	// Held are the shards of the node's index.
	Held []h3.Cell
	// Retired are the node's snapshots of shards it gave up.
	Retired map[h3.Cell]Retired
	// Warming is the step whose warm-up still runs (the ring change
	// cancels it), nil if none.
	Warming *Step
}

// Owns reports whether node owns shard under m: shard is a shard of m's
// layout and m places it on node. A nil m places nothing.
func Owns(m *shardmap.Map, node string, shard h3.Cell) bool {
	if m == nil {
		return false
	}
	o, ok := m.Owner(shard)
	return ok && o.ID == node
}

// Step is what one node does about one ring change: the shards it gives up
// and the warm-up of the shards it gains. Plan makes it; its methods answer
// the warm-up's questions. A Step is immutable once made (its fields must
// not be changed) and safe for concurrent use.
type Step struct {
	// Node is the node's member id.
	Node string
	// Base is the node's base ring (Records.Base).
	Base *shardmap.Map
	// Target is the ring the node moves to.
	Target *shardmap.Map
	// Lose are the shards the node holds and does not own under Target,
	// sorted: for each, it takes a snapshot (Retire), drops the shard from
	// its index, re-homes the drivers that stay (Rehome) and records their
	// positions in its Log (Log.GiveUp).
	Lose []h3.Cell
	// Cold are the shards of Lose the node was still warming (the
	// cancelled warm-up gated them): it may not have received all their
	// drivers yet (see Retire).
	Cold map[h3.Cell]bool
	// Regained are shards the node gave up after Base, in whole or in part
	// (a child of a shard split since, merged back), and owns again under
	// Target: Base says the node owns them, but it no longer holds (all
	// of) them, so they are warmed (and gated) like shards it never had.
	Regained map[h3.Cell]bool
}

// Plan decides what node does when the ring moves to target, given its
// records.
//
// The node gives up (Lose) every held shard it does not own under target,
// including shards that were split or merged (they are no shards of the
// new layout; their drivers that stay on the node are re-homed). It warms
// every shard it owns under target that it did not own under base, and
// those it gave up after base (a snapshot younger than base), whole or a
// part of them under another layout, and owns again: a chain of quick ring
// changes may have taken them away and given them back before any warm-up
// completed.
func Plan(target *shardmap.Map, node string, r Records) Step {
	s := Step{Node: node, Base: r.Base, Target: target, Cold: map[h3.Cell]bool{}, Regained: map[h3.Cell]bool{}}
	for _, c := range r.Held {
		if !Owns(target, node, c) {
			s.Lose = append(s.Lose, c)
			if r.Warming != nil && r.Warming.Gains(c) {
				s.Cold[c] = true
			}
		}
	}
	slices.Sort(s.Lose)
	for cell, rt := range r.Retired {
		if r.Base != nil && rt.Epoch <= r.Base.Epoch() {
			continue
		}
		for _, sh := range shardsOver(target.Layout(), cell) {
			if Owns(target, node, sh) {
				s.Regained[sh] = true
			}
		}
	}
	return s
}

// shardsOver returns the shards of l that share ground with cell, a shard
// of some layout of the same resolutions: cell itself if it is a shard of
// l, the shard of l it is part of (merged since), or the shards of l it is
// split into. It returns nil when no layout with l's resolutions has cell
// as a shard.
func shardsOver(l *shardmap.Layout, cell h3.Cell) []h3.Cell {
	r := shardmap.Resolution(cell)
	if r < l.Res() || r > l.FineRes() {
		return nil
	}
	for a := r; a >= l.Res(); a-- {
		if p := shardmap.Parent(cell, a); l.IsShard(p) {
			return []h3.Cell{p}
		}
	}
	var out []h3.Cell
	var walk func(c h3.Cell)
	walk = func(c h3.Cell) {
		if l.IsShard(c) {
			out = append(out, c)
			return
		}
		if shardmap.Resolution(c) < l.FineRes() {
			for _, k := range c.ImmediateChildren() {
				walk(k)
			}
		}
	}
	walk(cell)
	return out
}

// Gains reports whether shard is being warmed by s: the node owns it under
// Target, and did not own it under Base or regained it (Regained). Searches over such a shard wait for
// the warm-up (the gate); updates are not gated.
func (s *Step) Gains(shard h3.Cell) bool {
	if !Owns(s.Target, s.Node, shard) {
		return false
	}
	return s.Base == nil || !Owns(s.Base, s.Node, shard) || s.Regained[shard]
}

// Retire returns the record of the snapshot snap of cell, a shard given up
// at this step, kept for grace from now; retired are the node's snapshots
// so far, which the record replaces.
//
// A snapshot kept from an earlier loss of cell is older than snap and is
// replaced, unless the node gives cell up cold (Cold): it got cell back
// and had not re-applied the older snapshot yet (its warm-up reclaims it
// last), so that snapshot may hold the only copy of some drivers. Then the
// two are merged, the newest copy of each driver kept. The snapshot of a
// cold shard is marked Cold.
func (s *Step) Retire(cell h3.Cell, snap []index.Driver, retired map[h3.Cell]Retired, now time.Time, grace time.Duration) Retired {
	if prev, ok := retired[cell]; ok && s.Cold[cell] && len(prev.Drivers) > 0 {
		snap = merge(prev.Drivers, snap)
	}
	return Retired{Epoch: s.Target.Epoch(), Drivers: snap, Until: now.Add(grace), Cold: s.Cold[cell]}
}

// merge returns the newest copy of each driver of a and b, sorted by id.
func merge(a, b []index.Driver) []index.Driver {
	byID := make(map[string]index.Driver, len(a)+len(b))
	for _, snap := range [][]index.Driver{a, b} {
		for _, d := range snap {
			if cur, ok := byID[d.ID]; !ok || d.TimestampMs > cur.TimestampMs {
				byID[d.ID] = d
			}
		}
	}
	out := make([]index.Driver, 0, len(byID))
	for _, id := range slices.Sorted(maps.Keys(byID)) {
		out = append(out, byID[id])
	}
	return out
}

// Rehome returns the updates that move the drivers of snap, the snapshot
// of the lost shard, to the shards of Target's layout they fall in and the
// node owns: the drivers of a shard that was split or merged and stays (in
// part) on the node. A lost shard that is still a shard of the layout went
// to another node whole: nothing stays. The updates keep each driver's
// timestamp and its HandedOver mark.
func (s *Step) Rehome(lost h3.Cell, snap []index.Driver) []index.Update {
	layout := s.Target.Layout()
	if layout.IsShard(lost) {
		return nil
	}
	var ups []index.Update
	for i := range snap {
		if sh := layout.ShardOf(snap[i].Pos); Owns(s.Target, s.Node, sh) {
			ups = append(ups, update(snap[i], sh))
		}
	}
	return ups
}

// Request is what the warm-up asks each peer for (Transfer): every
// snapshot it keeps of what the node owns, whatever epoch it was given up
// at (Since 0). Asking only for those given up after Base would take Base
// for more than it says: that the node held everything it owned then, not
// that its peers had handed it everything since. A peer answers by its
// own ring, which may be newer than the node's target, and leaves out the
// drivers the node does not own at that newer ring; when a later change
// gives them back to the node, their snapshot predates its base.
// Copies the node already holds are refused by the index as duplicates.
func (s *Step) Request() Request { return Request{To: s.Node} }

// Peers returns the nodes the warm-up asks for the drivers of the shards
// it gains (Transfer), sorted by id: every member of Target and of Base
// but the node itself. Members of Base that left since are asked too: they
// keep their snapshots for a while. Of a member listed by both, Base's
// entry is returned.
func (s *Step) Peers() []shardmap.Member {
	byID := map[string]shardmap.Member{}
	for _, m := range []*shardmap.Map{s.Target, s.Base} {
		if m == nil {
			continue
		}
		for _, mem := range m.Members() {
			if mem.ID != s.Node {
				byID[mem.ID] = mem
			}
		}
	}
	out := make([]shardmap.Member, 0, len(byID))
	for _, id := range slices.Sorted(maps.Keys(byID)) {
		out = append(out, byID[id])
	}
	return out
}

// Place returns the shard of Target's layout a driver handed over at p
// falls in, and whether the node owns it under Target (a copy it does not
// own is not applied).
func (s *Step) Place(p geo.LatLng) (h3.Cell, bool) {
	sh := s.Target.Layout().ShardOf(p)
	return sh, Owns(s.Target, s.Node, sh)
}

// Reclaim returns the updates that re-apply the node's own snapshots
// (retired) of drivers in the shards s gains, leaving out positions older
// than oldestMs (they would have expired). Every snapshot still kept
// counts, not only those taken after Base: the node that took a shard over
// may not have finished fetching it (its warm-up cancelled by the ring
// change that gives the shard back), and then this snapshot is the only
// copy. The updates are marked HandedOver (the driver may have moved on to
// another node since); they go through Fence like every handed-over copy,
// which also leaves out the superseded ones.
func (s *Step) Reclaim(retired map[h3.Cell]Retired, oldestMs int64) []index.Update {
	layout := s.Target.Layout()
	var ups []index.Update
	for _, cell := range slices.Sorted(maps.Keys(retired)) {
		snap := retired[cell].Drivers
		for i := range snap {
			sh := layout.ShardOf(snap[i].Pos)
			if snap[i].TimestampMs < oldestMs || !s.Gains(sh) {
				continue
			}
			u := update(snap[i], sh)
			u.HandedOver = true
			ups = append(ups, u)
		}
	}
	return ups
}

// StoreShards returns the shards, of those the store holds positions for
// (stored), whose positions the warm-up reads: the shards it gains (Gains)
// that no peer covered with a complete snapshot (covered, see
// Handover.Covered: a Cold snapshot does not count). Those are the shards
// of dead nodes, of every node when the node has no Base (the whole
// cluster restarting), and those whose old owners answered without a
// complete snapshot of them (they had not finished warming them, or had
// nothing of them: a restarted process). What the store holds is written
// behind and may be stale; the warm-up checks it with the peers like every
// copy it applies. Cells that are no shards of Target's layout are
// leftovers of an older layout (their drivers report under newer keys
// since), and so are cells that are no shards of Base's.
func (s *Step) StoreShards(stored []h3.Cell, covered map[h3.Cell]bool) []h3.Cell {
	tl := s.Target.Layout()
	var out []h3.Cell
	for _, cell := range stored {
		if !tl.IsShard(cell) || covered[cell] || !s.Gains(cell) {
			continue
		}
		if s.Base != nil && !s.Base.Layout().IsShard(cell) {
			continue
		}
		out = append(out, cell)
	}
	return out
}

// FromStore keeps, of the positions read from the store for cell (as
// updates, already checked for a valid id, position and status), those
// at least as new as oldestMs that fall in cell under Target's layout, and
// marks them HandedOver with cell as their shard. It filters ups in place.
func (s *Step) FromStore(cell h3.Cell, ups []index.Update, oldestMs int64) []index.Update {
	tl := s.Target.Layout()
	kept := ups[:0]
	for _, u := range ups {
		if u.TimestampMs < oldestMs || u.Pos.Validate() != nil || tl.ShardOf(u.Pos) != cell {
			continue
		}
		u.Shard, u.HandedOver = cell, true
		kept = append(kept, u)
	}
	return kept
}

// Next returns the node's base ring once the warm-up of s ends while s is
// still its latest step: Target when the warm-up completed (every source
// answered, nothing timed out), else Base unchanged. A step superseded by a
// newer ring change leaves the base to the newer one.
func (s *Step) Next(complete bool) *shardmap.Map {
	if complete {
		return s.Target
	}
	return s.Base
}

// Fence returns the handed-over copies of ups the node applies: those the
// node owns under cur, its latest ring (a warm-up cancelled by a newer ring
// change may still be applying), and that log does not supersede. It
// filters ups in place. The caller applies the result in the same critical
// section as the Fence, so that no ring change or eviction falls between.
func Fence(cur *shardmap.Map, node string, log *Log, ups []index.Update) []index.Update {
	kept := ups[:0]
	for _, u := range ups {
		if log.Superseded(u.ID, u.TimestampMs) || !Owns(cur, node, u.Shard) {
			continue
		}
		kept = append(kept, u)
	}
	return kept
}

// Expire returns the snapshot cells of retired that expired by now, and
// whether the node may then drop its Log: when no snapshot is left and no
// warm-up runs (warming), nothing an eviction could make stale is left.
func Expire(retired map[h3.Cell]Retired, now time.Time, warming bool) (forget []h3.Cell, dropLog bool) {
	for cell, r := range retired {
		if now.After(r.Until) {
			forget = append(forget, cell)
		}
	}
	slices.Sort(forget)
	return forget, len(forget) == len(retired) && !warming
}

// Pending returns how many snapshots of retired still wait for their new
// owner: not served yet and not empty. A node that drains waits until none
// is left (or they expire).
func Pending(retired map[h3.Cell]Retired) int {
	n := 0
	for _, r := range retired {
		if !r.Served && len(r.Drivers) > 0 {
			n++
		}
	}
	return n
}

// update is the index update that puts d, as it is, in shard.
func update(d index.Driver, shard h3.Cell) index.Update {
	return index.Update{ID: d.ID, Pos: d.Pos, TimestampMs: d.TimestampMs, Status: d.Status,
		VehicleClass: d.VehicleClass, Shard: shard, HandedOver: d.HandedOver}
}

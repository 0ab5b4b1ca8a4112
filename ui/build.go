package ui

import (
	"cmp"
	"slices"
	"time"

	"github.com/geomatch/geomatch/fleet"
	geomatchv1 "github.com/geomatch/geomatch/proto/geomatch/v1"
	"github.com/geomatch/geomatch/shardmap"
	"github.com/geomatch/geomatch/ui/mapview"
)

// load is one shard's load, summed over the nodes that report it.
type load struct {
	drivers  int64
	updates  float64
	queries  float64
	reported bool
}

// shardsOf returns the shards of layout l that cell c stands for: c
// itself when it is a shard, the shard holding it when it is finer, the
// shards it was split into when it is split, nothing when it is coarser
// than the layout's shards or invalid. A matcher can report a cell of an
// older layout (just before a split or a merge reaches it).
func shardsOf(l *shardmap.Layout, c shardmap.Cell) []shardmap.Cell {
	if !c.IsValid() {
		return nil
	}
	if l.IsShard(c) {
		return []shardmap.Cell{c}
	}
	r := shardmap.Resolution(c)
	if r < l.Res() {
		return nil
	}
	for p := r - 1; p >= l.Res(); p-- {
		if anc := shardmap.Parent(c, p); l.IsShard(anc) {
			return []shardmap.Cell{anc}
		}
	}
	if slices.Contains(l.Splits(), c) {
		return splitLeaves(l, c, nil)
	}
	return nil
}

// splitLeaves appends the shards split cell c is made of.
func splitLeaves(l *shardmap.Layout, c shardmap.Cell, out []shardmap.Cell) []shardmap.Cell {
	for _, ch := range c.ImmediateChildren() {
		switch {
		case l.IsShard(ch):
			out = append(out, ch)
		case shardmap.Resolution(ch) < l.FineRes():
			out = splitLeaves(l, ch, out)
		}
	}
	return out
}

// frame is what one snapshot is built from.
type frame struct {
	ring *shardmap.Map
	// stats are the last probe's answers (nil before the first).
	stats []fleet.NodeStats
	// recent are shards that held drivers or saw traffic lately (a
	// shard's drivers can leave for a moment; it stays drawn meanwhile).
	recent []shardmap.Cell
	// color gives each member its colour.
	color func(id string) string
	// boundary returns a shard's hexagon.
	boundary func(shardmap.Cell) [][2]float64
	// maxShards bounds the shards drawn.
	maxShards int
	now       time.Time
}

// build makes the snapshot of f (Seq, Title, Auth, Live and Timeline are
// the caller's), and returns the shards that reported load, for f.recent
// next time. Pure: the same frame gives the same snapshot.
func build(f frame) (*mapview.Snapshot, []shardmap.Cell) {
	m := f.ring
	l := m.Layout()
	doc := m.Doc()
	s := &mapview.Snapshot{
		Version: mapview.Version, Time: f.now, Epoch: m.Epoch(), ShardRes: l.Res(),
		Loads: []string{mapview.LoadDrivers, mapview.LoadUpdates, mapview.LoadQueries},
	}

	loads := map[shardmap.Cell]*load{}
	var active []shardmap.Cell
	for _, ns := range f.stats {
		for _, sh := range ns.Stats.GetShards() {
			c := shardmap.Cell(sh.GetCell())
			targets := shardsOf(l, c)
			if len(targets) == 0 {
				continue
			}
			if sh.GetDrivers() > 0 || sh.GetUpdatesPerS() > 0 || sh.GetQueriesPerS() > 0 {
				active = append(active, targets...)
			}
			if len(targets) != 1 {
				continue // a split cell's load is not known per child yet
			}
			ld := loads[targets[0]]
			if ld == nil {
				ld = &load{}
				loads[targets[0]] = ld
			}
			ld.drivers += sh.GetDrivers()
			ld.updates += sh.GetUpdatesPerS()
			ld.queries += sh.GetQueriesPerS()
			ld.reported = true
		}
	}

	set := map[shardmap.Cell]bool{}
	for _, c := range active {
		set[c] = true
	}
	for _, c := range f.recent {
		for _, t := range shardsOf(l, c) {
			set[t] = true
		}
	}
	for c := range doc.Pins {
		if l.IsShard(c) {
			set[c] = true
		}
	}
	for _, c := range l.Splits() {
		if shardmap.Resolution(c) == l.Res() {
			for _, t := range splitLeaves(l, c, nil) {
				set[t] = true
			}
		}
	}
	cells := make([]shardmap.Cell, 0, len(set))
	for c := range set {
		cells = append(cells, c)
	}
	if f.maxShards > 0 && len(cells) > f.maxShards {
		// Keep the busiest.
		slices.SortFunc(cells, func(a, b shardmap.Cell) int {
			la, lb := loads[a], loads[b]
			var da, db int64
			if la != nil {
				da = la.drivers
			}
			if lb != nil {
				db = lb.drivers
			}
			return cmp.Or(cmp.Compare(db, da), cmp.Compare(a, b))
		})
		cells = cells[:f.maxShards]
		s.Note = "showing the busiest shards only"
	}
	slices.SortFunc(cells, func(a, b shardmap.Cell) int { return cmp.Compare(a.String(), b.String()) })

	owned := map[string]int{}
	for _, c := range cells {
		sh := mapview.Shard{Cell: c.String(), Res: shardmap.Resolution(c), Boundary: f.boundary(c)}
		if o, ok := m.Owner(c); ok {
			sh.Owner = o.ID
			owned[o.ID]++
		}
		_, sh.Pinned = doc.Pins[c]
		if r := shardmap.Resolution(c); r > l.Res() {
			sh.Parent = shardmap.Parent(c, r-1).String()
		}
		if ld := loads[c]; ld != nil {
			sh.Drivers, sh.UpdatesPerS, sh.QueriesPerS = ld.drivers, round1(ld.updates), round1(ld.queries)
		}
		s.Shards = append(s.Shards, sh)
	}

	byID := map[string]*fleet.NodeStats{}
	for i := range f.stats {
		byID[f.stats[i].Member.ID] = &f.stats[i]
	}
	for _, mem := range m.Members() { // sorted by id
		n := mapview.Node{ID: mem.ID, Addr: mem.Addr, Weight: mem.Weight, Color: f.color(mem.ID), Drained: m.Drained(mem.ID), Shards: owned[mem.ID]}
		ns := byID[mem.ID]
		switch {
		case ns == nil:
		case ns.Err != nil:
			n.State, n.Error = stateName(geomatchv1.NodeState_NODE_STATE_UNREACHABLE), ns.Err.Error()
		case n.Drained:
			n.State = stateName(geomatchv1.NodeState_NODE_STATE_DRAINED)
		default:
			n.State = stateName(geomatchv1.NodeState_NODE_STATE_SERVING)
		}
		if ns != nil && ns.Stats != nil {
			n.Epoch, n.Drivers = ns.Stats.GetEpoch(), ns.Stats.GetDrivers()
			for _, sh := range ns.Stats.GetShards() {
				n.UpdatesPerS += sh.GetUpdatesPerS()
				n.QueriesPerS += sh.GetQueriesPerS()
			}
			n.UpdatesPerS, n.QueriesPerS = round1(n.UpdatesPerS), round1(n.QueriesPerS)
		}
		s.Nodes = append(s.Nodes, n)
	}
	return s, active
}

// stateName is a node state as the page names it: "serving", "drained",
// "unreachable".
func stateName(s geomatchv1.NodeState) string {
	switch s {
	case geomatchv1.NodeState_NODE_STATE_SERVING:
		return "serving"
	case geomatchv1.NodeState_NODE_STATE_DRAINED:
		return "drained"
	case geomatchv1.NodeState_NODE_STATE_UNREACHABLE:
		return "unreachable"
	}
	return ""
}

func round1(v float64) float64 { return float64(int64(v*10+0.5)) / 10 }

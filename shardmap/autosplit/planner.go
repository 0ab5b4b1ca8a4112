package autosplit

import (
	"cmp"
	"fmt"
	"maps"
	"slices"
	"time"

	"github.com/geomatch/geomatch/shardmap"
)

// Action is what a Decision does to the ring.
type Action string

// Actions.
const (
	// Split replaces a shard by its children.
	Split Action = "split"
	// Merge undoes an automatic split: the cell is one shard again.
	Merge Action = "merge"
)

// Load is one shard's traffic as its matcher reports it (exponentially
// decayed rates, StatsResponse).
type Load struct {
	Cell        shardmap.Cell
	UpdatesPerS float64
	QueriesPerS float64
}

// Sample is one poll of the matchers.
type Sample struct {
	// At is when the poll was made.
	At time.Time
	// Loads are the shards with traffic; a shard of the ring that is not
	// listed had none. Cells that are not shards of the ring (a matcher
	// still reporting a shard from before a change) are ignored; a shard
	// listed twice (two matchers during a hand-over) counts at its highest.
	Loads []Load
	// Missing are the members that did not answer: the loads of their
	// shards are unknown, so those shards' windows start again.
	Missing []string
}

// Decision is one change of the ring the planner asks for.
type Decision struct {
	Action Action
	// Cell is the shard to split, or the split cell to merge.
	Cell shardmap.Cell
	// Pins place a split's children: child cell to member id.
	Pins map[shardmap.Cell]string
	// Load is the load that decided: the shard's (split), or its
	// children's combined (merge), in load units per second.
	Load float64
	// Since is when the load crossed the level and stayed there.
	Since time.Time
	// Reason says why, for logs and the ring record.
	Reason string
}

// String describes d in a line ("split 872a1072bffffff: load ...").
func (d Decision) String() string { return fmt.Sprintf("%s %s: %s", d.Action, d.Cell, d.Reason) }

// Planner turns a sequence of Samples into Decisions by the rules of the
// package doc. It keeps the windows and rate limits between samples; it is
// not safe for concurrent use (one controller owns it).
type Planner struct {
	cfg     Config
	hot     map[shardmap.Cell]time.Time // above the split threshold since
	cold    map[shardmap.Cell]time.Time // own split: children under the merge level since
	changed map[shardmap.Cell]time.Time // last change of the cell
	last    time.Time                   // last decision in the cluster
}

// NewPlanner returns a planner for cfg, once cfg is valid.
func NewPlanner(cfg Config) (*Planner, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	p := &Planner{cfg: cfg}
	p.Reset()
	return p, nil
}

// Config returns the planner's configuration.
func (p *Planner) Config() Config { return p.cfg }

// Reset forgets every window and rate limit: a controller that was not
// deciding (another one was, or it was switched off) starts afresh.
func (p *Planner) Reset() {
	p.hot = map[shardmap.Cell]time.Time{}
	p.cold = map[shardmap.Cell]time.Time{}
	p.changed = map[shardmap.Cell]time.Time{}
	p.last = time.Time{}
}

// Weigh returns the load of l: UpdatesPerS + QueryWeight × QueriesPerS.
func (p *Planner) Weigh(l Load) float64 { return l.UpdatesPerS + p.cfg.QueryWeight*l.QueriesPerS }

// Step takes one sample of the ring m, whose automatic splits and pins are
// rec, and returns the decision to apply now, if any: at most one per call.
// A decision starts the rate limits at once, whether or not the caller
// manages to apply it (a refused change is not retried at every sample).
func (p *Planner) Step(s Sample, m *shardmap.Map, rec Record) (Decision, bool) {
	if !p.cfg.Enabled {
		p.Reset()
		return Decision{}, false
	}
	now := s.At
	doc := m.Doc()
	rec = rec.Reconcile(doc)
	l := m.Layout()
	missing := make(map[string]bool, len(s.Missing))
	for _, id := range s.Missing {
		missing[id] = true
	}
	unknown := func(c shardmap.Cell) bool {
		o, ok := m.Owner(c)
		return !ok || missing[o.ID]
	}
	load := map[shardmap.Cell]float64{}
	for _, x := range s.Loads {
		if l.IsShard(x.Cell) {
			load[x.Cell] = max(load[x.Cell], p.Weigh(x))
		}
	}

	// Windows: a shard is hot from its first sample above the threshold
	// until one that is not (or is unknown).
	threshold := p.cfg.SplitThreshold
	for c := range p.hot {
		if !(load[c] > threshold) || unknown(c) {
			delete(p.hot, c)
		}
	}
	for c, v := range load {
		if v > threshold && !unknown(c) {
			if _, ok := p.hot[c]; !ok {
				p.hot[c] = now
			}
		}
	}
	maps.DeleteFunc(p.changed, func(_ shardmap.Cell, t time.Time) bool { return now.Sub(t) >= p.cfg.ShardCooldown })
	// An own split's merge window starts once it and its children have
	// cooled down: children's rates start from zero on their new owners,
	// which must not count as cold.
	merging := map[shardmap.Cell]float64{} // own splits that may merge, with their children's load
	for _, c := range rec.Splits {
		children := c.ImmediateChildren()
		sum, ok := 0.0, p.cool(c)
		for _, ch := range children {
			if !ok || !l.IsShard(ch) || unknown(ch) || !p.cool(ch) {
				ok = false
				break
			}
			sum += load[ch]
		}
		if ok && sum < p.cfg.mergeLevel() {
			merging[c] = sum
			if _, ok := p.cold[c]; !ok {
				p.cold[c] = now
			}
		}
	}
	maps.DeleteFunc(p.cold, func(c shardmap.Cell, _ time.Time) bool { _, ok := merging[c]; return !ok })

	if !p.last.IsZero() && now.Sub(p.last) < p.cfg.ClusterInterval {
		return Decision{}, false
	}
	if d, ok := p.pickSplit(now, m, doc, rec, load, s.Missing); ok {
		p.decided(now, d)
		return d, true
	}
	if d, ok := p.pickMerge(now, doc, rec, merging); ok {
		p.decided(now, d)
		return d, true
	}
	return Decision{}, false
}

// cool reports whether cell c may change at now.
func (p *Planner) cool(c shardmap.Cell) bool {
	_, changed := p.changed[c]
	return !changed
}

// maxRes is the finest resolution an automatic split may produce.
func (p *Planner) maxRes(l *shardmap.Layout) int {
	if p.cfg.MaxDepth > 0 {
		return min(l.FineRes(), l.Res()+p.cfg.MaxDepth)
	}
	return l.FineRes()
}

// pickSplit returns the hottest shard whose window is over and that may be
// split, placed.
func (p *Planner) pickSplit(now time.Time, m *shardmap.Map, doc shardmap.Doc, rec Record, load map[shardmap.Cell]float64, missing []string) (Decision, bool) {
	l := m.Layout()
	var best shardmap.Cell
	for _, c := range slices.Sorted(maps.Keys(p.hot)) {
		since := p.hot[c]
		switch {
		case now.Sub(since) < p.cfg.SplitWindow:
			continue
		case shardmap.Resolution(c) >= p.maxRes(l):
			continue // as fine as allowed
		case !p.cool(c):
			continue
		}
		if id, pinned := doc.Pins[c]; pinned && !rec.isOwnPin(c, id) {
			continue // the operator's
		}
		if best == 0 || load[c] > load[best] {
			best = c
		}
	}
	if best == 0 {
		return Decision{}, false
	}
	d := Decision{
		Action: Split, Cell: best, Load: load[best], Since: p.hot[best],
		Pins:   Place(m, best, load, missing),
		Reason: fmt.Sprintf("load %.0f/s above %.0f/s for %v", load[best], p.cfg.SplitThreshold, now.Sub(p.hot[best]).Round(time.Second)),
	}
	return d, true
}

// pickMerge returns the own split that has been cold longest, when its
// window is over and nothing of the operator's lies below it.
func (p *Planner) pickMerge(now time.Time, doc shardmap.Doc, rec Record, merging map[shardmap.Cell]float64) (Decision, bool) {
	var best shardmap.Cell
	for _, c := range slices.Sorted(maps.Keys(p.cold)) {
		since := p.cold[c]
		if now.Sub(since) < p.cfg.MergeWindow {
			continue
		}
		ok := true
		for _, ch := range c.ImmediateChildren() {
			if id, pinned := doc.Pins[ch]; pinned && !rec.isOwnPin(ch, id) {
				ok = false // an operator's pin
				break
			}
		}
		if ok && (best == 0 || since.Before(p.cold[best])) {
			best = c
		}
	}
	if best == 0 {
		return Decision{}, false
	}
	d := Decision{
		Action: Merge, Cell: best, Load: merging[best], Since: p.cold[best],
		Reason: fmt.Sprintf("children's load %.0f/s under %.0f/s for %v", merging[best], p.cfg.mergeLevel(), now.Sub(p.cold[best]).Round(time.Second)),
	}
	return d, true
}

// decided starts the rate limits of d: the cell cools down. A split's
// children do not: each is a new shard whose own window must pass before
// it splits again (its rates start from zero), and their parent cannot be
// merged before it cools down.
func (p *Planner) decided(now time.Time, d Decision) {
	p.last = now
	p.changed[d.Cell] = now
	delete(p.hot, d.Cell)
	delete(p.cold, d.Cell)
}

// Place decides where the children of shard go when it is split under m:
// each child, with an equal share of the shard's load as its estimate, goes
// to the active member that has the least load, counting the shard's load
// off its owner and the children placed before; ties go to the shard's
// owner, then to the smallest id. load holds the shards' loads (load units
// per second); members in missing are left out while another member is
// available. A member that gets a child ends within one child's share of
// the least loaded member. Pure.
func Place(m *shardmap.Map, shard shardmap.Cell, load map[shardmap.Cell]float64, missing []string) map[shardmap.Cell]string {
	children := shard.ImmediateChildren()
	slices.Sort(children)
	var nodes []string
	for _, id := range m.ActiveIDs() {
		if !slices.Contains(missing, id) {
			nodes = append(nodes, id)
		}
	}
	if len(nodes) == 0 {
		nodes = m.ActiveIDs()
	}
	if len(nodes) == 0 || len(children) == 0 {
		return nil
	}
	per := map[string]float64{}
	for c, v := range load {
		if c == shard {
			continue
		}
		if o, ok := m.Owner(c); ok {
			per[o.ID] += v
		}
	}
	owner := ""
	if o, ok := m.Owner(shard); ok {
		owner = o.ID
	}
	share := load[shard] / float64(len(children))
	out := make(map[shardmap.Cell]string, len(children))
	for _, ch := range children {
		best := ""
		for _, n := range nodes {
			if best == "" {
				best = n
				continue
			}
			switch c := cmp.Compare(per[n], per[best]); {
			case c < 0, c == 0 && n == owner && best != owner:
				best = n
			}
		}
		out[ch] = best
		per[best] += share
	}
	return out
}

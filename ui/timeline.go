package ui

import (
	"cmp"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/geomatch/geomatch/shardmap"
	"github.com/geomatch/geomatch/ui/mapview"
)

// maxMovesPerChange bounds the owner moves one ring change lists one by
// one; the rest are summed up in one event.
const maxMovesPerChange = 20

// diffRings describes how the ring changed from before to after as
// timeline events: the new epoch, members that joined or left (a member
// that leaves without being drained first is a failover), drains, weight
// changes, splits, merges, pins, and the shards among watched whose owner
// changed. Pure: no clock but now, no I/O.
func diffRings(before, after *shardmap.Map, watched []shardmap.Cell, now time.Time) []mapview.Event {
	if before == nil || after == nil || after.Epoch() == before.Epoch() {
		return nil
	}
	bd, ad := before.Doc(), after.Doc()
	ep := after.Epoch()
	ev := func(kind, cell, node, from, to, format string, args ...any) mapview.Event {
		return mapview.Event{Time: now, Epoch: ep, Kind: kind, Cell: cell, Node: node, From: from, To: to, Text: fmt.Sprintf(format, args...)}
	}
	var out []mapview.Event

	bm, am := membersByID(bd.Members), membersByID(ad.Members)
	for _, id := range sortedKeys(bm) {
		if _, ok := am[id]; ok {
			continue
		}
		if before.Drained(id) {
			out = append(out, ev("leave", "", id, "", "", "%s left the ring (it was drained)", id))
		} else {
			out = append(out, ev("failover", "", id, "", "", "%s left the ring: its shards went to the other members", id))
		}
	}
	for _, id := range sortedKeys(am) {
		b, ok := bm[id]
		switch {
		case !ok:
			out = append(out, ev("join", "", id, "", "", "%s joined the ring", id))
		case b.Weight != am[id].Weight:
			out = append(out, ev("weight", "", id, "", "", "%s weight %g → %g", id, b.Weight, am[id].Weight))
		}
	}
	for _, id := range diffStrings(ad.Drained, bd.Drained) {
		out = append(out, ev("drain", "", id, "", "", "%s drained: its shards went to the other members", id))
	}
	for _, id := range diffStrings(bd.Drained, ad.Drained) {
		if _, ok := am[id]; ok {
			out = append(out, ev("undrain", "", id, "", "", "%s undrained: it owns shards again", id))
		}
	}

	bs, as := cellSet(bd.Splits), cellSet(ad.Splits)
	for _, c := range sortedCells(as) {
		if !bs[c] {
			out = append(out, ev("split", c.String(), "", "", "", "shard %s split into its 7 children (resolution %d)", c, shardmap.Resolution(c)+1))
		}
	}
	for _, c := range sortedCells(bs) {
		if as[c] {
			continue
		}
		// A merge removes a split and every split below it: name the top.
		if p := shardmap.Parent(c, shardmap.Resolution(c)-1); bs[p] && !as[p] {
			continue
		}
		out = append(out, ev("merge", c.String(), "", "", "", "shard %s merged: one shard again", c))
	}

	for _, c := range sortedCells(keysOf(ad.Pins)) {
		if bd.Pins[c] != ad.Pins[c] {
			out = append(out, ev("pin", c.String(), ad.Pins[c], bd.Pins[c], ad.Pins[c], "shard %s pinned to %s", c, ad.Pins[c]))
		}
	}
	for _, c := range sortedCells(keysOf(bd.Pins)) {
		if _, ok := ad.Pins[c]; !ok && after.Layout().IsShard(c) {
			out = append(out, ev("unpin", c.String(), "", bd.Pins[c], "", "shard %s unpinned: the ring places it again", c))
		}
	}

	var moves []mapview.Event
	for _, c := range watched {
		if !before.Layout().IsShard(c) || !after.Layout().IsShard(c) {
			continue // split or merged: said above
		}
		b, okb := before.Owner(c)
		a, oka := after.Owner(c)
		if okb && oka && a.ID != b.ID {
			moves = append(moves, ev("move", c.String(), a.ID, b.ID, a.ID, "shard %s moved %s → %s", c, b.ID, a.ID))
		}
	}
	slices.SortFunc(moves, func(x, y mapview.Event) int { return cmp.Compare(x.Cell, y.Cell) })
	moved := len(moves)
	if len(moves) > maxMovesPerChange {
		rest := moves[maxMovesPerChange:]
		pairs := map[string]int{}
		for _, m := range rest {
			pairs[m.From+" → "+m.To]++
		}
		var parts []string
		for _, p := range sortedKeys(pairs) {
			parts = append(parts, fmt.Sprintf("%d %s", pairs[p], p))
		}
		moves = append(moves[:maxMovesPerChange], ev("move", "", "", "", "", "and %d more shards moved (%s)", len(rest), strings.Join(parts, ", ")))
	}

	summary := fmt.Sprintf("ring epoch %d → %d", before.Epoch(), ep)
	if moved > 0 {
		summary += fmt.Sprintf(": %d shown shards changed owner", moved)
	}
	out = append([]mapview.Event{ev("epoch", "", "", "", "", "%s", summary)}, out...)
	return append(out, moves...)
}

func membersByID(ms []shardmap.Member) map[string]shardmap.Member {
	out := make(map[string]shardmap.Member, len(ms))
	for _, m := range ms {
		out[m.ID] = m
	}
	return out
}

// diffStrings returns the elements of a not in b, sorted.
func diffStrings(a, b []string) []string {
	var out []string
	for _, s := range a {
		if !slices.Contains(b, s) {
			out = append(out, s)
		}
	}
	slices.Sort(out)
	return out
}

func cellSet(cs []shardmap.Cell) map[shardmap.Cell]bool {
	out := make(map[shardmap.Cell]bool, len(cs))
	for _, c := range cs {
		out[c] = true
	}
	return out
}

func keysOf[V any](m map[shardmap.Cell]V) map[shardmap.Cell]bool {
	out := make(map[shardmap.Cell]bool, len(m))
	for c := range m {
		out[c] = true
	}
	return out
}

func sortedCells(m map[shardmap.Cell]bool) []shardmap.Cell {
	out := make([]shardmap.Cell, 0, len(m))
	for c := range m {
		out = append(out, c)
	}
	slices.SortFunc(out, func(a, b shardmap.Cell) int { return cmp.Compare(a.String(), b.String()) })
	return out
}

func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

// timeline keeps the last events, oldest first, up to its bound. Not
// safe for concurrent use: the Collector's loop owns it.
type timeline struct {
	events []mapview.Event
	max    int
}

// add appends evs, dropping the oldest beyond the bound.
func (t *timeline) add(evs ...mapview.Event) {
	t.events = append(t.events, evs...)
	if over := len(t.events) - t.max; over > 0 {
		t.events = slices.Delete(t.events, 0, over)
	}
}

// list returns a copy of the events, oldest first.
func (t *timeline) list() []mapview.Event { return slices.Clone(t.events) }

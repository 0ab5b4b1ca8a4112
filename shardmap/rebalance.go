package shardmap

import (
	"cmp"
	"slices"
)

// ShardLoad is one shard's load as a rebalance plan sees it.
type ShardLoad struct {
	Cell Cell
	// Owner is the member that holds the shard now.
	Owner string
	// Drivers is how many drivers the shard holds.
	Drivers int64
}

// Move is one planned shard move.
type Move struct {
	Cell    Cell
	Drivers int64
	// From is the shard's owner when the move was planned; To is the
	// member it goes to.
	From, To string
}

// RebalancePlan is what PlanRebalance proposes.
type RebalancePlan struct {
	// Moves are the shard moves, in the order they were chosen.
	Moves []Move
	// Before and After are the drivers per node (every node given, with 0
	// for a node holding nothing), now and once the moves are made.
	Before, After map[string]int64
	// Total is the drivers of every shard given, those of owners that are
	// not among the nodes (a drained member's) included.
	Total int64
}

// MaxOverAvgBefore is the drivers of the busiest node over the average per
// node, before the moves; 0 without drivers.
func (p RebalancePlan) MaxOverAvgBefore() float64 { return maxOverAverage(p.Before) }

// MaxOverAvgAfter is MaxOverAvgBefore once the moves are made.
func (p RebalancePlan) MaxOverAvgAfter() float64 { return maxOverAverage(p.After) }

// Moved is the drivers the moves take along.
func (p RebalancePlan) Moved() int64 {
	var n int64
	for _, mv := range p.Moves {
		n += mv.Drivers
	}
	return n
}

// MovedFraction is Moved over Total; 0 without drivers.
func (p RebalancePlan) MovedFraction() float64 {
	if p.Total == 0 {
		return 0
	}
	return float64(p.Moved()) / float64(p.Total)
}

// PlanRebalance plans shard moves that even out the drivers per node: it
// moves a shard of the most loaded node to the least loaded one, each time
// the shard that best halves the gap between them, until the busiest node
// holds at most target times the average, no shard of it fits in the gap,
// or maxMoves moves are planned.
//
// nodes are the members that may own shards (the active ones); shards
// owned by anybody else count towards Total only and never move. Each move
// lowers the sum of squared loads, so no shard goes back and forth. Ties
// are broken by member id and cell, whatever the order of the input: the
// same loads give the same plan. Pure.
func PlanRebalance(shards []ShardLoad, nodes []string, target float64, maxMoves int) RebalancePlan {
	nodes = slices.Clone(nodes)
	slices.Sort(nodes)
	nodes = slices.Compact(nodes)
	plan := RebalancePlan{Before: make(map[string]int64, len(nodes)), After: make(map[string]int64, len(nodes))}
	for _, n := range nodes {
		plan.Before[n] = 0
	}
	// Busiest shards first, then by cell: the candidate order on ties.
	own := make([]ShardLoad, 0, len(shards))
	var placed int64
	for _, s := range shards {
		plan.Total += s.Drivers
		if _, ok := plan.Before[s.Owner]; !ok {
			continue
		}
		plan.Before[s.Owner] += s.Drivers
		placed += s.Drivers
		own = append(own, s)
	}
	slices.SortFunc(own, func(a, b ShardLoad) int {
		return cmp.Or(cmp.Compare(b.Drivers, a.Drivers), cmp.Compare(a.Cell, b.Cell))
	})
	load := plan.After
	for n, l := range plan.Before {
		load[n] = l
	}
	if len(nodes) < 2 || placed == 0 {
		return plan
	}
	avg := float64(placed) / float64(len(nodes))
	for len(plan.Moves) < maxMoves {
		hi, lo := nodes[0], nodes[0]
		for _, n := range nodes { // sorted: ties go to the smaller id
			if load[n] > load[hi] {
				hi = n
			}
			if load[n] < load[lo] {
				lo = n
			}
		}
		if float64(load[hi]) <= target*avg {
			break
		}
		// The shard of hi that brings hi and lo closest together: drivers
		// nearest half the gap, and fewer than the gap (so the max drops).
		gap := load[hi] - load[lo]
		best := -1
		for i, s := range own {
			if s.Owner != hi || s.Drivers <= 0 || s.Drivers >= gap {
				continue
			}
			if best < 0 || abs(gap-2*s.Drivers) < abs(gap-2*own[best].Drivers) {
				best = i
			}
		}
		if best < 0 {
			break
		}
		s := &own[best]
		plan.Moves = append(plan.Moves, Move{Cell: s.Cell, Drivers: s.Drivers, From: hi, To: lo})
		s.Owner = lo
		load[hi] -= s.Drivers
		load[lo] += s.Drivers
	}
	return plan
}

func abs(x int64) int64 {
	if x < 0 {
		return -x
	}
	return x
}

// maxOverAverage is the largest load over the average load; 0 when there
// is no load.
func maxOverAverage(load map[string]int64) float64 {
	var total, most int64
	for _, l := range load {
		total += l
		most = max(most, l)
	}
	if total == 0 {
		return 0
	}
	return float64(most) / (float64(total) / float64(len(load)))
}

// Package autosplit decides when a hot shard is split into its children
// and when an automatic split is merged back, and where the children go.
// It is pure logic in the style of shardmap: no I/O, no goroutines, no
// clock of its own. A controller beside the ring writer (membership's
// Autosplit) polls the matchers' per-shard load once a second, hands each
// Sample to a Planner with the current ring and the Record of what it
// split itself, and applies the Decision it gets back through the same
// ring-settings change an operator's `geomatch admin split` makes.
//
// # Load
//
// A shard's load is UpdatesPerS + QueryWeight·QueriesPerS, the rates the
// matchers already report per shard (StatsResponse, AdminService.ListShards).
// QueryWeight is 0 by default: a shard's query rate counts a search once
// on every shard it covers, so it does not shrink when the shard splits
// (each child counts the same searches again), while updates partition
// exactly among the children. The load is therefore what a split relieves.
//
// # Rules
//
//   - Split: a shard whose load stays above SplitThreshold for SplitWindow
//     (every sample of the window above it) is split into its 7 children (6
//     under a pentagon), unless an operator pinned it, it is at the finest
//     resolution the ring allows or at MaxDepth, or a rate limit holds.
//   - Merge: a cell the planner split itself, whose children are all shards
//     (merges go bottom up), is merged when the children's combined load
//     stays under MergeFraction·SplitThreshold for MergeWindow, counted
//     from when the split and its children have cooled down (ShardCooldown:
//     the children's rates start from zero on their new owners). The gap
//     between the two levels (2× by default) and between the two windows
//     (10 s against 5 min) is the hysteresis that keeps a shard from
//     flapping: a split shard's children together carry about the load that
//     made it split, far above the merge level.
//   - Rate limits: at most one decision per ClusterInterval in the whole
//     cluster, and none touching a cell within ShardCooldown of the last
//     change of that cell (a split's children are new shards: they split
//     again only after a whole window of their own).
//   - Operators win: a shard with an operator's pin is never split; a split
//     the planner did not make is never merged, nor one with an operator's
//     pin or split below it. Record tells the planner's own splits and
//     pins from the operator's.
//   - Missing data decides nothing: a shard whose owner did not answer has
//     its windows restarted.
//   - Kill switch: Config.Enabled false makes Step return nothing.
//
// # Placement
//
// A split places the children itself (Decision.Pins): each child, its load
// estimated as an equal share of the parent's, goes to the active member
// with the least load once the parent's load is taken off its owner, ties
// to the parent's owner (its drivers need not move) and then by id. Every
// member that gets a child therefore ends within one child's share of the
// least loaded member, in the spirit of consistent hashing with bounded
// loads (a member over its share takes no more); the ring alone would
// place the 7 children at random. The children are pinned, and the pins
// recorded as the planner's, so a merge removes them.
//
// # Usage
//
//	p, err := autosplit.NewPlanner(autosplit.DefaultConfig())
//	...
//	for each second {
//		d, ok := p.Step(sample, ringMap, record)
//		if ok { apply d, then update record }
//	}
package autosplit

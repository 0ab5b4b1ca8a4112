// Package matcher is a matcher node: it owns a slice of the map (the shards
// the ring assigns to it at the current epoch), keeps their drivers in the
// in-memory index (package matcher/index: per shard an R-tree and a driver
// table), and answers the routers' internal calls: batches of location
// updates over long-lived Apply streams, exact k-nearest searches over listed
// shards, and load statistics.
//
// A node refuses work for shards it does not own with a typed NotOwnerError
// carrying its epoch, so nothing is silently misrouted: the router refreshes
// its ring and retries. The rules, for a caller at epoch E and a node at
// epoch N:
//
//   - E == N: the node serves exactly the shards it owns;
//   - E < N (the caller is behind): the node serves the shards it owns at N
//     and refuses the rest;
//   - E > N (the node is behind): the node refreshes its ring once and, if
//     it is still behind, refuses everything.
//
// When the ring changes, the node hands the shards it lost to their new
// owners and warms the shards it gained from their old owners, or from the
// store when an old owner is gone (see Handoff in handoff.go).
//
// The node's goroutines are owned by Run, which returns when its context is
// done.
package matcher

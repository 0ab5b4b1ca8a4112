// Package matcher is a matcher node: it owns a slice of the map (the shards
// the ring assigns to it at the current epoch), keeps their drivers in the
// in-memory index (package matcher/index: per shard an R-tree and a driver
// table), and answers the fleet clients' internal calls: batches of location
// updates over long-lived Apply streams, exact k-nearest searches over listed
// shards, load statistics, and the hand-over calls of other matchers.
//
// Node works on domain types (Batch, Update, Query, Stats, TransferRequest);
// its gRPC service (Server) and its in-process adapter for a fleet client in
// the same process (Local, a fleet.LocalNode) convert to and from the
// internal wire messages, in wire.go, which is also the one place where
// node errors become gRPC statuses.
//
// A node refuses work for shards it does not own with a
// *shardmap.NotOwnerError carrying its epoch, so nothing is silently
// misrouted: the caller refreshes its ring and retries. The rules, for a
// caller at epoch E and a node at epoch N:
//
//   - E == N: the node serves exactly the shards it owns;
//   - E < N (the caller is behind): the node serves the shards it owns at N
//     and refuses the rest;
//   - E > N (the node is behind): the node refreshes its ring once and, if
//     it is still behind, refuses everything.
//
// When the ring changes, the node hands the shards it lost to their new
// owners and warms the shards it gained from their old owners, or from the
// store when an old owner is gone: package matcher/handoff decides, and
// handoff.go performs the I/O.
//
// The node's goroutines are owned by Run, which returns when its context is
// done; a node must be run for as long as it serves.
package matcher

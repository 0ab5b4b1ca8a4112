package shardmap

import "fmt"

// NotOwnerError is the typed refusal of a matcher that does not own some
// shards at the caller's epoch. The caller refreshes its ring (when the
// node's epoch is newer than its own) and routes again; nothing is
// silently misrouted. The rules, for a caller at epoch E and a node at
// epoch N: at E == N the node serves exactly the shards it owns; at E < N
// it serves the shards it owns at N and refuses the rest; at E > N, still
// behind after a refresh, it refuses everything.
//
// It carries no transport: the matcher's gRPC server sends it as ABORTED
// with a NotOwner detail, and the fleet client turns that back into this
// error.
type NotOwnerError struct {
	// NodeID is the refusing node.
	NodeID string
	// Epoch is the node's own ring epoch.
	Epoch uint64
	// Shards are the shards the node refused (all of the request's shards
	// when the node is behind the caller's epoch).
	Shards []Cell
}

// Error implements error.
func (e *NotOwnerError) Error() string {
	return fmt.Sprintf("node %s does not own %d shard(s) at its epoch %d", e.NodeID, len(e.Shards), e.Epoch)
}

package matcher

import (
	"github.com/uber/h3-go/v4"

	"github.com/geomatch/geomatch/driver"
	"github.com/geomatch/geomatch/internal/geo"
	"github.com/geomatch/geomatch/matcher/index"
)

// The node's API works on these domain types; its gRPC service (Server)
// and its in-process adapter (Local) convert to and from the internal wire
// messages (geomatch.matcher.v1), in wire.go.

// Update is one location update as a fleet client sends it.
type Update struct {
	DriverID     string
	Pos          geo.LatLng
	TimestampMs  int64
	Status       driver.Status // Unspecified: keep the current status
	VehicleClass string        // "": keep the current class
	// FineCell is the update's cell at the ring's fine resolution,
	// computed by the sender (the node derives the shard from it).
	FineCell h3.Cell
	// OnStream: the update came on the driver's Connect stream, so the
	// driver can be offered rides (cleared by an update that did not).
	OnStream bool
}

// Eviction tells a node to drop its copy of a driver older than
// OlderThanMs: the driver was claimed by another node.
type Eviction struct {
	DriverID    string
	OlderThanMs int64
	// ClaimedBy is the node whose claim asked for the eviction ("" for
	// none): a node holding a newer copy reports it back
	// (BatchResult.Newer) so the claimer's older copy goes instead.
	ClaimedBy string
}

// Batch is one message of an update stream: updates routed at Epoch, and
// evictions.
type Batch struct {
	Epoch     uint64
	Updates   []Update
	Evictions []Eviction
}

// Exception is the outcome of one update of a batch that was not simply
// applied.
type Exception struct {
	// Index is the update's index in its batch.
	Index   uint32
	Outcome driver.Outcome
}

// BatchResult is a node's answer to a batch.
type BatchResult struct {
	// Epoch is the node's ring epoch.
	Epoch uint64
	// Exceptions lists the updates not applied.
	Exceptions []Exception
	// Claimed lists the updates that made the driver new on this node:
	// the sender evicts older copies from the other nodes.
	Claimed []uint32
	// Newer lists the evictions of the batch (with a claimer) that met a
	// live copy newer than asked, with that copy's timestamp as
	// OlderThanMs: the sender evicts the claimer's older copy.
	Newer []Eviction
}

// ApplyScratch holds the scratch slices of one sender's batches, reused
// across batches so steady-state batches do not allocate them. A scratch
// serves one sender at a time; the zero value is ready to use.
type ApplyScratch struct {
	batch   []Update   // the wire adapters' decoded batch
	evicts  []Eviction // and its evictions
	updates []index.Update
	results []index.Result
	pos     []uint32
	exc     []Exception
	claimed []uint32
	newer   []Eviction
	// owned caches n.owns for one call's map: a batch's updates fall in
	// few shards, and the ring lookup cost a fifth of Apply.
	owned map[h3.Cell]bool
	// fence holds the batch's applied updates for the fence engine.
	fence []fenceWork
}

// Query is one nearby search over listed shards, all of which the node
// must own at the caller's Epoch.
type Query struct {
	Epoch        uint64
	Pos          geo.LatLng
	RadiusM      float64
	Limit        int
	Shards       []h3.Cell
	Status       driver.Status // Unspecified: any but offline
	VehicleClass string        // "": any
	// OnStreamOnly keeps drivers whose last update came on their Connect
	// stream only: the ones a ride offer can reach.
	OnStreamOnly bool
}

// Stats are a node's drivers and load per shard.
type Stats struct {
	NodeID  string
	Epoch   uint64
	Drivers int64
	// Shards, most drivers first.
	Shards []ShardStats
	// ConsulLease is whether the node's own Consul contact is current
	// (always true outside a Consul cluster).
	ConsulLease bool
}

// ShardStats are one shard's drivers and load rates.
type ShardStats struct {
	Shard                    h3.Cell
	Drivers                  int64
	UpdatesPerS, QueriesPerS float64
}

// TransferRequest asks a node for the drivers it handed over in the
// snapshots of shards it gave up, for the requesting node To (a warm-up).
type TransferRequest struct {
	// Epoch is the requester's ring epoch (the ring the request is judged
	// by, or newer).
	Epoch uint64
	// To is the requesting node: drivers it owns are sent.
	To string
	// SinceEpoch: only snapshots given up after it (0: every snapshot
	// kept).
	SinceEpoch uint64
	// Shards, when listed, limits the snapshots to those shards.
	Shards []h3.Cell
}

// TransferChunk is one part of a Transfer answer.
type TransferChunk struct {
	Drivers []index.Driver
	// Covered lists the shards whose snapshots were sent (in the last
	// chunk).
	Covered []h3.Cell
}

// Held is a driver a node holds, with its timestamp (the answer to
// Holding).
type Held struct {
	DriverID    string
	TimestampMs int64
}

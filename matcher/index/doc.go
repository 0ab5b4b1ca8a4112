// Package index is the in-memory driver index of one matcher node: for every
// shard (an H3 cell) the node owns, an R-tree of driver positions
// (tidwall/rtree) plus one driver directory shared by all shards. It is pure
// in-memory logic: no network, no files, no goroutines. The gRPC layer above
// it checks shard ownership and epochs and routes; this package only stores,
// expires and searches.
//
// # Updates
//
// Apply takes a batch of location updates, already validated and assigned to
// a shard by the caller. Each driver carries the client timestamp of its last
// applied update: an older update is Stale, an equal one a Duplicate (so
// retries are idempotent), a newer one is applied. A driver whose shard
// changed is moved from the old shard's tree to the new one in one step.
// Result.Claimed tells the caller that the driver was not live here before, so
// it can tell the other nodes to Evict their older copies.
//
// # Tombstones
//
// Remove, Evict and Expire leave a tombstone (the id and the last timestamp)
// in the directory for one TTL, so an old update that arrives late is still
// recognised as Stale instead of resurrecting the driver. Tombstones count
// towards Config.MaxDrivers; when the index is full, a new driver recycles the
// oldest tombstone, and only when every slot holds a live driver is the update
// refused (OutcomeFull). DropShard (the node lost the shard) forgets its
// drivers without tombstones, so a later handoff of the same shard back to
// this node is applied normally.
//
// # Expiry without scans
//
// Live drivers sit in an intrusive doubly-linked list ordered by the time
// their last update was received (an update moves its driver to the back);
// tombstones sit in a second list ordered by the time they were made. Expire
// pops from the fronts while the front is older than the TTL, so its work is
// proportional to what it removes, never to the size of the index.
//
// # Exact k-nearest search
//
// Nearby searches in rounds over a growing circle around q. A round with
// reach d runs, in each shard whose tree's bounding box may come within the
// limit (min(d, k-th best distance so far)), the R-tree's plain box search
// over a latitude/longitude box that provably holds the spherical cap of
// radius limit (widened by margins far above rounding error, split at the
// antimeridian, the whole longitude circle near a pole): the walk compares
// coordinates only, with no priority queue and no trigonometry per node.
// Each driver in the box is filtered from the status and class copied into
// its tree item, rejected cheaply (latitude and longitude gaps) when it is
// provably beyond the limit, and only then gets its exact geo.DistanceM (via
// geo.Origin, bit-identical). A bounded max-heap keeps the k best by
// (distance, id), and the limit shrinks as it fills. A round is conclusive
// when it kept k drivers (every driver not seen is farther than d, hence
// than the k-th) or when d is the radius; otherwise d grows (by the density
// of matches seen) and the round is redone. The first reach is what the
// density of the nearest shard's box predicts for about 2k drivers, so one
// round almost always suffices and its work (a few tree nodes, a few dozen
// drivers) does not grow with the number of drivers. Shards are visited by
// a cheap lower bound of their boxes' distance, nearest first, so later ones
// are usually pruned without being opened. Entries are read (for the id and
// timestamp) only for drivers that enter the heap, still under their
// shard's lock. The answer is therefore bit-for-bit the one geo.NearestBrute
// gives over the same drivers: same ids, same order, same float distances.
//
// # Locking
//
// One writer mutex serialises Apply, Evict, Remove, Expire and DropShard and
// guards the receive-time lists. Each shard has its own RWMutex guarding its
// tree and the fields of the drivers in it: writers take it for each
// modification, Nearby read-locks one shard at a time while it searches it.
// The directory (id → driver) and the shard set have their own RWMutexes,
// held only for a map operation. Queries (Nearby, Get, Len, Shards,
// ShardDrivers) never take the writer mutex, so they run concurrently with
// writes. A driver that leaves a shard while a query is between two shards
// could be seen twice; Nearby detects this with a relocation counter and
// re-runs (and, as a last resort, de-duplicates). At rest, answers are exact.
//
// # Memory
//
// A driver costs about 185 bytes at a million drivers (measured by
// BenchmarkNearby with 16-byte ids): an 80-byte entry, its id, an 8-byte
// slot in the directory's open-addressing tables, and its share of the
// R-tree nodes (a 32-byte rectangle and a 16-byte item per driver, nodes
// about two-thirds full). Vehicle classes are interned per index as 2-byte
// indexes. The tree item repeats the status and class so that filtering
// never touches the entry of a driver that is not returned.
//
// # Usage
//
//	ix, err := index.New(index.DefaultConfig())
//	if err != nil { ... }
//	results := make([]index.Result, len(updates))
//	ix.Apply(updates, results)
//	near := ix.Nearby(q, 2000, 10, shardsCoveringTheCircle, index.Filter{Status: index.StatusAvailable}, nil)
//	go func() { for range time.Tick(time.Second) { ix.Expire() } }() // owned by the caller
package index

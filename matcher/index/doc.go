// Package index is the in-memory driver index of one matcher node: for every
// shard (an H3 cell) the node owns, a grid of driver positions, plus one
// driver directory shared by all shards. It is pure in-memory logic: no
// network, no files, no goroutines. The gRPC layer above it checks shard
// ownership and epochs and routes; this package only stores, expires and
// searches.
//
// # Updates
//
// Apply takes a batch of location updates, already validated and assigned to
// a shard by the caller. Each driver carries the client timestamp of its last
// applied update: an older update is Stale, an equal one a Duplicate (so
// retries are idempotent), a newer one is applied. A driver whose shard
// changed is moved from the old shard to the new one in one step.
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
// reach d runs, in each shard whose bounding box may come within the limit
// (min(d, k-th best distance so far)), a search of the shard's grid over a
// latitude/longitude box that provably holds the spherical cap of radius
// limit (widened by margins far above rounding error, split at the
// antimeridian, the whole longitude circle near a pole): it reads the runs
// of points of the grid cells the box covers and compares coordinates,
// with no priority queue and no trigonometry per cell. Each driver in the
// box is filtered from the status and class stored in its point, rejected
// cheaply (latitude and longitude gaps) when it is provably beyond the
// limit, and only then gets its exact geo.DistanceM (via geo.Origin,
// bit-identical), from its float64 position. A bounded max-heap keeps the
// k best by (distance, id), and the limit shrinks as it fills. A round is
// conclusive when it kept k drivers (every driver not seen is farther than
// d, hence than the k-th) or when d is the radius; otherwise d grows (by
// the density of matches seen) and the round is redone. The first reach is
// what the density of the nearest shard's box predicts for about 2k
// drivers, so one round almost always suffices and its work (a few grid
// cells, a few dozen drivers) does not grow with the number of drivers.
// Shards are visited by a cheap lower bound of their boxes' distance,
// nearest first, so later ones are usually pruned without being opened.
// Ids and timestamps are read only for drivers that enter the heap, still
// under their shard's lock. The answer is therefore bit-for-bit the one
// geo.NearestBrute gives over the same drivers: same ids, same order, same
// float distances.
//
// # Locking
//
// One writer mutex serialises Apply, Evict, Remove, Expire and DropShard and
// guards the receive-time lists. Each shard has its own RWMutex guarding its
// grid and the query-visible fields of the drivers in it: writers take it
// for each modification, Nearby read-locks one shard at a time while it
// searches it. A shard emptied and forgotten keeps its object (and number),
// which a new cell may reuse; a query that found it under the old cell
// checks the cell under its lock and skips it.
// The directory (id → driver) and the shard set have their own RWMutexes,
// held only for a map operation. Queries (Nearby, Get, Len, Shards,
// ShardDrivers) never take the writer mutex, so they run concurrently with
// writes. A driver that leaves a shard while a query is between two shards
// could be seen twice; Nearby detects this with a relocation counter and
// re-runs (and, as a last resort, de-duplicates). At rest, answers are exact.
//
// # Memory: a layout without pointers
//
// A driver is an int32 slot. Its fields live in columns indexed by slot
// (struct of arrays, in fixed pages that never move): the timestamp, id
// offset and shard number that queries read (16 bytes), its point's index
// in its shard (4), and the receive time and list links of the expiry
// lists (16). Its id lives in one byte arena, behind a length byte; the
// directory is open addressing over 4-byte cells (slot and 7 bits of the
// id's hash). Each shard keeps its drivers' points (position as two
// float64, slot, status, class: 24 bytes) in one array sorted by the cell
// of a uniform grid laid over the shard's box, about eight points a cell;
// a cell is a head index and a chain through the points (4 bytes each)
// that a rebuild turns back into consecutive runs. None of these arrays
// holds a pointer, so the collector neither scans nor marks per driver:
// the heap holds a few large objects per shard and per page. Ids handed
// out (Driver.ID) are strings sharing the arena's bytes, which are never
// rewritten, so callers may keep them without a copy (a kept id keeps its
// 64 KiB arena page alive after the index has moved its ids elsewhere).
// A slot freed and reused for another driver is told apart by its id:
// Get checks it under the shard's lock.
//
// At a million drivers with 16-byte ids a driver costs about 93 bytes of
// live heap (97 at 100k; BenchmarkHeapPerDriver): 36 in the columns, 17
// in the arena, about 8 in the directory, about 30 in its shard's arrays
// (they grow by an eighth at a time) and under a byte of grid heads. The
// grid beats tidwall/rtree's generic R-tree over int32 slots here: that
// tree keeps a float64 rectangle per item (32 bytes, plus the item, in
// nodes about two-thirds full: about 55 bytes a driver against 29), and
// its nodes are pointers the collector scans.
//
// Vehicle classes are interned per index as 2-byte indexes.
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

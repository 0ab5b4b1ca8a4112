// Package shardmap decides where every place on Earth is served: which
// shard a driver's position belongs to, which matcher node owns that shard,
// and which nodes a nearby search must ask. It is pure logic (no I/O, no
// goroutines): routers and matchers build a Map from the ring document they
// watch in Consul and ask it questions.
//
// # Shards and split cells
//
// A shard is an H3 cell at the shard resolution (Doc.ShardRes, 7 by
// default: about 5 km², so a city spans tens to hundreds of shards). A hot
// shard can be split: it is replaced by its 7 children (6 under a
// pentagon), which can be split again, down to Doc.MaxSplitDepth levels;
// merging removes the split. Whatever the splits, the shards partition the
// globe (Layout).
//
// A position's shard is decided from its fine cell, its H3 cell at FineRes
// = ShardRes+MaxSplitDepth: the shard is the first ancestor of the fine
// cell that is not split. Computing the fine cell is the one cgo call per
// location update; the rest (Parent, Layout.ShardOfFine, Map.Owner) is pure
// Go bit manipulation and map lookups without allocation. Deciding by the
// fine cell means a split or merge only moves the drivers of the shard
// concerned, and a matcher can re-home a driver from its stored fine cell.
//
// # The ring, pins and drains
//
// A shard's owner is found by consistent hashing (Ring): each member
// (matcher node) gets round(VNodes*weight) points on a 64-bit circle, and a
// shard belongs to the first point at or after its hash. Joins and leaves
// move only the shards of the member concerned, about 1/n of them. Hashes
// are FNV-1a 64 with a splitmix64 finalizer, so every process computes the
// same owners. Pins override the ring for single shards (moving a hot shard
// by hand); drained members stay members but own nothing.
//
// # Epochs
//
// The ring document (Doc) holds the layout, members, weights, pins and
// drains, and an Epoch that the one elected writer increases with every
// change. A Map is built from one document and never changes; a new epoch
// means a new Map. A matcher refuses work for a shard it does not own at
// the caller's epoch, so a router with a stale Map learns it and refreshes
// instead of misrouting.
//
// # Exact cover
//
// A nearby search must find every driver within its radius, across shard
// and node borders. Layout.Cover and Map.Route return a superset of the
// shards any point within the radius belongs to, never less. A shard's
// region is the union of its fine cells' hexagons, which sticks out of the
// shard's own hexagon a little (H3 children are not nested exactly), so
// Cover does not intersect polygons: it walks the cells at ShardRes and
// keeps those whose center is near enough to possibly matter, with margins
// built from bounds on H3 cell sizes (every cell's circumradius, every
// child's distance from its parent's center). The bounds are proven for
// every cell of resolutions 0..3 and sampled at 4..15 by the tests, with
// margins of 18% over the measured worst; Cover documents the argument step
// by step. Everything is spherical (H3 and geo.DistanceM), so the poles,
// the antimeridian and pentagons need no special case, and the tests check
// them explicitly.
//
// Route caches its answers per (cell, radius bucket), so a router's hot
// path is one cgo call and one map lookup.
//
// # Usage
//
//	m, err := shardmap.NewMap(doc) // doc from Consul, or shardmap.DefaultDoc(members)
//	if err != nil { ... }
//	// A location update:
//	fine, shard, owner, ok := m.Locate(geo.LatLng{Lat: 40.7128, Lng: -74.0060})
//	// A nearby search of 2 km:
//	for _, t := range m.Route(pos, 2000) {
//		// ask t.Member.Addr for its drivers in t.Shards, stamped with m.Epoch()
//	}
package shardmap

// Package fence is the geometry of geofences and the index that answers,
// on every driver location update, which fences the driver entered,
// exited, stayed in or crossed. It is pure logic: no I/O, no goroutines.
// Matcher nodes keep an Index of the fences over the shards they own and
// give it each update's previous and current positions: Index.Transitions
// reports the transitions, Index.Moves the fences holding either position
// (for callers that keep each driver's set of fences); the events are
// theirs to publish.
//
// # Shapes
//
// A fence's Shape is a Polygon or a Circle.
//
//   - ParseGeoJSON reads a GeoJSON Polygon or MultiPolygon (or a Feature
//     of one) and validates it: closed rings of at least 4 positions,
//     at most MaxVertices positions, coordinates in range, no ring
//     crossing or touching itself or another ring of its polygon, holes
//     inside their exterior, no zero area. Either winding is accepted.
//     Edges are straight lines in longitude/latitude (RFC 7946).
//   - NewCircle makes the disc of points within a radius (great-circle,
//     geo.DistanceM) of a center, up to MaxRadiusM.
//
// Boundaries belong to the shape: a point on an edge, on a hole's edge or
// at exactly the radius is inside.
//
// Antimeridian: consecutive GeoJSON positions more than 180° of longitude
// apart are joined the short way round, and the ring is read with
// continuous longitudes (which may pass ±180); points are tested at lng,
// lng+360 and lng-360. So a ring cannot go around a pole: polar areas are
// circles. A driver's path between two updates is likewise the straight
// longitude/latitude segment the short way round (for Cross).
//
// # Transitions
//
// Between a driver's previous position (none when it is seen for the
// first time) and its current one, relative to one fence, as in Tile38:
//
//	previous   current   segment meets the fence   transition
//	inside     inside                               Inside
//	inside     outside                              Exit
//	outside    inside                               Enter
//	outside    outside   yes                        Cross
//	outside    outside   no                         (none)
//	(none)     inside                               Enter
//	(none)     outside                              (none)
//
// A fence reports a transition only when its Detect includes it (zero
// means DefaultDetect: enter and exit), and only for drivers of its
// VehicleClass when it has one. Fence.Eval is this definition for one
// fence; Index.Transitions gives exactly what Eval over every fence gives.
//
// # The cell index
//
// The Index covers each fence with H3 cells at its resolution (the
// matchers' fine resolution, so a position's cell is already known and
// the hot path makes no cgo call):
//
//   - boundary cells, where the fence's boundary may pass: the cells of
//     samples of the boundary taken every 0.8 edge, and their
//     neighbors;
//   - interior cells, every point of which is inside: found by a walk
//     from the boundary, stored as coarse as possible (a city-sized fence
//     takes a few hundred entries, not millions) and found from a
//     position's cell by its ancestors (bit operations).
//
// Each boundary cell also carries a micro grid (8x8 over the box of its
// hexagon) on which every fence records the micro cells wholly inside and
// wholly outside it, so most positions in boundary cells need no
// geometry either; fences whose boundary passes through the position's
// micro cell take the exact test. For Cross, a move whose two positions
// lie in one cell's micro box (most moves) needs only the fences whose
// boundary passes under the segment's micro cells; other moves search an
// R-tree of rectangles covering the boundaries of the fences detecting
// Cross. Fences without Cross cost nothing for it.
//
// Exactness is the contract: the property and fuzz tests compare the index
// with brute force near the poles, pentagons and the antimeridian. What
// it rests on (H3 cells of nearby points are neighbors; a micro box holds
// its hexagon) is checked by geometry_test.go.
//
// # Bounds and costs
//
// MaxVertices positions per GeoJSON shape, MaxRadiusM for circles,
// MaxCells cells per fence cover (Prepare refuses more). A polygon of
// 10,000 vertices validates in tens of milliseconds. With 20,000 fences
// of about a square kilometer over a city (BenchmarkTransitions), an
// update scans about a hundred cell entries, runs a handful of exact
// tests and allocates nothing; a put spends a few hundred microseconds in
// Prepare (H3 calls and the micro grids), which callers may run outside
// their write lock; the index takes about 3.5 KB per fence besides the
// shapes (a polygon of n vertices holds about 24n bytes).
//
// # Concurrency
//
// An Index has no lock: reads may run concurrently with each other,
// writes (Put, PutPrepared, Delete) must be serialized against everything
// by the caller. Shapes and Fences are immutable once indexed.
//
// # Usage
//
//	ix, _ := fence.NewIndex(9)
//	shape, err := fence.ParseGeoJSON(text)
//	if err != nil {
//		return fmt.Errorf("fence.geojson: %w", err)
//	}
//	if err := ix.Put(&fence.Fence{ID: "downtown", Set: "zones", Shape: shape}); err != nil {
//		return err
//	}
//	// On each update, with the positions' resolution-9 cells:
//	ix.Transitions(prev, prevCell, cur, curCell, vehicleClass, func(f *fence.Fence, t fence.Transition) {
//		publish(f, t)
//	})
package fence

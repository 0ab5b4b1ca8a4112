// Package city is the street network of the traffic simulator: a graph of
// intersections and directed road segments placed at real coordinates,
// with a speed per segment from its road class.
//
// A network comes from a generated grid (Grid: blocks, arterials every few
// lines, highways along the edges, speeds varied per segment), from one of
// the presets (Presets: a Manhattan-sized grid over New York, a small grid
// straddling the antimeridian on Taveuni in Fiji, and one at 78°N in
// Longyearbyen), or from a GeoJSON file of LineString roads (LoadGeoJSON).
//
// Geometry is planar inside the city: every node has x/y meters in a local
// tangent frame (Frame) around the city's origin, and its latitude and
// longitude are derived from them, so a city that straddles the antimeridian
// is as straight a grid as any other. Routing (Graph.Route) is A* by travel
// time; a Mover follows a route, or roams from intersection to
// intersection, at each segment's speed.
//
// Everything here is pure: no I/O (LoadGeoJSON reads from a reader the
// caller opened), no clocks, no goroutines; randomness comes from the
// caller's *rand.Rand, so a seeded caller gets the same city and the same
// moves every time.
//
// Usage:
//
//	p, _ := city.PresetByName("nyc")
//	g, _ := city.Grid(p.Grid)
//	from := city.Loc{Edge: 0}
//	r, ok := g.Route(from, g.Nearest(g.Frame.XY(p.Places[0].Pos)))
//	m := city.NewMover(g, from)
//	m.Follow(r)
//	arrived := m.Advance(30, rng) // 30 seconds later
package city

// Package mapview is the one drawing of the cluster: the shard map's
// document (Snapshot: the shards with their owners, loads and H3
// boundaries, the matcher nodes, the ring's timeline and optional
// overlays) and the dependency-free browser renderer that draws it as
// SVG (assets/map.js, embedded).
//
// The router's live map (package ui) serves the renderer and pushes a new
// Snapshot every second; the simulator's HTML report embeds the same
// renderer with one static Snapshot (Embed). Both therefore show a shard,
// an owner colour or a load shade the same way.
//
// The renderer needs no basemap, tile server or network: hexagon
// boundaries come in the document (computed here with h3-go), projected
// in the browser with a local equirectangular projection around the
// document's centre (a city never straddles enough longitude for the
// distortion to matter, and a city across the antimeridian stays in one
// piece). It uses only standard DOM and SVG APIs, so it runs in Firefox
// and Chromium alike.
package mapview

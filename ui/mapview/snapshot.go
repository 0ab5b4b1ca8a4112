package mapview

import (
	"fmt"
	"math"
	"time"

	"github.com/uber/h3-go/v4"
)

// Version is the Snapshot format's version, bumped on an incompatible
// change.
const Version = 1

// Load metrics a Snapshot's shards carry, by their JSON names; the
// renderer shades shards by the one the viewer picks.
const (
	LoadDrivers     = "drivers"
	LoadUpdates     = "updates_per_s"
	LoadQueries     = "queries_per_s"
	LoadFenceEvents = "fence_events_per_s"
)

// Snapshot is the shard map's document: everything the renderer draws.
// The live map sends one per second; the simulator's report embeds one.
type Snapshot struct {
	// Version is the format's Version.
	Version int `json:"version"`
	// Title heads the map ("geomatch: shard map").
	Title string `json:"title,omitempty"`
	// Seq numbers the live map's snapshots (0 in a static one); an update
	// names the Seq it follows, so a client that missed one refetches.
	Seq uint64 `json:"seq"`
	// Time is when the snapshot was taken.
	Time time.Time `json:"time"`
	// Epoch is the ring epoch the owners are taken from.
	Epoch uint64 `json:"epoch"`
	// ShardRes is the ring's shard resolution; split children are finer.
	ShardRes int `json:"shard_res"`
	// Membership is where the ring comes from ("local", "consul", "static").
	Membership string `json:"membership,omitempty"`
	// Auth says whether the router checks tokens: actions need an admin
	// token when it does.
	Auth bool `json:"auth"`
	// Live says whether the page can act on the cluster (the router's
	// live map) or only shows it (a report).
	Live bool `json:"live"`
	// Loads are the load metrics the shards carry, shading choices first
	// to last (LoadDrivers, ...).
	Loads []string `json:"loads"`
	// Nodes are the matcher nodes, sorted by id.
	Nodes []Node `json:"nodes"`
	// Shards are the shards drawn, sorted by cell.
	Shards []Shard `json:"shards"`
	// Timeline is the ring's recent history, oldest first.
	Timeline []Event `json:"timeline,omitempty"`
	// Overlays are drawn over the shards (fences, streets, samples).
	Overlays []Overlay `json:"overlays,omitempty"`
	// Note is a line shown under the map (why something is missing).
	Note string `json:"note,omitempty"`
}

// Node is a matcher node as the map shows it.
type Node struct {
	ID     string  `json:"id"`
	Addr   string  `json:"addr,omitempty"`
	Weight float64 `json:"weight"`
	// Color fills the node's shards (OwnerColors).
	Color string `json:"color"`
	// State is "serving", "drained" or "unreachable" (the admin API's
	// node states), or "" when unknown (a report).
	State   string `json:"state,omitempty"`
	Drained bool   `json:"drained,omitempty"`
	// Epoch is the ring epoch the node last reported.
	Epoch uint64 `json:"epoch,omitempty"`
	// Shards counts the drawn shards the ring gives the node.
	Shards      int     `json:"shards"`
	Drivers     int64   `json:"drivers"`
	UpdatesPerS float64 `json:"updates_per_s"`
	QueriesPerS float64 `json:"queries_per_s"`
	// Error is why the node did not answer the status probe.
	Error string `json:"error,omitempty"`
}

// Shard is one drawn shard.
type Shard struct {
	// Cell is the shard's H3 cell (hex).
	Cell string `json:"cell"`
	// Res is its H3 resolution: ShardRes, or finer for split children.
	Res int `json:"res"`
	// Parent is the split cell a finer shard comes from (merging it
	// undoes the split); "" at the shard resolution.
	Parent string `json:"parent,omitempty"`
	// Owner is the member id the ring gives it ("" when none).
	Owner string `json:"owner"`
	// Pinned says an operator moved it (MoveShard).
	Pinned          bool    `json:"pinned,omitempty"`
	Drivers         int64   `json:"drivers"`
	UpdatesPerS     float64 `json:"updates_per_s"`
	QueriesPerS     float64 `json:"queries_per_s"`
	FenceEventsPerS float64 `json:"fence_events_per_s,omitempty"`
	// Boundary is the hexagon's vertices, [lat, lng] in degrees. An update
	// leaves it out for shards the previous snapshot already had.
	Boundary [][2]float64 `json:"boundary,omitempty"`
}

// Event is one entry of the ring's timeline.
type Event struct {
	Time time.Time `json:"time"`
	// Epoch is the ring epoch the event produced.
	Epoch uint64 `json:"epoch"`
	// Kind is "epoch" (the line that heads a ring change), "move" (a
	// shown shard changed owner), "pin", "unpin", "split", "merge",
	// "drain", "undrain", "join", "leave" (a drained member left),
	// "failover" (a member left without being drained) or "weight".
	Kind string `json:"kind"`
	Cell string `json:"cell,omitempty"`
	Node string `json:"node,omitempty"`
	From string `json:"from,omitempty"`
	To   string `json:"to,omitempty"`
	// Text says it in a sentence.
	Text string `json:"text"`
}

// Overlay is a layer drawn over the shards.
type Overlay struct {
	// Name labels the layer's toggle.
	Name string `json:"name"`
	// Kind is "lines", "points" or "polygons".
	Kind  string `json:"kind"`
	Color string `json:"color"`
	// Width is the stroke width in pixels (lines, polygon outlines).
	Width float64 `json:"width,omitempty"`
	// Radius is a point's radius in pixels.
	Radius float64 `json:"radius,omitempty"`
	// Dash is an SVG stroke-dasharray in pixels ("6 3").
	Dash string `json:"dash,omitempty"`
	// Opacity is the fill opacity of points and polygons.
	Opacity float64 `json:"opacity,omitempty"`
	// Hidden starts the layer switched off.
	Hidden bool `json:"hidden,omitempty"`
	// Lines are polylines of [lat, lng] vertices.
	Lines [][][2]float64 `json:"lines,omitempty"`
	// Points are [lat, lng] positions.
	Points [][2]float64 `json:"points,omitempty"`
	// Polygons are closed shapes with a hover title.
	Polygons []Polygon `json:"polygons,omitempty"`
}

// Polygon is an overlay's polygon: an outer ring and holes, [lat, lng]
// vertices, drawn even-odd.
type Polygon struct {
	Rings [][][2]float64 `json:"rings"`
	Title string         `json:"title,omitempty"`
}

// Boundary returns the vertices of H3 cell c, [lat, lng] rounded to 1e-6
// degrees (about 0.1 m), or an error when c is no valid cell.
func Boundary(c h3.Cell) ([][2]float64, error) {
	if !c.IsValid() {
		return nil, fmt.Errorf("boundary: %s is not a valid H3 cell", c)
	}
	b := c.Boundary()
	out := make([][2]float64, len(b))
	for i, v := range b {
		out[i] = [2]float64{Round(v.Lat), Round(v.Lng)}
	}
	return out, nil
}

// Round rounds a coordinate to 1e-6 degrees, which keeps documents small
// without a visible change.
func Round(deg float64) float64 { return math.Round(deg*1e6) / 1e6 }

// ownerPalette colours owners: well-separated hues that read on white and
// under each other's shading; beyond it, colours are generated.
var ownerPalette = []string{
	"#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b",
	"#e377c2", "#17becf", "#bcbd22", "#7f7f7f", "#393b79", "#ad494a",
}

// OwnerColor returns the colour of the i-th owner (members sorted by id):
// the palette, then hues spaced by the golden angle.
func OwnerColor(i int) string {
	if i < 0 {
		return "#999999"
	}
	if i < len(ownerPalette) {
		return ownerPalette[i]
	}
	h := math.Mod(float64(i)*137.508, 360)
	r, g, b := hslToRGB(h, 0.55, 0.45)
	return fmt.Sprintf("#%02x%02x%02x", r, g, b)
}

// OwnerColors returns each id's colour, given ids sorted.
func OwnerColors(ids []string) map[string]string {
	out := make(map[string]string, len(ids))
	for i, id := range ids {
		out[id] = OwnerColor(i)
	}
	return out
}

func hslToRGB(h, s, l float64) (r, g, b uint8) {
	c := (1 - math.Abs(2*l-1)) * s
	x := c * (1 - math.Abs(math.Mod(h/60, 2)-1))
	m := l - c/2
	var rf, gf, bf float64
	switch {
	case h < 60:
		rf, gf = c, x
	case h < 120:
		rf, gf = x, c
	case h < 180:
		gf, bf = c, x
	case h < 240:
		gf, bf = x, c
	case h < 300:
		rf, bf = x, c
	default:
		rf, bf = c, x
	}
	to := func(v float64) uint8 { return uint8(math.Round((v + m) * 255)) }
	return to(rf), to(gf), to(bf)
}

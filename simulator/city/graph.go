package city

import (
	"errors"
	"fmt"
	"math"

	"github.com/geomatch/geomatch/internal/geo"
)

// Class is a road class; it sets a segment's default speed and how drivers
// without a destination prefer it.
type Class uint8

// Road classes, slowest first.
const (
	// Street is a local street.
	Street Class = iota
	// Arterial is an avenue or a main road.
	Arterial
	// Highway is an expressway.
	Highway
	numClasses
)

// String returns the class name used in files and reports.
func (c Class) String() string {
	switch c {
	case Street:
		return "street"
	case Arterial:
		return "arterial"
	case Highway:
		return "highway"
	}
	return fmt.Sprintf("class(%d)", uint8(c))
}

// ParseClass reads a class name, accepting the common OpenStreetMap
// highway tags as well (motorway and trunk are highways; primary,
// secondary and tertiary are arterials; anything else is a street).
func ParseClass(s string) Class {
	switch s {
	case "highway", "motorway", "motorway_link", "trunk", "trunk_link", "expressway":
		return Highway
	case "arterial", "avenue", "primary", "primary_link", "secondary", "secondary_link", "tertiary", "tertiary_link":
		return Arterial
	}
	return Street
}

// Speeds are the free-flow speeds per road class, in km/h.
type Speeds [numClasses]float64

// DefaultSpeeds are city speeds: 20 km/h on streets, 32 on arterials, 60
// on highways (averages with lights and traffic, not limits).
func DefaultSpeeds() Speeds { return Speeds{20, 32, 60} }

// NodeID identifies an intersection of a Graph.
type NodeID int32

// EdgeID identifies a directed road segment of a Graph.
type EdgeID int32

// NoEdge is the Twin of a one-way segment.
const NoEdge EdgeID = -1

// Node is an intersection.
type Node struct {
	// X and Y are meters east and north of the frame's origin.
	X, Y float64
	// Pos is the node's position.
	Pos geo.LatLng
	// Out lists the segments leaving the node.
	Out []EdgeID
}

// Edge is a directed road segment.
type Edge struct {
	From, To NodeID
	Class    Class
	// LengthM is the segment's length in meters (> 0).
	LengthM float64
	// SpeedMS is the segment's speed in meters per second (> 0).
	SpeedMS float64
	// Twin is the segment in the opposite direction, or NoEdge.
	Twin EdgeID
}

// Seconds is the time to drive the whole segment.
func (e Edge) Seconds() float64 { return e.LengthM / e.SpeedMS }

// Graph is a street network. Build one with a Builder, Grid or
// LoadGeoJSON; it is immutable afterwards and safe for concurrent reads.
type Graph struct {
	// Name names the city.
	Name string
	// Frame places the network on the globe.
	Frame Frame
	// Nodes are the intersections, Edges the directed segments.
	Nodes []Node
	Edges []Edge
	// MinX, MinY, MaxX, MaxY bound the nodes, in frame meters.
	MinX, MinY, MaxX, MaxY float64

	maxSpeed float64
	index    bucketIndex
}

// MaxSpeedMS is the fastest segment's speed (A*'s admissible heuristic).
func (g *Graph) MaxSpeedMS() float64 { return g.maxSpeed }

// Builder collects nodes and roads and builds a Graph.
type Builder struct {
	name  string
	frame Frame
	nodes []Node
	edges []Edge
}

// NewBuilder starts a graph named name in frame f.
func NewBuilder(name string, f Frame) *Builder { return &Builder{name: name, frame: f} }

// AddNode adds an intersection at x, y meters and returns its id.
func (b *Builder) AddNode(x, y float64) NodeID {
	b.nodes = append(b.nodes, Node{X: x, Y: y, Pos: b.frame.LatLng(x, y)})
	return NodeID(len(b.nodes) - 1)
}

// AddRoad adds a segment from a to b (and its twin from b to a unless
// oneWay) of class c at speedKmh. Its length is the straight distance
// between the nodes; zero-length roads and self loops are ignored.
func (b *Builder) AddRoad(from, to NodeID, c Class, speedKmh float64, oneWay bool) error {
	if int(from) >= len(b.nodes) || int(to) >= len(b.nodes) || from < 0 || to < 0 {
		return fmt.Errorf("road %d-%d: no such node", from, to)
	}
	if !(speedKmh > 0) || math.IsInf(speedKmh, 0) {
		return fmt.Errorf("road %d-%d: speed %v km/h, want > 0", from, to, speedKmh)
	}
	na, nb := b.nodes[from], b.nodes[to]
	l := math.Hypot(nb.X-na.X, nb.Y-na.Y)
	if from == to || l < 0.01 {
		return nil
	}
	ms := speedKmh / 3.6
	id := EdgeID(len(b.edges))
	b.edges = append(b.edges, Edge{From: from, To: to, Class: c, LengthM: l, SpeedMS: ms, Twin: NoEdge})
	if !oneWay {
		b.edges = append(b.edges, Edge{From: to, To: from, Class: c, LengthM: l, SpeedMS: ms, Twin: id})
		b.edges[id].Twin = id + 1
	}
	return nil
}

// Build returns the graph of the largest strongly connected part of what
// was added (drivers could get stuck anywhere else) and how many nodes it
// dropped. It fails when fewer than two nodes remain.
func (b *Builder) Build() (*Graph, int, error) {
	keep := largestSCC(len(b.nodes), b.edges)
	remap := make([]NodeID, len(b.nodes))
	g := &Graph{Name: b.name, Frame: b.frame}
	for i, n := range b.nodes {
		remap[i] = -1
		if keep[i] {
			remap[i] = NodeID(len(g.Nodes))
			g.Nodes = append(g.Nodes, Node{X: n.X, Y: n.Y, Pos: n.Pos})
		}
	}
	if len(g.Nodes) < 2 {
		return nil, 0, errors.New("city: the road network has fewer than two connected intersections")
	}
	edgeMap := make([]EdgeID, len(b.edges))
	for i, e := range b.edges {
		edgeMap[i] = NoEdge
		if keep[e.From] && keep[e.To] {
			edgeMap[i] = EdgeID(len(g.Edges))
			e.From, e.To = remap[e.From], remap[e.To]
			g.Edges = append(g.Edges, e)
		}
	}
	for i := range g.Edges {
		e := &g.Edges[i]
		if e.Twin != NoEdge {
			e.Twin = edgeMap[e.Twin]
		}
		g.Nodes[e.From].Out = append(g.Nodes[e.From].Out, EdgeID(i))
		g.maxSpeed = max(g.maxSpeed, e.SpeedMS)
	}
	g.MinX, g.MinY, g.MaxX, g.MaxY = math.Inf(1), math.Inf(1), math.Inf(-1), math.Inf(-1)
	for _, n := range g.Nodes {
		g.MinX, g.MinY = min(g.MinX, n.X), min(g.MinY, n.Y)
		g.MaxX, g.MaxY = max(g.MaxX, n.X), max(g.MaxY, n.Y)
	}
	g.index = newBucketIndex(g.Nodes)
	return g, len(b.nodes) - len(g.Nodes), nil
}

// largestSCC marks the nodes of the largest strongly connected component
// (Kosaraju, iterative so a long road file cannot overflow the stack).
func largestSCC(n int, edges []Edge) []bool {
	out := make([][]int32, n)
	in := make([][]int32, n)
	for _, e := range edges {
		out[e.From] = append(out[e.From], int32(e.To))
		in[e.To] = append(in[e.To], int32(e.From))
	}
	seen := make([]bool, n)
	order := make([]int32, 0, n)
	type frame struct{ v, i int32 }
	for s := 0; s < n; s++ {
		if seen[s] {
			continue
		}
		seen[s] = true
		stack := []frame{{int32(s), 0}}
		for len(stack) > 0 {
			top := &stack[len(stack)-1]
			if int(top.i) < len(out[top.v]) {
				w := out[top.v][top.i]
				top.i++
				if !seen[w] {
					seen[w] = true
					stack = append(stack, frame{w, 0})
				}
				continue
			}
			order = append(order, top.v)
			stack = stack[:len(stack)-1]
		}
	}
	comp := make([]int32, n)
	for i := range comp {
		comp[i] = -1
	}
	var sizes []int
	for k := len(order) - 1; k >= 0; k-- {
		s := order[k]
		if comp[s] >= 0 {
			continue
		}
		c := int32(len(sizes))
		size := 0
		comp[s] = c
		stack := []int32{s}
		for len(stack) > 0 {
			v := stack[len(stack)-1]
			stack = stack[:len(stack)-1]
			size++
			for _, w := range in[v] {
				if comp[w] < 0 {
					comp[w] = c
					stack = append(stack, w)
				}
			}
		}
		sizes = append(sizes, size)
	}
	best := 0
	for c, s := range sizes {
		if s > sizes[best] {
			best = c
		}
	}
	keep := make([]bool, n)
	for v := range keep {
		keep[v] = len(sizes) > 0 && comp[v] == int32(best)
	}
	return keep
}

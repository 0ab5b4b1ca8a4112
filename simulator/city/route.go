package city

import (
	"container/heap"
	"math"

	"github.com/geomatch/geomatch/internal/geo"
)

// Loc is a point on the network: Offset meters along Edge from its From
// node, in [0, LengthM].
type Loc struct {
	Edge   EdgeID
	Offset float64
}

// XY returns where l lies, in frame meters.
func (g *Graph) XY(l Loc) (x, y float64) {
	e := &g.Edges[l.Edge]
	a, b := &g.Nodes[e.From], &g.Nodes[e.To]
	f := 0.0
	if e.LengthM > 0 {
		f = min(max(l.Offset/e.LengthM, 0), 1)
	}
	return a.X + f*(b.X-a.X), a.Y + f*(b.Y-a.Y)
}

// LatLng returns the position of l.
func (g *Graph) LatLng(l Loc) geo.LatLng { return g.Frame.LatLng(g.XY(l)) }

// At returns a location at node n: the start of its first outgoing
// segment (every node of a built graph has one).
func (g *Graph) At(n NodeID) Loc { return Loc{Edge: g.Nodes[n].Out[0]} }

// Route is a drive over the network: from Start, to the end of
// Edges[0] (which is Start.Edge), then along the rest of Edges; it ends at
// the To node of the last edge. A route with no edges stays at Start.
type Route struct {
	Start Loc
	Edges []EdgeID
	// Seconds and Meters are the drive's time at the segments' speeds and
	// its length.
	Seconds, Meters float64
}

// End returns where the route ends.
func (r Route) End(g *Graph) Loc {
	if len(r.Edges) == 0 {
		return r.Start
	}
	last := r.Edges[len(r.Edges)-1]
	return Loc{Edge: last, Offset: g.Edges[last].LengthM}
}

// Route returns the fastest drive from `from` to node `to`. The driver may
// go on along its segment or turn around on it (onto the twin segment,
// where there is one). ok is false when `to` cannot be reached.
func (g *Graph) Route(from Loc, to NodeID) (r Route, ok bool) {
	e := &g.Edges[from.Edge]
	off := min(max(from.Offset, 0), e.LengthM)
	// Already there?
	if (e.To == to && off >= e.LengthM) || (e.From == to && off <= 0) {
		return Route{Start: Loc{from.Edge, off}}, true
	}
	n := len(g.Nodes)
	dist := make([]float64, n)
	prev := make([]EdgeID, n)
	for i := range dist {
		dist[i] = math.Inf(1)
		prev[i] = NoEdge
	}
	tx, ty := g.Nodes[to].X, g.Nodes[to].Y
	h := func(v NodeID) float64 {
		return math.Hypot(g.Nodes[v].X-tx, g.Nodes[v].Y-ty) / g.maxSpeed
	}
	pq := &nodeQueue{}
	// The two ways off the current segment; prev of a source node is the
	// segment that reaches it (the current one or its twin).
	push := func(v NodeID, d float64, via EdgeID) {
		if d < dist[v] {
			dist[v] = d
			prev[v] = via
			heap.Push(pq, queued{v, d + h(v)})
		}
	}
	push(e.To, (e.LengthM-off)/e.SpeedMS, from.Edge)
	if e.Twin != NoEdge {
		push(e.From, off/e.SpeedMS, e.Twin)
	}
	done := make([]bool, n)
	for pq.Len() > 0 {
		q := heap.Pop(pq).(queued)
		v := q.node
		if done[v] {
			continue
		}
		done[v] = true
		if v == to {
			break
		}
		for _, out := range g.Nodes[v].Out {
			oe := &g.Edges[out]
			if !done[oe.To] {
				push(oe.To, dist[v]+oe.Seconds(), out)
			}
		}
	}
	if math.IsInf(dist[to], 1) {
		return Route{}, false
	}
	// Walk back from `to` to the source segment. The two source segments
	// reach only the source nodes, whose prev is always their source
	// segment (any other way there is longer), so the walk ends at the
	// first source segment it meets.
	var rev []EdgeID
	for v := to; ; {
		via := prev[v]
		rev = append(rev, via)
		if via == from.Edge || via == e.Twin {
			break
		}
		v = g.Edges[via].From
	}
	edges := make([]EdgeID, len(rev))
	for i, id := range rev {
		edges[len(rev)-1-i] = id
	}
	start := Loc{Edge: edges[0], Offset: off}
	if edges[0] != from.Edge {
		start.Offset = e.LengthM - off // turned around onto the twin
	}
	r = Route{Start: start, Edges: edges, Seconds: dist[to]}
	r.Meters = g.Edges[edges[0]].LengthM - start.Offset
	for _, id := range edges[1:] {
		r.Meters += g.Edges[id].LengthM
	}
	return r, true
}

type queued struct {
	node NodeID
	key  float64
}

// nodeQueue is a binary min-heap of nodes by key.
type nodeQueue []queued

func (q nodeQueue) Len() int           { return len(q) }
func (q nodeQueue) Less(i, j int) bool { return q[i].key < q[j].key }
func (q nodeQueue) Swap(i, j int)      { q[i], q[j] = q[j], q[i] }
func (q *nodeQueue) Push(x any)        { *q = append(*q, x.(queued)) }
func (q *nodeQueue) Pop() any {
	old := *q
	x := old[len(old)-1]
	*q = old[:len(old)-1]
	return x
}

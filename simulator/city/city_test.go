package city

import (
	"container/heap"
	"math"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/geomatch/geomatch/internal/geo"
)

func TestWrapLng(t *testing.T) {
	for _, tc := range []struct{ in, want float64 }{
		{0, 0}, {179.5, 179.5}, {180, -180}, {-180, -180}, {181, -179}, {-181, 179}, {540, -180}, {359, -1}, {-360, 0},
	} {
		if got := WrapLng(tc.in); math.Abs(got-tc.want) > 1e-9 {
			t.Errorf("WrapLng(%v) = %v, want %v", tc.in, got, tc.want)
		}
	}
}

func TestFrameRoundTripAcrossTheGlobe(t *testing.T) {
	for _, tc := range []struct {
		name   string
		origin geo.LatLng
	}{
		{"new york", geo.LatLng{Lat: 40.78, Lng: -73.97}},
		{"antimeridian", geo.LatLng{Lat: -16.8, Lng: 180}},
		{"far north", geo.LatLng{Lat: 78.22, Lng: 15.63}},
		{"far south", geo.LatLng{Lat: -77.85, Lng: 166.67}},
		{"equator and prime meridian", geo.LatLng{}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := NewFrame(tc.origin)
			rng := rand.New(rand.NewPCG(1, 2))
			for i := 0; i < 1000; i++ {
				x, y := (rng.Float64()-0.5)*40000, (rng.Float64()-0.5)*40000
				p := f.LatLng(x, y)
				if err := p.Validate(); err != nil {
					t.Fatalf("LatLng(%v, %v) = %v: %v", x, y, p, err)
				}
				x2, y2 := f.XY(p)
				if math.Abs(x2-x) > 1e-6 || math.Abs(y2-y) > 1e-6 {
					t.Fatalf("round trip of (%v, %v) gave (%v, %v)", x, y, x2, y2)
				}
				// Planar distance from the origin is close to the great circle.
				gc := geo.DistanceM(tc.origin, p)
				if pl := math.Hypot(x, y); math.Abs(pl-gc) > 0.01*gc+1 {
					t.Fatalf("(%v, %v): planar %v m, great circle %v m", x, y, pl, gc)
				}
			}
		})
	}
}

func TestPresetsBuild(t *testing.T) {
	for _, p := range Presets() {
		t.Run(p.Name, func(t *testing.T) {
			g, err := Grid(p.Grid)
			if err != nil {
				t.Fatal(err)
			}
			if len(g.Nodes) < 100 {
				t.Fatalf("%d nodes", len(g.Nodes))
			}
			var classes [numClasses]int
			for i, e := range g.Edges {
				classes[e.Class]++
				if e.Twin == NoEdge || g.Edges[e.Twin].Twin != EdgeID(i) {
					t.Fatalf("grid segment %d has twin %d", i, e.Twin)
				}
			}
			for c, n := range classes {
				if n == 0 {
					t.Errorf("no %s segments", Class(c))
				}
			}
			for _, pl := range p.Places {
				x, y := g.Frame.XY(pl.Pos)
				n := g.Nodes[g.Nearest(x, y)]
				if d := math.Hypot(n.X-x, n.Y-y); d > 1500 {
					t.Errorf("place %s is %.0f m from the nearest intersection", pl.Name, d)
				}
			}
		})
	}
}

func TestGridAcrossTheAntimeridian(t *testing.T) {
	p, _ := PresetByName("taveuni")
	g, err := Grid(p.Grid)
	if err != nil {
		t.Fatal(err)
	}
	east, west := 0, 0
	for _, n := range g.Nodes {
		switch {
		case n.Pos.Lng > 179:
			east++
		case n.Pos.Lng < -179:
			west++
		default:
			t.Fatalf("node at %v is far from the antimeridian", n.Pos)
		}
	}
	if east == 0 || west == 0 {
		t.Fatalf("%d nodes east and %d west of 180°, want both", east, west)
	}
	// Segment lengths are the planar ones: a block, never the width of the world.
	for _, e := range g.Edges {
		if gc := geo.DistanceM(g.Nodes[e.From].Pos, g.Nodes[e.To].Pos); math.Abs(gc-e.LengthM) > 1 {
			t.Fatalf("segment of %v m spans %v m on the globe", e.LengthM, gc)
		}
	}
}

func TestGridRejectsBadSpecs(t *testing.T) {
	base := GridSpec{Name: "t", Center: geo.LatLng{Lat: 10, Lng: 10}, WidthM: 1000, LengthM: 1000, AvenueSpacingM: 100, StreetSpacingM: 100}
	for _, tc := range []struct {
		name string
		edit func(*GridSpec)
		want string
	}{
		{"near the pole", func(s *GridSpec) { s.Center.Lat = 89 }, "pole"},
		{"bad center", func(s *GridSpec) { s.Center.Lng = 200 }, "center"},
		{"no extent", func(s *GridSpec) { s.WidthM = 0 }, "extent"},
		{"tiny blocks", func(s *GridSpec) { s.StreetSpacingM = 1 }, "block"},
		{"jitter", func(s *GridSpec) { s.SpeedJitter = 1 }, "jitter"},
		{"too many nodes", func(s *GridSpec) { s.WidthM, s.LengthM, s.AvenueSpacingM, s.StreetSpacingM = 200000, 200000, 10, 10 }, "intersections"},
		{"negative speed", func(s *GridSpec) { s.Speeds = Speeds{-1, 1, 1} }, "speed"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := base
			tc.edit(&s)
			if _, err := Grid(s); err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want one about %q", err, tc.want)
			}
		})
	}
}

// randomGraph is a jittered grid with some one-way streets.
func randomGraph(t *testing.T, seed uint64) *Graph {
	t.Helper()
	rng := rand.New(rand.NewPCG(seed, 9))
	b := NewBuilder("random", NewFrame(geo.LatLng{Lat: 40, Lng: 179.99}))
	nx, ny := 3+rng.IntN(8), 3+rng.IntN(8)
	for j := 0; j < ny; j++ {
		for i := 0; i < nx; i++ {
			b.AddNode(float64(i)*100+rng.Float64()*40, float64(j)*100+rng.Float64()*40)
		}
	}
	for j := 0; j < ny; j++ {
		for i := 0; i < nx; i++ {
			id := NodeID(j*nx + i)
			if i+1 < nx {
				if err := b.AddRoad(id, id+1, Class(rng.IntN(3)), 10+rng.Float64()*50, rng.IntN(5) == 0); err != nil {
					t.Fatal(err)
				}
			}
			if j+1 < ny {
				if err := b.AddRoad(id, id+NodeID(nx), Class(rng.IntN(3)), 10+rng.Float64()*50, rng.IntN(5) == 0); err != nil {
					t.Fatal(err)
				}
			}
		}
	}
	g, _, err := b.Build()
	if err != nil {
		t.Fatal(err)
	}
	return g
}

// bruteRouteSeconds is plain Dijkstra over both ways off the segment.
func bruteRouteSeconds(g *Graph, from Loc, to NodeID) float64 {
	e := g.Edges[from.Edge]
	if (e.To == to && from.Offset >= e.LengthM) || (e.From == to && from.Offset <= 0) {
		return 0
	}
	dist := make([]float64, len(g.Nodes))
	for i := range dist {
		dist[i] = math.Inf(1)
	}
	pq := &nodeQueue{}
	relax := func(v NodeID, d float64) {
		if d < dist[v] {
			dist[v] = d
			heap.Push(pq, queued{v, d})
		}
	}
	relax(e.To, (e.LengthM-from.Offset)/e.SpeedMS)
	if e.Twin != NoEdge {
		relax(e.From, from.Offset/e.SpeedMS)
	}
	for pq.Len() > 0 {
		q := heap.Pop(pq).(queued)
		if q.key > dist[q.node] {
			continue
		}
		for _, o := range g.Nodes[q.node].Out {
			relax(g.Edges[o].To, q.key+g.Edges[o].Seconds())
		}
	}
	return dist[to]
}

func TestRouteIsFastestAndValid(t *testing.T) {
	for seed := uint64(0); seed < 40; seed++ {
		g := randomGraph(t, seed)
		rng := rand.New(rand.NewPCG(seed, 1))
		for k := 0; k < 50; k++ {
			e := EdgeID(rng.IntN(len(g.Edges)))
			from := Loc{Edge: e, Offset: rng.Float64() * g.Edges[e].LengthM}
			if k%10 == 0 {
				from.Offset = 0
			}
			to := NodeID(rng.IntN(len(g.Nodes)))
			r, ok := g.Route(from, to)
			want := bruteRouteSeconds(g, from, to)
			if !ok {
				t.Fatalf("seed %d: no route from %+v to %d (brute force: %v s)", seed, from, to, want)
			}
			if math.Abs(r.Seconds-want) > 1e-6 {
				t.Fatalf("seed %d: route takes %v s, fastest %v s", seed, r.Seconds, want)
			}
			checkRoute(t, g, from, to, r)
		}
	}
}

func checkRoute(t *testing.T, g *Graph, from Loc, to NodeID, r Route) {
	t.Helper()
	if len(r.Edges) == 0 {
		if x, y := g.XY(from); math.Hypot(x-g.Nodes[to].X, y-g.Nodes[to].Y) > 1e-6 {
			t.Fatalf("empty route from %+v, which is not at %d", from, to)
		}
		return
	}
	e0 := g.Edges[from.Edge]
	switch r.Edges[0] {
	case from.Edge:
		if math.Abs(r.Start.Offset-from.Offset) > 1e-9 {
			t.Fatalf("start offset %v, want %v", r.Start.Offset, from.Offset)
		}
	case e0.Twin:
		if math.Abs(r.Start.Offset-(e0.LengthM-from.Offset)) > 1e-9 {
			t.Fatalf("U-turn start offset %v, want %v", r.Start.Offset, e0.LengthM-from.Offset)
		}
	default:
		t.Fatalf("route starts on %d, not on %d or its twin", r.Edges[0], from.Edge)
	}
	secs := (g.Edges[r.Edges[0]].LengthM - r.Start.Offset) / g.Edges[r.Edges[0]].SpeedMS
	for i := 1; i < len(r.Edges); i++ {
		a, b := g.Edges[r.Edges[i-1]], g.Edges[r.Edges[i]]
		if a.To != b.From {
			t.Fatalf("segments %d and %d of the route do not meet", i-1, i)
		}
		secs += b.Seconds()
	}
	if math.Abs(secs-r.Seconds) > 1e-6 {
		t.Fatalf("route says %v s, its segments take %v s", r.Seconds, secs)
	}
	if g.Edges[r.Edges[len(r.Edges)-1]].To != to {
		t.Fatalf("route ends at %d, want %d", g.Edges[r.Edges[len(r.Edges)-1]].To, to)
	}
}

func TestNearestMatchesBruteForce(t *testing.T) {
	for seed := uint64(0); seed < 20; seed++ {
		g := randomGraph(t, seed)
		rng := rand.New(rand.NewPCG(seed, 3))
		for k := 0; k < 200; k++ {
			x := g.MinX - 500 + rng.Float64()*(g.MaxX-g.MinX+1000)
			y := g.MinY - 500 + rng.Float64()*(g.MaxY-g.MinY+1000)
			got := g.Nearest(x, y)
			best, bestD := NodeID(-1), math.Inf(1)
			for i, n := range g.Nodes {
				if d := math.Hypot(n.X-x, n.Y-y); d < bestD {
					best, bestD = NodeID(i), d
				}
			}
			if gd := math.Hypot(g.Nodes[got].X-x, g.Nodes[got].Y-y); gd != bestD {
				t.Fatalf("Nearest(%v, %v) = %d at %v m, brute force %d at %v m", x, y, got, gd, best, bestD)
			}
		}
	}
}

func TestMoverDrivesARouteInItsTime(t *testing.T) {
	for seed := uint64(0); seed < 20; seed++ {
		g := randomGraph(t, seed)
		rng := rand.New(rand.NewPCG(seed, 4))
		for k := 0; k < 20; k++ {
			e := EdgeID(rng.IntN(len(g.Edges)))
			from := Loc{Edge: e, Offset: rng.Float64() * g.Edges[e].LengthM}
			to := NodeID(rng.IntN(len(g.Nodes)))
			r, ok := g.Route(from, to)
			if !ok {
				t.Fatal("no route")
			}
			m := NewMover(g, from)
			m.Follow(r)
			elapsed := 0.0
			for !m.Advance(0, rng) {
				dt := rng.Float64() * 7
				if m.Advance(dt, rng) {
					// Arrived within this step: it must have been due.
					if elapsed+dt < r.Seconds-1e-6 {
						t.Fatalf("arrived after %v s of a %v s route", elapsed+dt, r.Seconds)
					}
					break
				}
				elapsed += dt
				if elapsed > r.Seconds+1e-6 {
					t.Fatalf("still driving after %v s of a %v s route", elapsed, r.Seconds)
				}
			}
			x, y := g.XY(m.Loc())
			if d := math.Hypot(x-g.Nodes[to].X, y-g.Nodes[to].Y); d > 1e-6 {
				t.Fatalf("stopped %v m from the destination", d)
			}
			if !m.Advance(100, rng) {
				t.Fatal("an arrived vehicle moved on")
			}
		}
	}
}

func TestRoamingStaysOnTheRoadsAtItsSpeed(t *testing.T) {
	p, _ := PresetByName("longyearbyen")
	spec := p.Grid
	spec.SpeedJitter = 0
	spec.Speeds = Speeds{36, 36, 36} // 10 m/s everywhere
	g, err := Grid(spec)
	if err != nil {
		t.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(5, 5))
	m := NewMover(g, g.At(NodeID(len(g.Nodes)/2)))
	prev := m.Loc()
	for i := 0; i < 2000; i++ {
		dt := rng.Float64() * 10
		if m.Advance(dt, rng) {
			t.Fatal("a roaming vehicle arrived")
		}
		cur := m.Loc()
		px, py := g.XY(prev)
		cx, cy := g.XY(cur)
		// Straight-line displacement never exceeds the distance driven.
		if d := math.Hypot(cx-px, cy-py); d > 10*dt+1e-6 {
			t.Fatalf("moved %v m in %v s at 10 m/s", d, dt)
		}
		if cur.Offset < 0 || cur.Offset > g.Edges[cur.Edge].LengthM+1e-9 {
			t.Fatalf("offset %v outside segment of %v m", cur.Offset, g.Edges[cur.Edge].LengthM)
		}
		// On the same segment, the offset grows by exactly the distance driven.
		if cur.Edge == prev.Edge && math.Abs(cur.Offset-prev.Offset-10*dt) > 1e-6 {
			t.Fatalf("drove %v m in %v s on one segment", cur.Offset-prev.Offset, dt)
		}
		prev = cur
	}
}

func TestBuildKeepsTheLargestStronglyConnectedPart(t *testing.T) {
	b := NewBuilder("t", NewFrame(geo.LatLng{Lat: 1, Lng: 1}))
	a, c, d, dead := b.AddNode(0, 0), b.AddNode(100, 0), b.AddNode(100, 100), b.AddNode(500, 500)
	for _, r := range [][2]NodeID{{a, c}, {c, d}} {
		if err := b.AddRoad(r[0], r[1], Street, 30, false); err != nil {
			t.Fatal(err)
		}
	}
	if err := b.AddRoad(d, dead, Street, 30, true); err != nil { // a one-way dead end
		t.Fatal(err)
	}
	g, dropped, err := b.Build()
	if err != nil {
		t.Fatal(err)
	}
	if len(g.Nodes) != 3 || dropped != 1 || len(g.Edges) != 4 {
		t.Fatalf("%d nodes, %d edges, %d dropped; want 3, 4, 1", len(g.Nodes), len(g.Edges), dropped)
	}
	for i, e := range g.Edges {
		if e.Twin == NoEdge || g.Edges[e.Twin].Twin != EdgeID(i) {
			t.Fatalf("edge %d has twin %d", i, e.Twin)
		}
	}
	if err := b.AddRoad(a, c, Street, 0, false); err == nil {
		t.Fatal("a zero speed was accepted")
	}
	if err := b.AddRoad(a, 99, Street, 10, false); err == nil {
		t.Fatal("a road to a missing node was accepted")
	}
}

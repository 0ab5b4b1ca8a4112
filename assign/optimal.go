package assign

import (
	"cmp"
	"slices"
)

// Optimal returns a maximum-cardinality matching of minimum total cost over
// the candidate graph: first as many riders as possible get a driver, then
// the total cost of those pairs is minimal. Only the given edges may be
// used. The pairs are sorted by rider; riders and drivers left out of every
// pair are unmatched.
//
// It refuses (with ErrTooLarge or ErrInvalidEdge wrapped, see Validate)
// more than MaxSize riders or drivers and bad edges, and returns no pairs
// then.
//
// The graph is split into its connected components (a batch's requests and
// candidates form local clusters), and each component is solved by the
// Hungarian algorithm on its dense cost matrix. A pair that is not an edge gets a finite sentinel
// cost larger than any total of real costs, so the solver uses as few of
// them as possible (which maximises the cardinality); the pairs that use it
// are then dropped. Deterministic: the same problem gives the same pairs
// whatever the order of the edges; among equally good matchings the scan
// order (lowest index first) decides, which is not guaranteed to be the
// lexicographically smallest one.
//
// Cost: O(k³) time and O(k²) memory for the largest component of k riders
// and drivers (a dense 200×200 problem takes a few milliseconds); a few
// dozen allocations whatever the number of components, as the solver's
// buffers are reused from one to the next.
func Optimal(riders, drivers int, edges []Edge) ([]Pair, error) {
	if err := Validate(riders, drivers, edges); err != nil {
		return nil, err
	}
	if len(edges) == 0 {
		return nil, nil
	}
	g := components(riders, drivers, edges)
	pairs := make([]Pair, 0, min(riders, drivers))
	var s solver
	for _, c := range g.comps {
		pairs = g.solve(&s, c, pairs)
	}
	slices.SortFunc(pairs, func(a, b Pair) int { return cmp.Compare(a.Rider, b.Rider) })
	return pairs, nil
}

// component is a connected part of the candidate graph: its riders and
// drivers (ascending global indexes) and the indexes of its edges.
type component struct {
	riders, drivers []int
	edges           []int
}

// graph is the candidate graph split into its connected components.
type graph struct {
	riders int
	edges  []Edge
	comps  []component
	// local[v] is vertex v's position among its component's riders (v a
	// rider) or drivers (v = riders + driver).
	local []int
}

// components splits the graph into its connected components, leaving out
// riders and drivers without edges. 7 allocations whatever the graph.
func components(riders, drivers int, edges []Edge) graph {
	// Union-find over the vertexes: riders, then drivers.
	parent := make([]int, riders+drivers)
	for i := range parent {
		parent[i] = i
	}
	find := func(x int) int {
		for parent[x] != x {
			parent[x] = parent[parent[x]]
			x = parent[x]
		}
		return x
	}
	for _, e := range edges {
		a, b := find(e.Rider), find(riders+e.Driver)
		if a != b {
			parent[a] = b
		}
	}
	// Number the components in order of their first edge (compOf[root] is
	// the number + 1) and count their edges and members.
	compOf := make([]int, riders+drivers)
	var counts []struct{ edges, riders, drivers int }
	seen := make([]bool, riders+drivers)
	for _, e := range edges {
		root := find(e.Rider)
		if compOf[root] == 0 {
			counts = append(counts, struct{ edges, riders, drivers int }{})
			compOf[root] = len(counts)
		}
		c := &counts[compOf[root]-1]
		c.edges++
		if !seen[e.Rider] {
			seen[e.Rider] = true
			c.riders++
		}
		if !seen[riders+e.Driver] {
			seen[riders+e.Driver] = true
			c.drivers++
		}
	}
	// Carve every list out of two backing arrays.
	g := graph{riders: riders, edges: edges, comps: make([]component, len(counts)), local: parent}
	edgeIdx := make([]int, len(edges))
	members := make([]int, 0, riders+drivers)
	off := 0
	for k, n := range counts {
		c := &g.comps[k]
		c.edges = edgeIdx[off : off : off+n.edges]
		off += n.edges
		c.riders = members[len(members) : len(members) : len(members)+n.riders]
		members = members[:len(members)+n.riders]
		c.drivers = members[len(members) : len(members) : len(members)+n.drivers]
		members = members[:len(members)+n.drivers]
	}
	clear(seen)
	for i, e := range edges {
		c := &g.comps[compOf[find(e.Rider)]-1]
		c.edges = append(c.edges, i)
		if !seen[e.Rider] {
			seen[e.Rider] = true
			c.riders = append(c.riders, e.Rider)
		}
		if !seen[riders+e.Driver] {
			seen[riders+e.Driver] = true
			c.drivers = append(c.drivers, e.Driver)
		}
	}
	// parent is free now: it becomes local.
	for _, c := range g.comps {
		slices.Sort(c.riders)
		slices.Sort(c.drivers)
		for i, r := range c.riders {
			g.local[r] = i
		}
		for i, d := range c.drivers {
			g.local[riders+d] = i
		}
	}
	return g
}

// solve finds component c's optimal matching with the solver s and
// appends its pairs to pairs.
func (g graph) solve(s *solver, c component, pairs []Pair) []Pair {
	// Rows are the smaller side, as the solver needs n <= m.
	transposed := len(c.riders) > len(c.drivers)
	n, m := len(c.riders), len(c.drivers)
	if transposed {
		n, m = m, n
	}
	s.reset(n, m)
	// has marks the real edges; cost holds the cheapest edge of each pair.
	cost, has := s.cost, s.has
	var maxCost float64
	for _, i := range c.edges {
		e := g.edges[i]
		row, col := g.local[e.Rider], g.local[g.riders+e.Driver]
		if transposed {
			row, col = col, row
		}
		k := row*m + col
		if !has[k] || e.Cost < cost[k] {
			cost[k] = e.Cost
		}
		has[k] = true
		maxCost = max(maxCost, e.Cost)
	}
	// Any matching uses at most n real edges, so its real cost is at most
	// n*maxCost: one more sentinel pair always costs more than that.
	forbidden := (float64(n) + 1) * (maxCost + 1)
	for k := range cost {
		if !has[k] {
			cost[k] = forbidden
		}
	}
	for row, col := range s.solve(n, m) {
		k := row*m + col
		if !has[k] {
			continue
		}
		r, d := row, col
		if transposed {
			r, d = d, r
		}
		pairs = append(pairs, Pair{Rider: c.riders[r], Driver: c.drivers[d], Cost: cost[k]})
	}
	return pairs
}

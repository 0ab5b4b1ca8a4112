package assign

import (
	"math"
	"testing"
)

// bruteForce is the oracle: it tries every matching of the candidate graph
// (each rider unmatched or on a free driver it has an edge to) and returns
// the largest cardinality and, among matchings of that size, the smallest
// total cost. Fine up to about 8×8.
func bruteForce(riders, drivers int, edges []Edge) (size int, total float64) {
	cost := cheapestEdges(riders, drivers, edges)
	taken := make([]bool, drivers)
	best, bestTotal := -1, math.Inf(1)
	var walk func(r, n int, sum float64)
	walk = func(r, n int, sum float64) {
		if r == riders {
			if n > best || (n == best && sum < bestTotal) {
				best, bestTotal = n, sum
			}
			return
		}
		walk(r+1, n, sum)
		for d := range drivers {
			if c := cost[r][d]; !taken[d] && !math.IsNaN(c) {
				taken[d] = true
				walk(r+1, n+1, sum+c)
				taken[d] = false
			}
		}
	}
	walk(0, 0, 0)
	return best, bestTotal
}

// cheapestEdges returns the cheapest edge cost per (rider, driver), NaN
// where there is none.
func cheapestEdges(riders, drivers int, edges []Edge) [][]float64 {
	cost := make([][]float64, riders)
	for r := range cost {
		cost[r] = make([]float64, drivers)
		for d := range cost[r] {
			cost[r][d] = math.NaN()
		}
	}
	for _, e := range edges {
		if c := cost[e.Rider][e.Driver]; math.IsNaN(c) || e.Cost < c {
			cost[e.Rider][e.Driver] = e.Cost
		}
	}
	return cost
}

// checkMatching checks that pairs is a matching of the candidate graph:
// sorted by rider, no rider or driver twice, every pair the cheapest edge
// of its rider and driver.
func checkMatching(tb testing.TB, riders, drivers int, edges []Edge, pairs []Pair) {
	tb.Helper()
	cost := cheapestEdges(riders, drivers, edges)
	usedDriver := make(map[int]bool)
	for i, p := range pairs {
		if i > 0 && pairs[i-1].Rider >= p.Rider {
			tb.Fatalf("pairs not sorted by rider, or rider twice: %v", pairs)
		}
		if p.Rider < 0 || p.Rider >= riders || p.Driver < 0 || p.Driver >= drivers {
			tb.Fatalf("pair %v out of range", p)
		}
		if usedDriver[p.Driver] {
			tb.Fatalf("driver %d matched twice: %v", p.Driver, pairs)
		}
		usedDriver[p.Driver] = true
		if c := cost[p.Rider][p.Driver]; c != p.Cost {
			tb.Fatalf("pair %v: the edge's cost is %v", p, c)
		}
	}
}

// checkAgainstBruteForce checks Optimal and Greedy on one problem: both
// give matchings; Optimal's has the oracle's size and total (within 1e-9);
// Greedy is never better.
func checkAgainstBruteForce(tb testing.TB, riders, drivers int, edges []Edge) {
	tb.Helper()
	pairs, err := Optimal(riders, drivers, edges)
	if err != nil {
		tb.Fatalf("Optimal: %v", err)
	}
	checkMatching(tb, riders, drivers, edges, pairs)
	size, total := bruteForce(riders, drivers, edges)
	if len(pairs) != size || math.Abs(Total(pairs)-total) > 1e-9 {
		tb.Fatalf("%d riders, %d drivers, edges %v:\nOptimal gives %d pairs at %v: %v\nbrute force: %d pairs at %v",
			riders, drivers, edges, len(pairs), Total(pairs), pairs, size, total)
	}
	greedy := Greedy(riders, drivers, edges)
	checkMatching(tb, riders, drivers, edges, greedy)
	if len(greedy) > size || (len(greedy) == size && Total(greedy) < total-1e-9) {
		tb.Fatalf("Greedy beats the optimum: %v (%v) vs %d at %v", greedy, Total(greedy), size, total)
	}
}

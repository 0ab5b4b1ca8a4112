package assign

import (
	"math"
	"math/rand/v2"
	"testing"
)

// randomProblem makes a random candidate graph of up to maxN riders and
// drivers: each pair is an edge with a random density, costs either small
// integers (many ties) or reals scaled by scale, now and then a pair twice.
func randomProblem(r *rand.Rand, maxN int, scale float64) (riders, drivers int, edges []Edge) {
	riders, drivers = r.IntN(maxN+1), r.IntN(maxN+1)
	density := r.Float64()
	ties := r.IntN(3) == 0
	for i := range riders {
		for j := range drivers {
			if r.Float64() >= density {
				continue
			}
			c := r.Float64() * scale
			if ties {
				c = float64(r.IntN(4))
			}
			edges = append(edges, Edge{i, j, c})
			if r.IntN(20) == 0 {
				edges = append(edges, Edge{i, j, c * r.Float64()})
			}
		}
	}
	r.Shuffle(len(edges), func(a, b int) { edges[a], edges[b] = edges[b], edges[a] })
	return riders, drivers, edges
}

// TestOptimalMatchesBruteForce checks Optimal against the exhaustive oracle
// on random graphs up to 7×7, square and rectangular, sparse and dense,
// with ties, and with costs from meters to thousands of kilometers (where
// the sentinel for missing edges is largest).
func TestOptimalMatchesBruteForce(t *testing.T) {
	r := rand.New(rand.NewPCG(5, 6))
	for _, scale := range []float64{1, 5000, 1e7} {
		for range 700 {
			riders, drivers, edges := randomProblem(r, 7, scale)
			checkAgainstBruteForce(t, riders, drivers, edges)
		}
	}
}

// TestOptimalMatchesMinCostFlow checks Optimal on larger graphs (up to
// 60×60, several clusters) against an independent solver: min-cost
// maximum flow by successive shortest paths.
func TestOptimalMatchesMinCostFlow(t *testing.T) {
	r := rand.New(rand.NewPCG(7, 8))
	for range 60 {
		riders, drivers := 1+r.IntN(60), 1+r.IntN(60)
		var edges []Edge
		k := 1 + r.IntN(6) // candidates per rider, as dispatch bounds them
		for i := range riders {
			for range k {
				edges = append(edges, Edge{i, r.IntN(drivers), math.Round(r.Float64()*5000*100) / 100})
			}
		}
		pairs, err := Optimal(riders, drivers, edges)
		if err != nil {
			t.Fatal(err)
		}
		checkMatching(t, riders, drivers, edges, pairs)
		size, total := minCostFlow(riders, drivers, edges)
		if len(pairs) != size || math.Abs(Total(pairs)-total) > 1e-6 {
			t.Fatalf("%d×%d: Optimal %d pairs at %v, min-cost flow %d at %v", riders, drivers, len(pairs), Total(pairs), size, total)
		}
	}
}

// minCostFlow is the second oracle: it grows a matching one augmenting path
// at a time, always the cheapest (Bellman-Ford over the residual graph),
// until none is left; that gives the maximum cardinality at minimum cost.
func minCostFlow(riders, drivers int, edges []Edge) (size int, total float64) {
	cost := cheapestEdges(riders, drivers, edges)
	driverOf := make([]int, riders)
	riderOf := make([]int, drivers)
	for i := range driverOf {
		driverOf[i] = -1
	}
	for j := range riderOf {
		riderOf[j] = -1
	}
	for {
		// dist[r]: cheapest path cost from a free rider to rider r through
		// alternating edges; relaxed until stable.
		dist := make([]float64, riders)
		// from[r] is the driver r gives up on the path (-1 at the start)
		// and via[r] the rider who takes it.
		from, via := make([]int, riders), make([]int, riders)
		for i := range dist {
			dist[i] = math.Inf(1)
			if driverOf[i] < 0 {
				dist[i] = 0
			}
			from[i], via[i] = -1, -1
		}
		bestEnd, bestCost, bestRider := -1, math.Inf(1), -1
		for changed := true; changed; {
			changed = false
			for i := range riders {
				if math.IsInf(dist[i], 1) {
					continue
				}
				for j := range drivers {
					c := cost[i][j]
					if math.IsNaN(c) || driverOf[i] == j {
						continue
					}
					d := dist[i] + c
					if k := riderOf[j]; k >= 0 {
						d -= cost[k][j]
						if d < dist[k]-1e-12 {
							dist[k], from[k], via[k] = d, j, i
							changed = true
						}
					}
				}
			}
		}
		for i := range riders {
			for j := range drivers {
				if c := cost[i][j]; !math.IsNaN(c) && riderOf[j] < 0 && !math.IsInf(dist[i], 1) && dist[i]+c < bestCost {
					bestEnd, bestCost, bestRider = j, dist[i]+c, i
				}
			}
		}
		if bestEnd < 0 {
			break
		}
		// Flip the path: the last rider takes the free driver, and each
		// rider on the way takes the driver that led to the next one.
		for i, j := bestRider, bestEnd; ; {
			gives, next := from[i], via[i]
			driverOf[i], riderOf[j] = j, i
			if gives < 0 {
				break
			}
			i, j = next, gives
		}
	}
	for i, j := range driverOf {
		if j >= 0 {
			size++
			total += cost[i][j]
		}
	}
	return size, total
}

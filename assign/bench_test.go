package assign

import (
	"cmp"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"testing"
)

// cityProblem places riders and drivers uniformly in a 10 km square and
// makes each rider's edges to its k nearest drivers (all drivers when k is
// 0), costing the straight-line distance in meters.
func cityProblem(riders, drivers, k int) []Edge {
	r := rand.New(rand.NewPCG(9, 10))
	type pt struct{ x, y float64 }
	place := func(n int) []pt {
		ps := make([]pt, n)
		for i := range ps {
			ps[i] = pt{r.Float64() * 10000, r.Float64() * 10000}
		}
		return ps
	}
	rs, ds := place(riders), place(drivers)
	var edges []Edge
	for i, p := range rs {
		row := make([]Edge, drivers)
		for j, q := range ds {
			row[j] = Edge{i, j, math.Hypot(p.x-q.x, p.y-q.y)}
		}
		if k > 0 && k < drivers {
			slices.SortFunc(row, func(a, b Edge) int { return cmp.Compare(a.Cost, b.Cost) })
			row = row[:k]
		}
		edges = append(edges, row...)
	}
	return edges
}

// BenchmarkOptimal solves dense problems (every rider a candidate of every
// driver: one component, the worst case) and a sparse batch like dispatch
// makes (8 nearest candidates per rider).
func BenchmarkOptimal(b *testing.B) {
	for _, c := range []struct{ n, k int }{{50, 0}, {200, 0}, {1000, 8}} {
		name := fmt.Sprintf("dense-%dx%d", c.n, c.n)
		if c.k > 0 {
			name = fmt.Sprintf("sparse-%dx%d-k%d", c.n, c.n, c.k)
		}
		edges := cityProblem(c.n, c.n, c.k)
		b.Run(name, func(b *testing.B) {
			b.ReportAllocs()
			var pairs []Pair
			for b.Loop() {
				var err error
				if pairs, err = Optimal(c.n, c.n, edges); err != nil {
					b.Fatal(err)
				}
			}
			greedy := Greedy(c.n, c.n, edges)
			b.ReportMetric(float64(len(pairs)), "pairs")
			b.ReportMetric(Total(pairs)/float64(len(pairs)), "m/pair")
			b.ReportMetric(float64(len(greedy)), "greedy-pairs")
			b.ReportMetric(Total(greedy)/float64(len(greedy)), "greedy-m/pair")
		})
	}
}

// BenchmarkGreedy is the baseline's cost on the same problems.
func BenchmarkGreedy(b *testing.B) {
	for _, c := range []struct{ n, k int }{{50, 0}, {200, 0}, {1000, 8}} {
		name := fmt.Sprintf("dense-%dx%d", c.n, c.n)
		if c.k > 0 {
			name = fmt.Sprintf("sparse-%dx%d-k%d", c.n, c.n, c.k)
		}
		n, edges := c.n, cityProblem(c.n, c.n, c.k)
		b.Run(name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				Greedy(n, n, edges)
			}
		})
	}
}

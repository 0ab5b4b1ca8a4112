package assign

import (
	"errors"
	"math"
	"math/rand/v2"
	"reflect"
	"slices"
	"strings"
	"testing"
)

// crossing is the classic case where first-come greedy loses: on a line,
// driver D0 at 0, rider R0 at 1.25, driver D1 at 2, rider R1 at 3. R0 is
// closer to D1 (0.75) than to D0 (1.25), so greedy gives it D1 and R1 must
// come from D0, 3 away; the optimum gives R0 D0 and R1 D1 (1). Costs are in
// km, exact in binary so the totals compare exactly.
var crossing = []Edge{
	{Rider: 0, Driver: 0, Cost: 1.25},
	{Rider: 0, Driver: 1, Cost: 0.75},
	{Rider: 1, Driver: 0, Cost: 3},
	{Rider: 1, Driver: 1, Cost: 1},
}

// TestGreedyLosesOnACrossing checks both totals on the crossing case.
func TestGreedyLosesOnACrossing(t *testing.T) {
	greedy := Greedy(2, 2, crossing)
	if want := []Pair{{0, 1, 0.75}, {1, 0, 3}}; !reflect.DeepEqual(greedy, want) {
		t.Errorf("Greedy = %v, want %v", greedy, want)
	}
	if Total(greedy) != 3.75 {
		t.Errorf("greedy total %v, want 3.75", Total(greedy))
	}
	pairs, err := Optimal(2, 2, crossing)
	if err != nil {
		t.Fatal(err)
	}
	if want := []Pair{{0, 0, 1.25}, {1, 1, 1}}; !reflect.DeepEqual(pairs, want) {
		t.Errorf("Optimal = %v, want %v", pairs, want)
	}
	if Total(pairs) != 2.25 {
		t.Errorf("optimal total %v, want 2.25", Total(pairs))
	}
}

// TestCardinalityBeforeCost checks that Optimal serves as many riders as
// possible even when a cheaper matching serves fewer: R0 could take D0 for
// 1, but then R1 (whose only candidate is D0) is left out.
func TestCardinalityBeforeCost(t *testing.T) {
	edges := []Edge{{0, 0, 1}, {0, 1, 1000}, {1, 0, 500}}
	pairs, err := Optimal(2, 2, edges)
	if err != nil {
		t.Fatal(err)
	}
	if want := []Pair{{0, 1, 1000}, {1, 0, 500}}; !reflect.DeepEqual(pairs, want) {
		t.Errorf("Optimal = %v, want %v", pairs, want)
	}
	if g := Greedy(2, 2, edges); len(g) != 1 {
		t.Errorf("Greedy = %v, want only rider 0 served", g)
	}
}

// TestRectangular checks more riders than drivers and more drivers than
// riders.
func TestRectangular(t *testing.T) {
	tests := []struct {
		name            string
		riders, drivers int
		edges           []Edge
		want            []Pair
	}{
		{
			name: "three riders, one driver: the closest rider gets it", riders: 3, drivers: 1,
			edges: []Edge{{0, 0, 5}, {1, 0, 2}, {2, 0, 9}},
			want:  []Pair{{1, 0, 2}},
		},
		{
			name: "one rider, three drivers: the closest driver", riders: 1, drivers: 3,
			edges: []Edge{{0, 0, 5}, {0, 1, 2}, {0, 2, 9}},
			want:  []Pair{{0, 1, 2}},
		},
		{
			name: "three riders, two drivers", riders: 3, drivers: 2,
			edges: []Edge{{0, 0, 1}, {0, 1, 2}, {1, 0, 1}, {1, 1, 5}, {2, 1, 1}},
			want:  []Pair{{0, 0, 1}, {2, 1, 1}}, // riders 0 and 1 tie for driver 0
		},
		{
			name: "two riders, four drivers", riders: 2, drivers: 4,
			edges: []Edge{{0, 0, 4}, {0, 3, 3}, {1, 3, 1}, {1, 2, 2.5}},
			want:  []Pair{{0, 0, 4}, {1, 3, 1}}, // 5 beats 3 + 2.5
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			pairs, err := Optimal(tt.riders, tt.drivers, tt.edges)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(pairs, tt.want) {
				t.Errorf("Optimal = %v, want %v", pairs, tt.want)
			}
			checkAgainstBruteForce(t, tt.riders, tt.drivers, tt.edges)
		})
	}
}

// TestRiderWithoutEdgesStaysUnmatched checks that a rider (or driver) with
// no candidate is left out, and that free drivers are not forced on it.
func TestRiderWithoutEdgesStaysUnmatched(t *testing.T) {
	edges := []Edge{{0, 1, 7}, {2, 0, 3}}
	pairs, err := Optimal(4, 3, edges)
	if err != nil {
		t.Fatal(err)
	}
	if want := []Pair{{0, 1, 7}, {2, 0, 3}}; !reflect.DeepEqual(pairs, want) {
		t.Errorf("Optimal = %v, want %v", pairs, want)
	}
	for _, n := range [][2]int{{0, 0}, {5, 0}, {0, 5}, {5, 5}} {
		pairs, err := Optimal(n[0], n[1], nil)
		if err != nil || len(pairs) != 0 {
			t.Errorf("Optimal(%d, %d, nil) = %v, %v", n[0], n[1], pairs, err)
		}
		if g := Greedy(n[0], n[1], nil); len(g) != 0 {
			t.Errorf("Greedy(%d, %d, nil) = %v", n[0], n[1], g)
		}
	}
}

// TestDuplicateEdgesTakeTheCheaper checks that a pair given twice counts
// at its cheaper cost, in both solvers.
func TestDuplicateEdgesTakeTheCheaper(t *testing.T) {
	edges := []Edge{{0, 0, 9}, {0, 0, 4}, {0, 0, 6}}
	want := []Pair{{0, 0, 4}}
	if pairs, err := Optimal(1, 1, edges); err != nil || !reflect.DeepEqual(pairs, want) {
		t.Errorf("Optimal = %v, %v, want %v", pairs, err, want)
	}
	if g := Greedy(1, 1, edges); !reflect.DeepEqual(g, want) {
		t.Errorf("Greedy = %v, want %v", g, want)
	}
}

// TestZeroCostsAndTies checks that zero costs are real edges (not missing
// ones) and that ties give the same answer whatever the edges' order.
func TestZeroCostsAndTies(t *testing.T) {
	edges := []Edge{{0, 0, 0}, {0, 1, 0}, {1, 0, 0}, {1, 1, 0}, {2, 2, 0}}
	first, err := Optimal(3, 3, edges)
	if err != nil || len(first) != 3 || Total(first) != 0 {
		t.Fatalf("Optimal = %v, %v", first, err)
	}
	r := rand.New(rand.NewPCG(3, 4))
	for range 20 {
		shuffled := slices.Clone(edges)
		r.Shuffle(len(shuffled), func(i, j int) { shuffled[i], shuffled[j] = shuffled[j], shuffled[i] })
		got, _ := Optimal(3, 3, shuffled)
		if !reflect.DeepEqual(got, first) {
			t.Fatalf("edge order changed the answer: %v vs %v", got, first)
		}
	}
}

// TestSeparateClusters checks a graph of several connected components,
// each needing the optimum on its own, with riders and drivers interleaved
// across them.
func TestSeparateClusters(t *testing.T) {
	var edges []Edge
	// Cluster k: riders k and k+3, drivers k and k+3, a crossing.
	for k := range 3 {
		for _, e := range crossing {
			edges = append(edges, Edge{Rider: k + 3*e.Rider, Driver: k + 3*e.Driver, Cost: e.Cost})
		}
	}
	pairs, err := Optimal(6, 6, edges)
	if err != nil {
		t.Fatal(err)
	}
	if len(pairs) != 6 || Total(pairs) != 3*2.25 {
		t.Errorf("Optimal = %v (total %v), want 6 pairs at %v", pairs, Total(pairs), 3*2.25)
	}
	checkAgainstBruteForce(t, 6, 6, edges)
}

// TestInvalidProblems checks that Optimal refuses bad sizes and bad edges
// with an error naming them, and that Greedy skips bad edges.
func TestInvalidProblems(t *testing.T) {
	tests := []struct {
		name            string
		riders, drivers int
		edges           []Edge
		is              error
		says            string
	}{
		{"too many riders", MaxSize + 1, 1, nil, ErrTooLarge, "2001 riders"},
		{"too many drivers", 1, MaxSize + 1, nil, ErrTooLarge, "2001 drivers"},
		{"negative riders", -1, 1, nil, nil, "negative"},
		{"rider out of range", 2, 2, []Edge{{0, 0, 1}, {2, 0, 1}}, ErrInvalidEdge, "edge 1 (rider 2, driver 0, cost 1): rider outside [0, 2)"},
		{"negative rider", 2, 2, []Edge{{-1, 0, 1}}, ErrInvalidEdge, "rider outside"},
		{"driver out of range", 2, 2, []Edge{{0, 5, 1}}, ErrInvalidEdge, "driver outside [0, 2)"},
		{"negative cost", 2, 2, []Edge{{0, 0, -0.5}}, ErrInvalidEdge, "cost -0.5"},
		{"NaN cost", 2, 2, []Edge{{0, 0, math.NaN()}}, ErrInvalidEdge, "cost NaN"},
		{"infinite cost", 2, 2, []Edge{{0, 0, math.Inf(1)}}, ErrInvalidEdge, "cost +Inf"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			pairs, err := Optimal(tt.riders, tt.drivers, tt.edges)
			if err == nil {
				t.Fatalf("accepted: %v", pairs)
			}
			if tt.is != nil && !errors.Is(err, tt.is) {
				t.Errorf("error %v is not %v", err, tt.is)
			}
			if !strings.Contains(err.Error(), tt.says) {
				t.Errorf("error %q does not say %q", err, tt.says)
			}
			if pairs != nil {
				t.Errorf("pairs with the error: %v", pairs)
			}
		})
	}
	mixed := []Edge{{0, 0, math.NaN()}, {0, 1, 2}, {1, 9, 1}, {-1, 0, 1}, {1, 0, 3}}
	if g, want := Greedy(2, 2, mixed), []Pair{{0, 1, 2}, {1, 0, 3}}; !reflect.DeepEqual(g, want) {
		t.Errorf("Greedy with bad edges = %v, want %v", g, want)
	}
	if g := Greedy(-1, -1, mixed); len(g) != 0 {
		t.Errorf("Greedy with negative counts = %v", g)
	}
}

// TestMaxSizeAccepted checks that a problem of exactly MaxSize riders and
// drivers is solved (sparse, so it stays fast).
func TestMaxSizeAccepted(t *testing.T) {
	var edges []Edge
	for i := range MaxSize {
		edges = append(edges, Edge{i, i, 1}, Edge{i, (i + 1) % MaxSize, 0.5})
	}
	pairs, err := Optimal(MaxSize, MaxSize, edges)
	if err != nil {
		t.Fatal(err)
	}
	if len(pairs) != MaxSize || Total(pairs) != MaxSize*0.5 {
		t.Errorf("%d pairs at %v, want %d at %v", len(pairs), Total(pairs), MaxSize, MaxSize*0.5)
	}
}

// TestOptimalAllocations checks the allocation budget: a batch of many
// small clusters allocates no more than one big problem.
func TestOptimalAllocations(t *testing.T) {
	var edges []Edge
	for i := range 1000 {
		edges = append(edges, Edge{i, i, float64(i % 7)})
		if i%3 == 0 && i+1 < 1000 {
			edges = append(edges, Edge{i, i + 1, 2})
		}
	}
	allocs := testing.AllocsPerRun(5, func() {
		if _, err := Optimal(1000, 1000, edges); err != nil {
			t.Fatal(err)
		}
	})
	if allocs > 40 {
		t.Errorf("%v allocations for about 700 clusters, want at most 40", allocs)
	}
}

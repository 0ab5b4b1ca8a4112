package fence

import (
	"slices"
	"testing"

	"github.com/geomatch/geomatch/internal/geo"
)

// TestContainingMatchesBruteForce checks, for random polygons (with holes,
// multi-part, either winding, across the antimeridian) and circles in
// awkward regions, that Index.Containing answers exactly what Contains
// over every fence does: no point inside a fence is missed (the cover has
// no false negatives) and no interior cell claims a point outside.
func TestContainingMatchesBruteForce(t *testing.T) {
	for i, rg := range regions {
		t.Run(rg.name, func(t *testing.T) {
			r := newRand(uint64(100 + i))
			fences := randomFences(t, r, rg, 150)
			ix := mustIndex(t, 9, fences)
			points := probePoints(r, rg, fences, pick(testing.Short(), 4000, 20000))
			inside := 0
			for _, p := range points {
				want := bruteContaining(fences, p)
				got := indexContaining(ix, p, cellAt(p, 9))
				if !slices.Equal(got, want) {
					t.Fatalf("Containing(%v) = %v, brute force %v", p, got, want)
				}
				inside += len(want)
			}
			t.Logf("%d points, %d (point, fence) insides", len(points), inside)
		})
	}
}

// TestTransitionsMatchBruteForce checks Index.Transitions against Eval over
// every fence for random moves: short ones (the usual update), long ones
// (crossing many fences), first sightings, across cells, and every
// combination of detect sets and vehicle classes.
func TestTransitionsMatchBruteForce(t *testing.T) {
	for i, rg := range regions {
		t.Run(rg.name, func(t *testing.T) {
			r := newRand(uint64(200 + i))
			fences := randomFences(t, r, rg, 150)
			ix := mustIndex(t, 9, fences)
			points := probePoints(r, rg, fences, pick(testing.Short(), 2000, 8000))
			classes := []string{"", "car", "bike", "truck"}
			counts := map[Transition]int{}
			for k, cur := range points {
				var prev *geo.LatLng
				switch r.IntN(4) {
				case 0: // first sighting
				case 1: // far
					p := points[r.IntN(len(points))]
					prev = &p
				default: // a few to a few hundred meters
					p := destination(cur, r.Float64()*6.3, r.Float64()*300/geo.EarthRadiusM)
					prev = &p
				}
				class := classes[r.IntN(len(classes))]
				want := bruteTransitions(fences, prev, cur, class)
				var prevCell = cellAt(cur, 9)
				if prev != nil {
					prevCell = cellAt(*prev, 9)
				}
				got := indexTransitions(ix, prev, prevCell, cur, cellAt(cur, 9), class)
				if !slices.Equal(got, want) {
					t.Fatalf("move %d %v -> %v (%q): index %v, brute force %v", k, prev, cur, class, got, want)
				}
				for _, h := range want {
					counts[h.t]++
				}
			}
			t.Logf("transitions seen: %v", counts)
			for _, tr := range []Transition{Enter, Exit, Inside} {
				if counts[tr] == 0 {
					t.Errorf("no %v transition exercised", tr)
				}
			}
		})
	}
}

func mustIndex(t testing.TB, res int, fences []*Fence) *Index {
	t.Helper()
	ix, err := NewIndex(res)
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range fences {
		if err := ix.Put(f); err != nil {
			t.Fatalf("Put(%s): %v", f.ID, err)
		}
	}
	if ix.Len() != len(fences) {
		t.Fatalf("Len = %d, want %d", ix.Len(), len(fences))
	}
	return ix
}

func pick(cond bool, a, b int) int {
	if cond {
		return a
	}
	return b
}

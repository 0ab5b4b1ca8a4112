package fleet

import (
	"math/rand/v2"
	"slices"
	"strconv"
	"testing"

	"github.com/geomatch/geomatch/internal/geo"
	matcherv1 "github.com/geomatch/geomatch/proto/geomatch/matcher/v1"
)

// mergeReference is merge as a brute force: the newest fix of every driver
// (the first of equal ones, in part order), sorted, the first k.
func mergeReference(parts [][]*matcherv1.Neighbor, k int) []*matcherv1.Neighbor {
	var ids []string
	newest := map[string]*matcherv1.Neighbor{}
	for _, p := range parts {
		for _, n := range p {
			cur, ok := newest[n.GetDriverId()]
			if !ok {
				ids = append(ids, n.GetDriverId())
			}
			if !ok || n.GetTimestampMs() > cur.GetTimestampMs() {
				newest[n.GetDriverId()] = n
			}
		}
	}
	var all []*matcherv1.Neighbor
	for _, id := range ids {
		all = append(all, newest[id])
	}
	slices.SortFunc(all, func(a, b *matcherv1.Neighbor) int {
		return geo.CompareHits(geo.Hit{ID: a.GetDriverId(), DistanceM: a.GetDistanceM()}, geo.Hit{ID: b.GetDriverId(), DistanceM: b.GetDistanceM()})
	})
	return all[:min(k, len(all))]
}

// randomParts returns n per-owner answers, each sorted, with drivers drawn
// from a pool of ids small enough that some show up in two parts (a copy
// on the old node not yet evicted) with different fixes.
func randomParts(r *rand.Rand, n, per, pool int) [][]*matcherv1.Neighbor {
	parts := make([][]*matcherv1.Neighbor, n)
	for i := range parts {
		seen := map[string]bool{}
		for range per {
			id := "d" + strconv.Itoa(r.IntN(pool))
			if seen[id] {
				continue // one node holds a driver once
			}
			seen[id] = true
			parts[i] = append(parts[i], &matcherv1.Neighbor{DriverId: id,
				DistanceM: float64(r.IntN(50)), TimestampMs: int64(r.IntN(3))})
		}
		slices.SortFunc(parts[i], func(a, b *matcherv1.Neighbor) int {
			return geo.CompareHits(geo.Hit{ID: a.GetDriverId(), DistanceM: a.GetDistanceM()}, geo.Hit{ID: b.GetDriverId(), DistanceM: b.GetDistanceM()})
		})
	}
	return parts
}

// TestMergeEqualsReference checks merge, both below and above the size
// where it switches from scanning to a map, against the brute force.
func TestMergeEqualsReference(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	for i := range 2000 {
		n, per := 1+r.IntN(4), r.IntN(40)
		if i%4 == 0 {
			per = mergeScanMax + r.IntN(100)
		}
		parts := randomParts(r, n, per, 1+r.IntN(2*per+1))
		k := 1 + r.IntN(per+5)
		want := mergeReference(parts, k)
		got := merge(parts, k)
		if !slices.Equal(got, want) {
			t.Fatalf("case %d: merge of %d parts of up to %d, k %d:\ngot  %v\nwant %v", i, n, per, k, got, want)
		}
	}
}

// TestMergeKeepsNewestCopyAndOrder: merge dedupes a driver seen on two
// nodes (newest fix wins), orders by distance then id, and cuts at k.
func TestMergeKeepsNewestCopyAndOrder(t *testing.T) {
	type nb = struct {
		id string
		d  float64
		ts int64
	}
	mk := func(ns ...nb) []*matcherv1.Neighbor {
		out := make([]*matcherv1.Neighbor, len(ns))
		for i, n := range ns {
			out[i] = &matcherv1.Neighbor{DriverId: n.id, DistanceM: n.d, TimestampMs: n.ts}
		}
		return out
	}
	got := merge([][]*matcherv1.Neighbor{
		mk(nb{"a", 5, 1}, nb{"c", 7, 1}, nb{"moved", 8, 1}),
		mk(nb{"b", 5, 1}, nb{"moved", 50, 2}, nb{"d", 60, 1}),
	}, 4)
	want := []string{"a", "b", "c", "moved"}
	if len(got) != 4 {
		t.Fatalf("got %d, want 4", len(got))
	}
	for i, id := range want {
		if got[i].GetDriverId() != id {
			t.Fatalf("position %d: %s, want %s (got %v)", i, got[i].GetDriverId(), id, got)
		}
	}
	if got[3].GetDistanceM() != 50 {
		t.Fatalf("moved driver at %v m, want its newest copy at 50 m", got[3].GetDistanceM())
	}
}

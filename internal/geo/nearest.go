package geo

import (
	"cmp"
	"slices"
)

// Point is an identified position, the input of the brute-force oracle.
type Point struct {
	ID  string
	Pos LatLng
}

// Hit is one k-nearest result: a point and its distance from the query.
type Hit struct {
	ID        string
	Pos       LatLng
	DistanceM float64
}

// CompareHits orders hits nearest first, ties broken by id. Every k-nearest
// answer in the system is sorted by it, so answers can be compared exactly.
func CompareHits(a, b Hit) int {
	if c := cmp.Compare(a.DistanceM, b.DistanceM); c != 0 {
		return c
	}
	return cmp.Compare(a.ID, b.ID)
}

// NearestBrute is the reference answer: the k points nearest to q within
// radiusM meters, by DistanceM over every point, nearest first with ties by
// id. It is O(n log n) and meant for tests and verification only.
func NearestBrute(points []Point, q LatLng, radiusM float64, k int) []Hit {
	var hits []Hit
	for _, p := range points {
		if d := DistanceM(q, p.Pos); d <= radiusM {
			hits = append(hits, Hit{ID: p.ID, Pos: p.Pos, DistanceM: d})
		}
	}
	slices.SortFunc(hits, CompareHits)
	if len(hits) > k {
		hits = hits[:k]
	}
	return hits
}

package assign

// Greedy is the first-come baseline Optimal is measured against: riders in
// order 0..riders-1 each take their cheapest still-free candidate driver
// (ties go to the lowest driver index). Edges Validate would refuse are
// skipped; there is no size limit. It returns the pairs sorted by rider, in
// O(riders + drivers + edges) time with 4 allocations.
func Greedy(riders, drivers int, edges []Edge) []Pair {
	if riders <= 0 || drivers <= 0 {
		return nil
	}
	// Bucket the valid edges by rider: rider r's are byRider[start[r]:start[r+1]].
	start := make([]int, riders+1)
	for _, e := range edges {
		if checkEdge(riders, drivers, e) == nil {
			start[e.Rider+1]++
		}
	}
	for r := range riders {
		start[r+1] += start[r]
	}
	byRider := make([]Edge, start[riders])
	next := start[:riders] // next free slot per rider; restored below
	for _, e := range edges {
		if checkEdge(riders, drivers, e) == nil {
			byRider[next[e.Rider]] = e
			next[e.Rider]++
		}
	}
	// next[r] is now the old start[r+1]: shift back.
	copy(start[1:], start[:riders])
	start[0] = 0

	taken := make([]bool, drivers)
	pairs := make([]Pair, 0, min(riders, drivers, len(byRider)))
	for r := range riders {
		best := -1
		for i := start[r]; i < start[r+1]; i++ {
			e := byRider[i]
			if taken[e.Driver] {
				continue
			}
			if best < 0 || e.Cost < byRider[best].Cost ||
				(e.Cost == byRider[best].Cost && e.Driver < byRider[best].Driver) {
				best = i
			}
		}
		if best >= 0 {
			taken[byRider[best].Driver] = true
			pairs = append(pairs, Pair(byRider[best]))
		}
	}
	return pairs
}

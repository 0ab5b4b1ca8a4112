package events

// merge interleaves the partitions' pending entries into one batch of at
// most limit, oldest TimeMs first (ties to the lower partition), never
// reordering a partition: it repeatedly takes the head of the partition
// whose head is oldest. avail bounds the entries on offer (it sizes the
// batch's allocations). peek reports partition p's head (ok false when p
// has nothing more); take removes it and returns it with its position.
//
// Every entry gets the cursor after it; all of them share one backing
// array, so a batch costs two allocations whatever its size.
func merge(c []Position, limit, avail int, peek func(p int) (timeMs int64, ok bool), take func(p int) (Record, Position)) ([]Entry, Cursor) {
	n := len(c)
	var (
		entries []Entry
		backing []Position
		cur     = c
	)
	for len(entries) < limit {
		best, bestTime := -1, int64(0)
		for p := range n {
			if t, ok := peek(p); ok && (best < 0 || t < bestTime) {
				best, bestTime = p, t
			}
		}
		if best < 0 {
			break
		}
		if entries == nil {
			size := max(min(limit, avail), 1)
			entries = make([]Entry, 0, size)
			backing = make([]Position, 0, size*n)
		}
		rec, pos := take(best)
		start := len(backing)
		backing = append(backing, cur...)
		next := backing[start : start+n : start+n]
		next[best] = pos
		cur = next
		entries = append(entries, Entry{Record: rec, Cursor: Cursor{pos: next}})
	}
	return entries, Cursor{pos: cur}
}

package assign

import "math"

// solver holds the buffers of the dense assignment solver, reused from one
// component to the next so that a batch of many small clusters costs no
// more allocations than one big one.
type solver struct {
	cost []float64 // n×m, row-major: the problem
	has  []bool    // n×m: which entries are real edges (the caller's)
	u    []float64 // row potentials, 1-based
	v    []float64 // column potentials, 1-based; 0 is the virtual column
	// rowOf[j] is the row holding column j (0: none); prev[j] the column
	// before j on the current shortest path.
	rowOf, prev []int
	minv        []float64 // shortest reduced distance to each column
	used        []bool    // columns settled in the current search
	colOf       []int     // the result: the column of each row
}

// reset sizes the buffers for an n×m problem, reusing their memory when
// it is large enough, and clears cost and has.
func (s *solver) reset(n, m int) {
	s.cost = grow(s.cost, n*m)
	s.has = grow(s.has, n*m)
	clear(s.cost)
	clear(s.has)
	s.u = grow(s.u, n+1)
	s.v = grow(s.v, m+1)
	s.rowOf = grow(s.rowOf, m+1)
	s.prev = grow(s.prev, m+1)
	s.minv = grow(s.minv, m+1)
	s.used = grow(s.used, m+1)
	s.colOf = grow(s.colOf, n)
}

// grow returns s resized to n, reallocating only when its capacity is short.
func grow[T any](s []T, n int) []T {
	if cap(s) < n {
		return make([]T, n)
	}
	return s[:n]
}

// solve solves the dense rectangular assignment problem in s.cost, an n×m
// matrix with n <= m and finite entries: it returns, for each row, the
// column assigned to it, such that no two rows share a column and the total
// cost is minimal. The result is s.colOf, valid until the next reset.
//
// It is the shortest augmenting path form of the Hungarian algorithm
// (Kuhn–Munkres with Jonker–Volgenant's row-by-row augmentation): rows join
// one at a time, each along a shortest path of reduced costs found
// Dijkstra-style over the columns, with dual potentials u (rows) and v
// (columns) kept so that reduced costs stay >= 0. O(n²·m) time in the worst
// case, no allocation. Scans go in column order and ties keep the first
// column found, so the result depends on the matrix alone.
func (s *solver) solve(n, m int) []int {
	u, v, rowOf, prev, minv, used := s.u, s.v, s.rowOf, s.prev, s.minv, s.used
	clear(u)
	clear(v)
	clear(rowOf)
	for i := 1; i <= n; i++ {
		rowOf[0] = i
		j0 := 0
		for j := range minv {
			minv[j] = math.Inf(1)
			used[j] = false
		}
		for {
			used[j0] = true
			i0 := rowOf[j0]
			row := s.cost[(i0-1)*m : i0*m]
			ui := u[i0]
			delta, j1 := math.Inf(1), 0
			for j := 1; j <= m; j++ {
				if used[j] {
					continue
				}
				if cur := row[j-1] - ui - v[j]; cur < minv[j] {
					minv[j] = cur
					prev[j] = j0
				}
				if minv[j] < delta {
					delta, j1 = minv[j], j
				}
			}
			for j := 0; j <= m; j++ {
				if used[j] {
					u[rowOf[j]] += delta
					v[j] -= delta
				} else {
					minv[j] -= delta
				}
			}
			j0 = j1
			if rowOf[j0] == 0 {
				break
			}
		}
		// Augment: shift the columns along the path back to the start.
		for j0 != 0 {
			j1 := prev[j0]
			rowOf[j0] = rowOf[j1]
			j0 = j1
		}
	}
	for j := 1; j <= m; j++ {
		if rowOf[j] != 0 {
			s.colOf[rowOf[j]-1] = j - 1
		}
	}
	return s.colOf
}

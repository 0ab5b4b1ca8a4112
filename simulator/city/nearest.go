package city

import "math"

// bucketCellM is the side of a bucket of the nearest-node index; about two
// city blocks, so a lookup scans a handful of buckets.
const bucketCellM = 250

// maxBuckets bounds the index of a very large road file; the bucket side
// doubles until the grid fits.
const maxBuckets = 1 << 20

// bucketIndex is a uniform grid of node buckets over the graph's bounds.
type bucketIndex struct {
	minX, minY float64
	cell       float64
	nx, ny     int
	buckets    [][]NodeID
}

func newBucketIndex(nodes []Node) bucketIndex {
	ix := bucketIndex{minX: math.Inf(1), minY: math.Inf(1), cell: bucketCellM}
	maxX, maxY := math.Inf(-1), math.Inf(-1)
	for _, n := range nodes {
		ix.minX, ix.minY = min(ix.minX, n.X), min(ix.minY, n.Y)
		maxX, maxY = max(maxX, n.X), max(maxY, n.Y)
	}
	for ((maxX-ix.minX)/ix.cell+1)*((maxY-ix.minY)/ix.cell+1) > maxBuckets {
		ix.cell *= 2
	}
	ix.nx = int((maxX-ix.minX)/ix.cell) + 1
	ix.ny = int((maxY-ix.minY)/ix.cell) + 1
	ix.buckets = make([][]NodeID, ix.nx*ix.ny)
	for i, n := range nodes {
		bi, bj := ix.coords(n.X, n.Y)
		ix.buckets[bj*ix.nx+bi] = append(ix.buckets[bj*ix.nx+bi], NodeID(i))
	}
	return ix
}

// coords returns the bucket of x, y, clamped to the grid.
func (ix *bucketIndex) coords(x, y float64) (int, int) {
	i := int(math.Floor((x - ix.minX) / ix.cell))
	j := int(math.Floor((y - ix.minY) / ix.cell))
	return min(max(i, 0), ix.nx-1), min(max(j, 0), ix.ny-1)
}

// Nearest returns the intersection nearest to x, y (frame meters); ties go
// to the lower id. It scans rings of buckets around the point until no
// closer node can be in the next ring.
func (g *Graph) Nearest(x, y float64) NodeID {
	ix := &g.index
	ci, cj := ix.coords(x, y)
	best, bestD := NodeID(-1), math.Inf(1)
	for r := 0; ; r++ {
		if r > ix.nx && r > ix.ny {
			break
		}
		for j := cj - r; j <= cj+r; j++ {
			if j < 0 || j >= ix.ny {
				continue
			}
			for i := ci - r; i <= ci+r; i++ {
				if i < 0 || i >= ix.nx || (j != cj-r && j != cj+r && i != ci-r && i != ci+r) {
					continue // only the ring's border
				}
				for _, id := range ix.buckets[j*ix.nx+i] {
					n := &g.Nodes[id]
					d := math.Hypot(n.X-x, n.Y-y)
					if d < bestD || (d == bestD && id < best) {
						best, bestD = id, d
					}
				}
			}
		}
		// Every node outside rings 0..r lies at least this far from the
		// point (its distance to the border of the scanned square).
		if best >= 0 && bestD <= ringClearance(ix, x, y, ci, cj, r) {
			break
		}
	}
	return best
}

// ringClearance is the distance from x, y to the outside of the square of
// buckets ci±r, cj±r (infinite on sides where the grid ends).
func ringClearance(ix *bucketIndex, x, y float64, ci, cj, r int) float64 {
	d := math.Inf(1)
	if ci-r > 0 {
		d = min(d, x-(ix.minX+float64(ci-r)*ix.cell))
	}
	if ci+r < ix.nx-1 {
		d = min(d, ix.minX+float64(ci+r+1)*ix.cell-x)
	}
	if cj-r > 0 {
		d = min(d, y-(ix.minY+float64(cj-r)*ix.cell))
	}
	if cj+r < ix.ny-1 {
		d = min(d, ix.minY+float64(cj+r+1)*ix.cell-y)
	}
	return d
}

package fence

import (
	"cmp"
	"math"
	"slices"

	"github.com/uber/h3-go/v4"

	"github.com/geomatch/geomatch/internal/geo"
)

// Most index lookups land in boundary cells, where a fence's boundary may
// pass: the fence then needs its exact test, which costs a few cache misses
// into the fence's geometry. To spare most of them, each boundary cell
// carries a micro grid: a latitude/longitude box around the cell split
// into microN x microN micro cells, and each boundary entry records which
// micro cells are wholly inside its fence and which wholly outside. A
// position's micro cell is computed once per cell; only fences for which
// it is mixed take the exact test.
//
// Exactness. A micro cell is the set of points that the floor of the
// box's affine map sends to it. It is marked inside or outside only when
// its box, grown by microEps micro cells (far above rounding), provably
// holds no boundary point; a point outside the box, or in a polar or
// antimeridian cell (no grid), takes the exact test. The box holds the
// cell's hexagon (newMicroBox), so an entry whose micro cells are all
// outside its fence is left out of the cell, and one whose micro cells
// are all inside needs no test for any point of the cell.
const (
	microN   = 8
	microEps = 1e-6
	// microMaxLat: cells whose box reaches beyond this latitude get no
	// grid (longitudes spread too much near the poles).
	microMaxLat = 80
	// microMinRes: coarser cells, too distorted for the guarantees of
	// the grid (TestMicroBoxesNearTheirCell), get none.
	microMinRes = 3
	// microAllIn marks an interior entry.
	microAllIn = ^uint64(0)
)

// microBox is the micro grid of one boundary cell.
type microBox struct {
	lat0, lng0     float64 // south-west corner, degrees
	invLat, invLng float64 // micro cells per degree
	ok             bool    // false: no grid, every entry takes the exact test
}

// newMicroBox returns the micro grid of cell c: the latitude/longitude box
// of its boundary vertices, grown to hold the hexagon's edges, which are
// great-circle arcs (straight in H3's gnomonic projections) and bulge
// poleward of their ends by at most L²·tan φ / 8R for an edge of length L
// at latitude φ; the growth is ten times that plus a micrometer (far above
// the rounding of H3's vertices). Cells beyond microMaxLat, across the
// antimeridian or coarser than microMinRes get no grid.
func newMicroBox(c h3.Cell) microBox {
	if cellRes(c) < microMinRes {
		return microBox{}
	}
	minLat, maxLat := math.Inf(1), math.Inf(-1)
	minLng, maxLng := math.Inf(1), math.Inf(-1)
	vs := c.Boundary()
	for _, v := range vs {
		minLat, maxLat = min(minLat, v.Lat), max(maxLat, v.Lat)
		minLng, maxLng = min(minLng, v.Lng), max(maxLng, v.Lng)
	}
	if len(vs) == 0 || max(-minLat, maxLat) > microMaxLat || maxLng-minLng > 180 {
		return microBox{}
	}
	var longest float64 // bounded from above
	for i := range vs {
		j := (i + 1) % len(vs)
		longest = max(longest, lonLatLengthM(vs[i].Lng, vs[i].Lat, vs[j].Lng, vs[j].Lat))
	}
	bulgeM := 10*longest*longest*math.Tan(microMaxLat*degToRad)/(8*geo.EarthRadiusM) + 1e-6
	gLat := bulgeM / geo.EarthRadiusM * radToDeg
	gLng := gLat / math.Cos(max(-minLat, maxLat)*degToRad)
	minLat, maxLat = minLat-gLat, maxLat+gLat
	minLng, maxLng = minLng-gLng, maxLng+gLng
	if minLng < -180 || maxLng > 180 {
		return microBox{}
	}
	return microBox{
		lat0: minLat, lng0: minLng,
		invLat: microN / (maxLat - minLat), invLng: microN / (maxLng - minLng),
		ok: true,
	}
}

// cell returns the micro cell of p (row*microN+col), or -1 when p is
// outside the box or there is no grid.
func (b *microBox) cell(p geo.LatLng) int {
	if !b.ok {
		return -1
	}
	fi := (p.Lat - b.lat0) * b.invLat
	fj := (p.Lng - b.lng0) * b.invLng
	if !(fi >= 0 && fi < microN && fj >= 0 && fj < microN) {
		return -1
	}
	return int(fi)*microN + int(fj)
}

// lat and lng return the latitude of grid row i and the longitude of grid
// column j (0..microN).
func (b *microBox) lat(i int) float64 { return b.lat0 + float64(i)/b.invLat }
func (b *microBox) lng(j int) float64 { return b.lng0 + float64(j)/b.invLng }

// rect returns the box of the grid.
func (b *microBox) rect() Rect {
	return Rect{MinLat: b.lat(0), MaxLat: b.lat(microN), MinLng: b.lng(0), MaxLng: b.lng(microN)}
}

// indexRange returns the micro rows (or columns) that the closed interval
// [lo, hi] of latitude (or longitude), grown by microEps micro cells,
// meets, given the grid's origin and scale; ok is false when none.
func indexRange(lo, hi, origin, inv float64) (int, int, bool) {
	a := math.Floor((lo-origin)*inv - microEps)
	z := math.Floor((hi-origin)*inv + microEps)
	if z < 0 || a >= microN {
		return 0, 0, false
	}
	return int(math.Max(a, 0)), int(math.Min(z, microN-1)), true
}

// classifyCells sets the masks of every boundary cell: the micro cells
// wholly inside the shape (in) and wholly outside (out); the rest are
// mixed.
func classifyCells(s Shape, bcs []boundaryCell) {
	switch s := s.(type) {
	case *Polygon:
		s.classifyCells(bcs)
	case *Circle:
		for i := range bcs {
			if bcs[i].box.ok {
				bcs[i].in, bcs[i].out = s.classify(&bcs[i].box)
			}
		}
	}
}

// boxTarget is a boundary cell's box in a part's frame.
type boxTarget struct {
	r     Rect
	shift float64
	i     int // index in the boundary cells
}

// classifyCells marks the micro cells met by an edge as mixed, then
// decides the others by the exact test at their centers. Edges meet boxes
// by a sweep over latitude: the boxes sorted by their south edge, each
// edge compared with the boxes whose south edge is below its top.
func (pg *Polygon) classifyCells(bcs []boundaryCell) {
	mixed := make([]uint64, len(bcs))
	var targets []boxTarget
	for pi := range pg.parts {
		pt := &pg.parts[pi]
		targets = targets[:0]
		maxH := 0.0
		for i := range bcs {
			if !bcs[i].box.ok {
				continue
			}
			box := bcs[i].box.rect()
			// Grow by a micro cell so clipping rounding loses no edge.
			g := Rect{
				MinLat: box.MinLat - 1/bcs[i].box.invLat, MaxLat: box.MaxLat + 1/bcs[i].box.invLat,
				MinLng: box.MinLng - 1/bcs[i].box.invLng, MaxLng: box.MaxLng + 1/bcs[i].box.invLng,
			}
			for _, shift := range [3]float64{0, 360, -360} {
				r := shiftRect(g, shift)
				if r.MinLat > pt.maxY || r.MaxLat < pt.minY || r.MinLng > pt.maxX || r.MaxLng < pt.minX {
					continue
				}
				targets = append(targets, boxTarget{r: r, shift: shift, i: i})
				maxH = max(maxH, r.MaxLat-r.MinLat)
			}
		}
		if len(targets) == 0 {
			continue
		}
		slices.SortFunc(targets, func(a, b boxTarget) int { return cmp.Compare(a.r.MinLat, b.r.MinLat) })
		for e := range pt.edges() {
			ax, ay, bx, by := pt.xs[e], pt.ys[e], pt.xs[e+1], pt.ys[e+1]
			lo, hi := min(ay, by), max(ay, by)
			// Boxes with MinLat in [lo-maxH, hi] may meet the edge.
			k, _ := slices.BinarySearchFunc(targets, lo-maxH, func(t boxTarget, y float64) int { return cmp.Compare(t.r.MinLat, y) })
			for ; k < len(targets) && targets[k].r.MinLat <= hi; k++ {
				t := &targets[k]
				if t.r.MaxLat < lo || max(ax, bx) < t.r.MinLng || min(ax, bx) > t.r.MaxLng {
					continue
				}
				mixed[t.i] |= markEdge(&bcs[t.i].box, t.r, t.shift, ax, ay, bx, by)
			}
		}
	}
	for i := range bcs {
		b := &bcs[i].box
		if !b.ok {
			continue
		}
		bcs[i].in, bcs[i].out = pg.sides(b, mixed[i])
	}
}

// sides returns the micro cells of b, other than the mixed ones, inside
// and outside the polygon.
func (pg *Polygon) sides(b *microBox, mixed uint64) (in, out uint64) {
	if mixed == 0 {
		// No boundary in the box: one test decides it all.
		box := b.rect()
		c := geo.LatLng{Lat: (box.MinLat + box.MaxLat) / 2, Lng: (box.MinLng + box.MaxLng) / 2}
		if pg.Contains(c) {
			return microAllIn, 0
		}
		return 0, microAllIn
	}
	for k := range microN * microN {
		bit := uint64(1) << k
		if mixed&bit != 0 {
			continue
		}
		i, j := k/microN, k%microN
		c := geo.LatLng{Lat: (b.lat(i) + b.lat(i+1)) / 2, Lng: (b.lng(j) + b.lng(j+1)) / 2}
		if pg.Contains(c) {
			in |= bit
		} else {
			out |= bit
		}
	}
	return in, out
}

// markEdge returns the micro cells of b (whose box, grown by a micro
// cell, is r in the part's frame: b's longitudes plus shift) that the
// edge (ax,ay)→(bx,by) may touch. The edge is clipped to r and cut into
// pieces no longer than a micro cell; each piece marks the micro cells its
// box meets.
func markEdge(b *microBox, r Rect, shift, ax, ay, bx, by float64) uint64 {
	t0, t1 := 0.0, 1.0
	if min(ax, bx) < r.MinLng || max(ax, bx) > r.MaxLng || min(ay, by) < r.MinLat || max(ay, by) > r.MaxLat {
		var ok bool
		if t0, t1, ok = clip(ax, ay, bx, by, r.MinLng, r.MaxLng, r.MinLat, r.MaxLat); !ok {
			return 0
		}
	}
	var mixed uint64
	lng0 := b.lng0 + shift
	dx, dy := bx-ax, by-ay
	n := max(int(math.Ceil(max(math.Abs(dx)*(t1-t0)*b.invLng, math.Abs(dy)*(t1-t0)*b.invLat))), 1)
	for k := range n {
		ta := t0 + (t1-t0)*float64(k)/float64(n)
		tb := t0 + (t1-t0)*float64(k+1)/float64(n)
		x0, y0 := ax+ta*dx, ay+ta*dy
		x1, y1 := ax+tb*dx, ay+tb*dy
		if k == 0 && t0 == 0 {
			x0, y0 = ax, ay
		}
		if k == n-1 && t1 == 1 {
			x1, y1 = bx, by
		}
		i0, i1, okI := indexRange(min(y0, y1), max(y0, y1), b.lat0, b.invLat)
		j0, j1, okJ := indexRange(min(x0, x1), max(x0, x1), lng0, b.invLng)
		if !okI || !okJ {
			continue
		}
		for i := i0; i <= i1; i++ {
			for j := j0; j <= j1; j++ {
				mixed |= 1 << (i*microN + j)
			}
		}
	}
	return mixed
}

// clip returns the parameter range [t0, t1] of the segment a→b within the
// box (Liang-Barsky), widened slightly against rounding; ok is false when
// the segment misses the box.
func clip(ax, ay, bx, by, xmin, xmax, ymin, ymax float64) (t0, t1 float64, ok bool) {
	t0, t1 = 0, 1
	dx, dy := bx-ax, by-ay
	for _, c := range [4][2]float64{{-dx, ax - xmin}, {dx, xmax - ax}, {-dy, ay - ymin}, {dy, ymax - ay}} {
		p, q := c[0], c[1]
		if p == 0 {
			if q < 0 {
				return 0, 0, false
			}
			continue
		}
		t := q / p
		if p < 0 {
			t0 = math.Max(t0, t)
		} else {
			t1 = math.Min(t1, t)
		}
	}
	if t0 > t1 {
		return 0, 0, false
	}
	// The box was grown by a micro cell: widening t by a little keeps
	// every point of the edge near the box.
	return math.Max(0, t0-1e-9), math.Min(1, t1+1e-9), true
}

// classify decides micro cells from the distances of the grid's corners:
// a micro cell is inside when its four corners are (distance along a
// parallel or a meridian of a small box peaks at its ends, so the whole
// box is), outside when geo.BoxLowerBoundM puts it beyond the radius.
// Margins of a centimeter cover rounding and the microEps growth.
func (c *Circle) classify(b *microBox) (in, out uint64) {
	box := b.rect()
	// The whole box first: every point of it is within half its diagonal
	// of its center.
	halfDiag := lonLatLengthM(box.MinLng, box.MinLat, box.MaxLng, box.MaxLat) / 2 * 1.01
	mid := geo.LatLng{Lat: (box.MinLat + box.MaxLat) / 2, Lng: (box.MinLng + box.MaxLng) / 2}
	if c.origin.DistanceM(mid)-halfDiag > c.radiusM+0.01 {
		return 0, microAllIn
	}
	var sinLat, cosLat, sinLng, cosLng [microN + 1]float64
	for i := range microN + 1 {
		sinLat[i], cosLat[i] = math.Sincos(b.lat(i) * degToRad)
		sinLng[i], cosLng[i] = math.Sincos(b.lng(i) * degToRad)
	}
	inChord := chordOf(c.radiusM - 0.01)
	var chord [microN + 1][microN + 1]float64
	allIn := true
	for i := range microN + 1 {
		for j := range microN + 1 {
			chord[i][j] = c.chordTo(cosLat[i]*cosLng[j], cosLat[i]*sinLng[j], sinLat[i])
			if chord[i][j] >= inChord {
				allIn = false
			}
		}
	}
	if allIn {
		return microAllIn, 0
	}
	// A micro cell lies within half its diagonal of its center, so one
	// whose center is beyond the radius plus that is outside; the few
	// others near the circle take geo.BoxLowerBoundM.
	outChord := chordOf(c.radiusM + halfDiag/microN + 0.01)
	for i := range microN {
		sinC, cosC := math.Sincos((b.lat(i) + b.lat(i+1)) / 2 * degToRad)
		for j := range microN {
			k := i*microN + j
			hi := max(chord[i][j], chord[i][j+1], chord[i+1][j], chord[i+1][j+1])
			if hi < inChord {
				in |= 1 << k
				continue
			}
			sinL, cosL := math.Sincos((b.lng(j) + b.lng(j+1)) / 2 * degToRad)
			if c.chordTo(cosC*cosL, cosC*sinL, sinC) > outChord ||
				geo.BoxLowerBoundM(c.center, b.lat(i), b.lng(j), b.lat(i+1), b.lng(j+1)) > c.radiusM+0.01 {
				out |= 1 << k
			}
		}
	}
	return in, out
}

// chordTo is the chord, on the unit sphere, from the center to the unit
// vector (x, y, z).
func (c *Circle) chordTo(x, y, z float64) float64 {
	dx, dy, dz := x-c.cx, y-c.cy, z-c.cz
	return math.Sqrt(dx*dx + dy*dy + dz*dz)
}

// chordOf is the chord length, on the unit sphere, of a great-circle
// distance in meters.
func chordOf(m float64) float64 {
	a := math.Max(m, 0) / geo.EarthRadiusM
	if a >= math.Pi {
		return 2
	}
	return 2 * math.Sin(a/2)
}

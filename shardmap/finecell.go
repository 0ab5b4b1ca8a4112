package shardmap

import (
	"math"
	"sync"
	"sync/atomic"

	"github.com/uber/h3-go/v4"
)

// Finding a position's fine cell is the one cgo call on the path of every
// location update (h3.LatLngToCell, about 1 µs with the crossing, a fifth
// of the router's CPU per update at 250k updates/s). A driver reports
// every few seconds from a few metres further on, so nearly every update
// lands in a cell the router has seen many times: locator answers those in
// pure Go and calls H3 only for the rest.
//
// How. A hexagon of H3 is bounded by straight lines in the gnomonic
// projection of its icosahedron face, and straight lines of a gnomonic
// projection are great circles: a hexagon that lies on one face is the
// spherical polygon of its six vertices, convex, and a point is inside it
// exactly when it is on the inner side of the six great circles through
// consecutive vertices. locator keeps, per cell it met, the inward unit
// normals of those circles, and per grid square of one cell edge (in
// degrees of latitude and of longitude alike) the last four cells found in
// it. A point inside one of its
// square's cells by a margin (1e-8 rad, 6 cm: far above the rounding of
// H3's own arithmetic, about 1e-15 rad) is in that cell; any other point
// goes to H3, and its cell joins its square's. A square of one edge meets
// four hexagons at most but for rare spots, so once a city's squares have
// seen their cells (loading a fleet does that), nearly every update and
// query is answered without H3, however its drivers are spread. Squares of
// half an edge were four times as many: over New York at resolution 9
// (357,000 of them) they overfilled the table, and 31% of warm lookups
// went to H3; with squares of one edge 0.8% do
// (TestLocatorWarmCityStaysInGo).
//
// Pentagons, hexagons with distortion vertices (Class III cells crossing a
// face edge) and cells on two faces have no fast path: they always go to
// H3. TestLocatorAgreesWithH3 checks the answers against H3 over the whole
// sphere, poles and antimeridian included, and FuzzLocator over any input.
//
// Bounds: a fixed table of 2^18 squares per fine resolution (10 MiB), and
// at most 2^17 cells with their normals (about 25 MiB); past that, new
// cells go to H3 every time. Concurrency: squares are read and written with
// atomics and no lock; a square read while another goroutine rewrites it
// may show a cell of another square, which that cell's own polygon test
// then refuses: a race costs a cgo call, never a wrong answer. Cells are
// added under a mutex and read through the squares.
type locator struct {
	res    int
	perDeg float64 // grid squares per degree
	slots  []locSlot

	mu    sync.Mutex
	cells map[h3.Cell]*cellPoly
}

const (
	locSlotBits = 18
	locMaxCells = 1 << 17
	// locMargin is how far inside a cell's edges, in radians, a point must
	// be to skip H3.
	locMargin = 1e-8
)

// locSlot is one grid square: its key and the cells found in it.
type locSlot struct {
	key   atomic.Uint64 // grid square + 1; 0: empty
	next  atomic.Uint32 // the candidate to replace next when all are taken
	cands [4]atomic.Pointer[cellPoly]
}

// cellPoly is a cell with, when it has a fast path, the inward unit normals
// of the great circles through its consecutive vertices.
type cellPoly struct {
	cell h3.Cell
	fast bool
	n    [6][3]float64
}

var locators [h3.MaxResolution + 1]struct {
	once sync.Once
	l    *locator
}

// locatorFor returns the shared locator of resolution res.
func locatorFor(res int) *locator {
	e := &locators[res]
	e.once.Do(func() { e.l = newLocator(res) })
	return e.l
}

func newLocator(res int) *locator {
	edgeDeg := h3.HexagonEdgeLengthAvgKm(res) / 111.2
	return &locator{res: res, perDeg: 1 / edgeDeg, slots: make([]locSlot, 1<<locSlotBits), cells: make(map[h3.Cell]*cellPoly)}
}

// unitVector returns p (degrees, valid) as a point of the unit sphere.
func unitVector(lat, lng float64) [3]float64 {
	const radPerDeg = math.Pi / 180
	sLat, cLat := math.Sincos(lat * radPerDeg)
	sLng, cLng := math.Sincos(lng * radPerDeg)
	return [3]float64{cLat * cLng, cLat * sLng, sLat}
}

// square returns the slot of the grid square of (lat, lng) and its key.
func (l *locator) square(lat, lng float64) (*locSlot, uint64) {
	// At most 180 / (0.5 m / 111.2 km) ≈ 4e7 rows (26 bits) and twice
	// as many columns (27 bits, under the 28 the key gives them) at
	// resolution 15.
	row := uint64((lat + 90) * l.perDeg)
	col := uint64((lng + 180) * l.perDeg)
	key := (row<<28 | col) + 1
	return &l.slots[(key*0x9E3779B97F4A7C15)>>(64-locSlotBits)], key
}

// cell returns the H3 cell of the valid position (lat, lng) at the
// locator's resolution: the answer of h3.LatLngToCell.
func (l *locator) cell(lat, lng float64) h3.Cell {
	if c, ok := l.known(lat, lng); ok {
		return c
	}
	s, key := l.square(lat, lng)
	c := h3.LatLngToCell(h3.LatLng{Lat: lat, Lng: lng}, l.res)
	if p := l.poly(c); p != nil && p.fast {
		if s.key.Load() != key { // the square's first cell, or a collision
			for i := range s.cands {
				s.cands[i].Store(nil)
			}
			s.key.Store(key)
		}
		s.cands[s.next.Add(1)%uint32(len(s.cands))].Store(p)
	}
	return c
}

// known returns the cell of (lat, lng) when one of its square's cells
// holds it (the pure-Go path of cell).
func (l *locator) known(lat, lng float64) (h3.Cell, bool) {
	s, key := l.square(lat, lng)
	if s.key.Load() == key {
		v := unitVector(lat, lng)
		for i := range s.cands {
			if p := s.cands[i].Load(); p != nil && p.contains(v) {
				return p.cell, true
			}
		}
	}
	return 0, false
}

// contains reports whether v lies inside the cell's six great circles by
// at least locMargin.
func (p *cellPoly) contains(v [3]float64) bool {
	for i := range p.n {
		n := &p.n[i]
		if n[0]*v[0]+n[1]*v[1]+n[2]*v[2] <= locMargin {
			return false
		}
	}
	return true
}

// poly returns the polygon of c, computing it on first use; nil when the
// table of cells is full.
func (l *locator) poly(c h3.Cell) *cellPoly {
	l.mu.Lock()
	defer l.mu.Unlock()
	if p, ok := l.cells[c]; ok {
		return p
	}
	if len(l.cells) >= locMaxCells {
		return nil
	}
	p := newCellPoly(c)
	l.cells[c] = p
	return p
}

// newCellPoly computes the normals of c (three cgo calls, once per cell);
// fast is false for a cell the polygon test may not decide exactly.
func newCellPoly(c h3.Cell) *cellPoly {
	p := &cellPoly{cell: c}
	if c.IsPentagon() || len(c.IcosahedronFaces()) != 1 {
		return p
	}
	b := c.Boundary()
	if len(b) != 6 {
		return p
	}
	center := c.LatLng()
	cv := unitVector(center.Lat, center.Lng)
	for i := range 6 {
		a := unitVector(b[i].Lat, b[i].Lng)
		z := unitVector(b[(i+1)%6].Lat, b[(i+1)%6].Lng)
		n := [3]float64{a[1]*z[2] - a[2]*z[1], a[2]*z[0] - a[0]*z[2], a[0]*z[1] - a[1]*z[0]}
		norm := math.Sqrt(n[0]*n[0] + n[1]*n[1] + n[2]*n[2])
		if !(norm > 0) {
			return p
		}
		for k := range n {
			n[k] /= norm
		}
		if n[0]*cv[0]+n[1]*cv[1]+n[2]*cv[2] < 0 { // the boundary runs clockwise
			for k := range n {
				n[k] = -n[k]
			}
		}
		p.n[i] = n
	}
	// Convex and around its center, and much larger than the margin: the
	// center is inside every circle by ten margins. Otherwise (and at
	// resolution 15, whose cells are 0.5 m wide) leave the cell to H3.
	for i := range p.n {
		n := &p.n[i]
		if n[0]*cv[0]+n[1]*cv[1]+n[2]*cv[2] <= 10*locMargin {
			return p
		}
	}
	p.fast = true
	return p
}

package shardmap

import (
	"fmt"
	"maps"
	"slices"

	"github.com/geomatch/geomatch/internal/geo"
)

// MaxSplitDepthLimit is the largest MaxSplitDepth a Layout accepts: a shard
// can be split into at most 7^3 = 343 descendants.
const MaxSplitDepthLimit = 3

// Layout is the shard set: every H3 cell at the shard resolution Res is a
// shard, except the split cells, which are replaced by their 7 children (6
// under a pentagon), recursively, down to at most MaxSplitDepth levels below
// Res. The shards partition the globe: every point belongs to exactly one.
//
// A point's shard is decided from its fine cell, the H3 cell at FineRes =
// Res+MaxSplitDepth: the shard is the first ancestor of the fine cell, from
// resolution Res down, that is not split. A shard's region is therefore the
// union of the hexagons of its descendants at FineRes, which is not exactly
// its own hexagon (H3 children stick out of their parent a little); Cover
// accounts for that.
//
// A Layout is immutable and safe for concurrent use.
type Layout struct {
	res     int
	depth   int
	fineRes int
	// split holds the split cells; every split cell's ancestors down to Res
	// are split too (NewLayout checks it).
	split map[Cell]struct{}
	// splitList is split, sorted.
	splitList []Cell
	// circ[r] is circMaxM(r), for every resolution.
	circ [maxRes + 1]float64
	// reach[r] (Res <= r <= FineRes) bounds the distance from the center of
	// a cell at resolution r to any point of its region; see cover.go.
	reach [maxRes + 1]float64
	// expand is the margin of Cover's walk at Res; see cover.go.
	expand float64
}

// NewLayout returns the layout with shard resolution res, at most
// maxSplitDepth levels of splitting, and the given split cells (in any
// order). It checks that 0 <= res, 0 <= maxSplitDepth <= 3,
// res+maxSplitDepth <= 15, and that every split cell is a valid H3 cell,
// appears once, has a resolution in [res, res+maxSplitDepth-1], and, when it
// is finer than res, has a split parent (so the shards always partition the
// globe).
func NewLayout(res, maxSplitDepth int, splits []Cell) (*Layout, error) {
	switch {
	case res < 0 || res > maxRes:
		return nil, fmt.Errorf("shard resolution %d: must be within [0, %d]", res, maxRes)
	case maxSplitDepth < 0 || maxSplitDepth > MaxSplitDepthLimit:
		return nil, fmt.Errorf("max split depth %d: must be within [0, %d]", maxSplitDepth, MaxSplitDepthLimit)
	case res+maxSplitDepth > maxRes:
		return nil, fmt.Errorf("shard resolution %d + max split depth %d: must not exceed %d", res, maxSplitDepth, maxRes)
	}
	l := &Layout{
		res:     res,
		depth:   maxSplitDepth,
		fineRes: res + maxSplitDepth,
		split:   make(map[Cell]struct{}, len(splits)),
	}
	for _, c := range splits {
		if !validCell(c) {
			return nil, fmt.Errorf("split cell %s: not a valid H3 cell", c)
		}
		r := Resolution(c)
		if r < res || r >= l.fineRes {
			return nil, fmt.Errorf("split cell %s: resolution %d outside [%d, %d] (shard resolution %d, max split depth %d)",
				c, r, res, l.fineRes-1, res, maxSplitDepth)
		}
		if _, dup := l.split[c]; dup {
			return nil, fmt.Errorf("split cell %s: listed twice", c)
		}
		l.split[c] = struct{}{}
	}
	l.splitList = slices.Sorted(maps.Keys(l.split))
	for _, c := range l.splitList { // sorted: the same error everywhere
		if r := Resolution(c); r > res {
			if p := Parent(c, r-1); !l.isSplit(p) {
				return nil, fmt.Errorf("split cell %s: its parent %s is not split", c, p)
			}
		}
	}
	for r := range l.circ {
		l.circ[r] = circMaxM(r)
	}
	l.reach[l.fineRes] = l.circ[l.fineRes]
	for r := l.fineRes - 1; r >= res; r-- {
		l.reach[r] = childMaxM(r) + l.reach[r+1]
	}
	l.expand = l.circ[res]
	if l.fineRes > res {
		l.expand += l.reach[res+1]
	}
	return l, nil
}

// Res returns the shard resolution: unsplit shards are cells at Res.
func (l *Layout) Res() int { return l.res }

// MaxSplitDepth returns how many levels below Res a shard can be split.
func (l *Layout) MaxSplitDepth() int { return l.depth }

// FineRes returns Res+MaxSplitDepth, the resolution of the fine cells that
// decide which shard a point is in.
func (l *Layout) FineRes() int { return l.fineRes }

// Splits returns the split cells, sorted, as a new slice.
func (l *Layout) Splits() []Cell { return slices.Clone(l.splitList) }

func (l *Layout) isSplit(c Cell) bool {
	_, ok := l.split[c]
	return ok
}

// FineCell returns the H3 cell of p at FineRes, h3.LatLngToCell's answer.
// It returns 0 when p is not a valid position. Most positions are answered
// in pure Go from the cells seen before (about 40 ns, no allocation; see
// locator); the rest take a cgo call (about 1 µs).
func (l *Layout) FineCell(p geo.LatLng) Cell {
	if p.Validate() != nil {
		return 0
	}
	return locatorFor(l.fineRes).cell(p.Lat, p.Lng)
}

// ShardOfFine returns the shard containing the fine cell fine: the first
// ancestor of fine, from resolution Res down, that is not split. It is pure
// Go (no cgo) and does not allocate; with no split cells it is one Parent.
//
// fine is meant to be a cell at FineRes (FineCell's result). A cell at a
// resolution between Res and FineRes gets its shard too when it lies inside
// one; ShardOfFine returns 0 when fine is coarser than Res or is itself
// split (it spans several shards).
func (l *Layout) ShardOfFine(fine Cell) Cell {
	r := Resolution(fine)
	if r < l.res || fine == 0 {
		return 0
	}
	if len(l.split) == 0 {
		return Parent(fine, l.res)
	}
	for a := l.res; a <= r; a++ {
		c := Parent(fine, a)
		if !l.isSplit(c) {
			return c
		}
	}
	return 0
}

// ShardOf returns the shard containing p: ShardOfFine(FineCell(p)); 0 when p
// is not a valid position.
func (l *Layout) ShardOf(p geo.LatLng) Cell {
	return l.ShardOfFine(l.FineCell(p))
}

// IsShard reports whether c is one of the layout's shards: a valid cell at
// a resolution in [Res, FineRes] that is not split and whose ancestors down
// to Res are all split. Pure Go, no allocation.
func (l *Layout) IsShard(c Cell) bool {
	r := Resolution(c)
	if r < l.res || r > l.fineRes || !validCell(c) || l.isSplit(c) {
		return false
	}
	// NewLayout guarantees a split cell's ancestors are split, so the
	// parent is enough.
	return r == l.res || l.isSplit(Parent(c, r-1))
}

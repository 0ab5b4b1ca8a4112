package fence

import (
	"sync"

	"github.com/uber/h3-go/v4"

	"github.com/geomatch/geomatch/internal/geo"
)

// maxCachedCells bounds a cellCache (about 100 bytes a cell): a city at
// resolution 9 needs tens of thousands.
const maxCachedCells = 1 << 18

// cellCache remembers the centers and micro boxes of cells, which every
// fence over the same streets needs again and which cost a cgo call each.
// It is safe for concurrent use; once full it stops remembering.
type cellCache struct {
	mu    sync.RWMutex
	cells map[h3.Cell]*cachedCell
}

type cachedCell struct {
	center         geo.LatLng
	box            microBox
	hasCtr, hasBox bool
}

// lookup returns what is known of c (a copy), or nil.
func (cc *cellCache) lookup(c h3.Cell) (cachedCell, bool) {
	cc.mu.RLock()
	defer cc.mu.RUnlock()
	e, ok := cc.cells[c]
	if !ok {
		return cachedCell{}, false
	}
	return *e, true
}

// store records what fill sets on c's entry.
func (cc *cellCache) store(c h3.Cell, fill func(*cachedCell)) {
	cc.mu.Lock()
	defer cc.mu.Unlock()
	if cc.cells == nil {
		cc.cells = make(map[h3.Cell]*cachedCell)
	}
	e := cc.cells[c]
	if e == nil {
		if len(cc.cells) >= maxCachedCells {
			return
		}
		e = &cachedCell{}
		cc.cells[c] = e
	}
	fill(e)
}

// center returns c's center.
func (cc *cellCache) center(c h3.Cell) geo.LatLng {
	if cc == nil {
		return cellCenter(c)
	}
	if e, ok := cc.lookup(c); ok && e.hasCtr {
		return e.center
	}
	p := cellCenter(c)
	cc.store(c, func(e *cachedCell) { e.center, e.hasCtr = p, true })
	return p
}

// box returns c's micro box.
func (cc *cellCache) box(c h3.Cell) microBox {
	if cc == nil {
		return newMicroBox(c)
	}
	if e, ok := cc.lookup(c); ok && e.hasBox {
		return e.box
	}
	b := newMicroBox(c)
	cc.store(c, func(e *cachedCell) { e.box, e.hasBox = b, true })
	return b
}

package index

import "hash/maphash"

// dirParts is the number of independent hash tables of a directory. Growing
// one rehashes only its share, so the pause (under the directory lock) stays
// short even with millions of drivers.
const dirParts = 64

// directory maps driver ids to slots: open addressing with linear probing
// over 4-byte cells, the id being read from the arena. A cell holds the slot
// in its low slotBits bits and seven bits of the id's hash (its tag, never
// 0) above them, 0 when empty, so a probe reads an id (a cache miss at
// scale) only when the tag matches, about once a lookup instead of once a
// probe. The cells hold no pointers. It is not safe for concurrent use;
// Index guards it with dirMu.
type directory struct {
	seed  maphash.Seed
	idOf  func(slot int32) string
	n     int
	parts [dirParts]dirPart
}

// dirPart is one table: len(cells) is zero or a power of two, at most 3/4
// full, at least 1/8 full once it has grown.
type dirPart struct {
	cells []uint32 // tag<<slotBits | slot; 0 for an empty cell
	n     int
}

const (
	minDirSlots = 8
	// slotBits is the width of a slot number in a cell: it bounds the
	// slots of an index (MaxDrivers) to 1<<slotBits.
	slotBits = 25
	slotMask = 1<<slotBits - 1
)

// newDirectory returns an empty directory reading slots' ids with idOf.
func newDirectory(idOf func(slot int32) string) *directory {
	return &directory{seed: maphash.MakeSeed(), idOf: idOf}
}

func (d *directory) hash(id string) uint64 { return maphash.String(d.seed, id) }

// tag is what a cell keeps of hash h, in place: seven bits the part and
// cell choices do not use, never 0.
func tag(h uint64) uint32 {
	t := uint32(h>>48) & 0x7f
	t |= (t - 1) >> 31 // 0 becomes 1
	return t << slotBits
}

// part picks a table by the top bits of the hash; cells use the low bits.
func (d *directory) part(h uint64) *dirPart { return &d.parts[h>>(64-6)] }

// get returns the slot of id, or -1.
func (d *directory) get(id string) int32 {
	h := d.hash(id)
	p := d.part(h)
	if p.n == 0 {
		return -1
	}
	mask := uint64(len(p.cells) - 1)
	t := tag(h)
	for i := h & mask; ; i = (i + 1) & mask {
		c := p.cells[i]
		if c == 0 {
			return -1
		}
		if c&^slotMask == t {
			if s := int32(c & slotMask); d.idOf(s) == id {
				return s
			}
		}
	}
}

// put adds slot s, whose id must not be in d.
func (d *directory) put(s int32) {
	h := d.hash(d.idOf(s))
	p := d.part(h)
	if (p.n+1)*4 > len(p.cells)*3 {
		d.resize(p, max(minDirSlots, 2*len(p.cells)))
	}
	p.insert(h, s)
	p.n++
	d.n++
}

func (p *dirPart) insert(h uint64, s int32) {
	mask := uint64(len(p.cells) - 1)
	i := h & mask
	for p.cells[i] != 0 {
		i = (i + 1) & mask
	}
	p.cells[i] = tag(h) | uint32(s)
}

// del removes slot s, which must be in d, shifting later cells of its probe
// run back so lookups need no deletion markers.
func (d *directory) del(s int32) {
	h := d.hash(d.idOf(s))
	p := d.part(h)
	mask := uint64(len(p.cells) - 1)
	i := h & mask
	for p.cells[i]&slotMask != uint32(s) {
		i = (i + 1) & mask
	}
	for j := (i + 1) & mask; p.cells[j] != 0; j = (j + 1) & mask {
		// The cell at j may fill the hole at i unless its home cell lies
		// cyclically in (i, j].
		home := d.hash(d.idOf(int32(p.cells[j]&slotMask))) & mask
		if (j > i && (home <= i || home > j)) || (j < i && home <= i && home > j) {
			p.cells[i] = p.cells[j]
			i = j
		}
	}
	p.cells[i] = 0
	p.n--
	d.n--
	if len(p.cells) > minDirSlots && p.n*8 < len(p.cells) {
		d.resize(p, len(p.cells)/2)
	}
}

// resize rehashes p into size cells.
func (d *directory) resize(p *dirPart, size int) {
	old := p.cells
	p.cells = make([]uint32, size)
	for _, c := range old {
		if c != 0 {
			s := int32(c & slotMask)
			p.insert(d.hash(d.idOf(s)), s)
		}
	}
}

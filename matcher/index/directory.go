package index

import "hash/maphash"

// dirParts is the number of independent hash tables of a directory. Growing
// one rehashes only its share, so the pause (under the directory lock) stays
// short even with millions of drivers.
const dirParts = 64

// directory maps driver ids to entries: open addressing with linear probing
// over slots that hold only the entry pointer, the id being read from the
// entry. That is 8 bytes a slot instead of the 24 (string key + pointer) of a
// map[string]*entry, about 45 bytes less per driver. A byte a slot more
// holds seven bits of the id's hash (tags), so a probe reads an entry (and
// its id: two cache misses at scale) only when the tag matches, about once
// a lookup instead of once a probe. It is not safe for concurrent use;
// Index guards it with dirMu.
type directory struct {
	seed  maphash.Seed
	n     int
	parts [dirParts]dirPart
}

// dirPart is one table: len(slots) is zero or a power of two, at most 3/4
// full, at least 1/8 full once it has grown.
type dirPart struct {
	slots []*entry
	tags  []uint8 // tag of slots[i]'s id; 0 for an empty slot
	n     int
}

const minDirSlots = 8

func newDirectory() *directory { return &directory{seed: maphash.MakeSeed()} }

func (d *directory) hash(id string) uint64 { return maphash.String(d.seed, id) }

// tag is what tags keeps of hash h: bits the part and slot choices do not
// use, never 0.
func tag(h uint64) uint8 { return uint8(h>>48) | 0x80 }

// part picks a table by the top bits of the hash; slots use the low bits.
func (d *directory) part(h uint64) *dirPart { return &d.parts[h>>(64-6)] }

// get returns the entry of id, or nil.
func (d *directory) get(id string) *entry {
	h := d.hash(id)
	p := d.part(h)
	if p.n == 0 {
		return nil
	}
	mask := uint64(len(p.slots) - 1)
	t := tag(h)
	for i := h & mask; ; i = (i + 1) & mask {
		switch p.tags[i] {
		case 0:
			return nil
		case t:
			if e := p.slots[i]; e.id == id {
				return e
			}
		}
	}
}

// put adds e, whose id must not be in d.
func (d *directory) put(e *entry) {
	h := d.hash(e.id)
	p := d.part(h)
	if (p.n+1)*4 > len(p.slots)*3 {
		d.resize(p, max(minDirSlots, 2*len(p.slots)))
	}
	p.insert(h, e)
	p.n++
	d.n++
}

func (p *dirPart) insert(h uint64, e *entry) {
	mask := uint64(len(p.slots) - 1)
	i := h & mask
	for p.tags[i] != 0 {
		i = (i + 1) & mask
	}
	p.slots[i], p.tags[i] = e, tag(h)
}

// del removes e, which must be in d, shifting later entries of its probe run
// back so lookups need no deletion markers.
func (d *directory) del(e *entry) {
	p := d.part(d.hash(e.id))
	mask := uint64(len(p.slots) - 1)
	i := d.hash(e.id) & mask
	for p.slots[i] != e {
		i = (i + 1) & mask
	}
	for j := (i + 1) & mask; p.slots[j] != nil; j = (j + 1) & mask {
		// The entry at j may fill the hole at i unless its home slot lies
		// cyclically in (i, j].
		home := d.hash(p.slots[j].id) & mask
		if (j > i && (home <= i || home > j)) || (j < i && home <= i && home > j) {
			p.slots[i], p.tags[i] = p.slots[j], p.tags[j]
			i = j
		}
	}
	p.slots[i], p.tags[i] = nil, 0
	p.n--
	d.n--
	if len(p.slots) > minDirSlots && p.n*8 < len(p.slots) {
		d.resize(p, len(p.slots)/2)
	}
}

// resize rehashes p into size slots.
func (d *directory) resize(p *dirPart, size int) {
	old := p.slots
	p.slots, p.tags = make([]*entry, size), make([]uint8, size)
	for _, e := range old {
		if e != nil {
			p.insert(d.hash(e.id), e)
		}
	}
}

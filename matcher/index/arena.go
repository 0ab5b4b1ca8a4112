package index

import (
	"encoding/binary"
	"sync/atomic"
	"unsafe"
)

// Driver ids live in one byte arena, each behind a uvarint length, and a
// driver records only the id's 32-bit offset. The arena is split into pages
// of arenaPageSize bytes; an offset is a page number and a position in it.
// Bytes once written are never changed: Get and Nearby hand out ids as
// strings that point into the arena (no copy, no allocation), and those
// strings keep their page alive after the index lets go of it.
//
// Freed ids leave holes. A page other than the one being filled whose
// live bytes fall below a quarter is evacuated: its live ids are copied to
// the page being filled (Index.evacuate) and the page is dropped, its
// number reused. Arena memory therefore stays within about four times the
// live ids in the worst case, and close to them under ordinary churn (ids
// are freed in roughly the order they were added).
const (
	arenaPageBits = 16
	arenaPageSize = 1 << arenaPageBits
	arenaPageMask = arenaPageSize - 1
	// maxIDLen bounds an id's length so a region always fits in a page.
	maxIDLen = 4096
)

// arena holds the ids. The writer adds and frees; readers read the ids of
// slots whose offsets they read under a lock the writer holds to change
// them (see Index.evacuate).
type arena struct {
	pages atomic.Pointer[[]*[arenaPageSize]byte]
	cur   int32   // page being filled; -1 before the first id
	used  []int32 // bytes written into each page (writer only)
	live  []int32 // bytes of each page still in use (writer only)
	spare []int32 // numbers of dropped pages, for reuse
}

func newArena() *arena {
	a := &arena{cur: -1}
	a.pages.Store(new([]*[arenaPageSize]byte))
	return a
}

// region returns the length of the region id takes: its uvarint length and
// its bytes.
func region(id string) int32 {
	var b [binary.MaxVarintLen32]byte
	return int32(binary.PutUvarint(b[:], uint64(len(id))) + len(id))
}

// add copies id into the arena and returns its offset. Writer only; id
// must be at most maxIDLen bytes.
func (a *arena) add(id string) uint32 {
	n := region(id)
	if a.cur < 0 || a.used[a.cur]+n > arenaPageSize {
		a.newPage()
	}
	p := (*a.pages.Load())[a.cur]
	at := a.used[a.cur]
	w := binary.PutUvarint(p[at:], uint64(len(id)))
	copy(p[at+int32(w):], id)
	a.used[a.cur] += n
	a.live[a.cur] += n
	return uint32(a.cur)<<arenaPageBits | uint32(at)
}

// newPage starts a new page to fill, reusing a dropped page's number.
func (a *arena) newPage() {
	pages := *a.pages.Load()
	var num int32
	if n := len(a.spare); n > 0 {
		num = a.spare[n-1]
		a.spare = a.spare[:n-1]
	} else {
		num = int32(len(pages))
		a.used = append(a.used, 0)
		a.live = append(a.live, 0)
	}
	next := make([]*[arenaPageSize]byte, max(len(pages), int(num)+1))
	copy(next, pages)
	next[num] = new([arenaPageSize]byte)
	a.pages.Store(&next)
	a.cur, a.used[num], a.live[num] = num, 0, 0
}

// id returns the id at off, as a string sharing the arena's bytes.
func (a *arena) id(off uint32) string {
	p := (*a.pages.Load())[off>>arenaPageBits]
	at := off & arenaPageMask
	if n := p[at]; n < 0x80 { // the usual one-byte length
		return unsafe.String(&p[at+1], int(n))
	}
	n, w := binary.Uvarint(p[at:])
	return unsafe.String(&p[at+uint32(w)], int(n))
}

// free gives back the region of the id at off, and reports the page to
// evacuate, or -1. Writer only.
func (a *arena) free(off uint32) int32 {
	num := int32(off >> arenaPageBits)
	a.live[num] -= region(a.id(off))
	if !a.sparse(num) {
		return -1
	}
	return num
}

// sparse reports whether page num is to be evacuated: present, not the
// page being filled, and less than a quarter in use.
func (a *arena) sparse(num int32) bool {
	return num != a.cur && (*a.pages.Load())[num] != nil && a.live[num]*4 < arenaPageSize
}

// drop forgets page num, whose live ids have all moved. Writer only.
func (a *arena) drop(num int32) {
	pages := *a.pages.Load()
	next := make([]*[arenaPageSize]byte, len(pages))
	copy(next, pages)
	next[num] = nil
	a.pages.Store(&next)
	a.used[num], a.live[num] = 0, 0
	a.spare = append(a.spare, num)
}

// regions calls fn with the offset and id of every region of page num,
// live or not. Writer only.
func (a *arena) regions(num int32, fn func(off uint32, id string)) {
	for at := int32(0); at < a.used[num]; {
		off := uint32(num)<<arenaPageBits | uint32(at)
		id := a.id(off)
		fn(off, id)
		at += region(id)
	}
}

// bytes is the arena's size: its pages.
func (a *arena) bytes() int {
	return (len(*a.pages.Load()) - len(a.spare)) * arenaPageSize
}

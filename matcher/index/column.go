package index

import "sync/atomic"

// Driver slots are int32 numbers; each field of a driver lives in a column
// indexed by its slot. A column is made of pages of pageSize values that
// never move once allocated, so a reader holding the lock that guards a
// slot's field can read it while the writer adds pages for new slots: the
// page table is replaced (copy on write) and loaded atomically, never
// changed in place. Pages hold no pointers, so the collector never scans
// them.
const (
	pageBits = 12
	pageSize = 1 << pageBits
	pageMask = pageSize - 1
)

// column is one field of every slot. T must hold no pointers.
type column[T any] struct {
	pages atomic.Pointer[[]*[pageSize]T]
}

// at returns the field of slot s, which must be below the column's length.
func (c *column[T]) at(s int32) *T {
	return &(*c.pages.Load())[s>>pageBits][s&pageMask]
}

// grow makes room for slots below n. Writer only.
func (c *column[T]) grow(n int32) {
	var cur []*[pageSize]T
	if p := c.pages.Load(); p != nil {
		cur = *p
	}
	need := (int(n) + pageSize - 1) >> pageBits
	if need <= len(cur) {
		return
	}
	next := make([]*[pageSize]T, need)
	copy(next, cur)
	for i := len(cur); i < need; i++ {
		next[i] = new([pageSize]T)
	}
	c.pages.Store(&next)
}

// slotTable is the per-slot state of an index, in three columns: what a
// query reads of a driver it returns (one cache line miss), the driver's
// point index in its shard, and the writer's receive-time bookkeeping.
type slotTable struct {
	n     int32 // slots handed out so far (the high-water mark)
	free  int32 // first free slot, chained through links.next; -1 when none
	hot   column[slotHot]
	pos   column[int32] // index of a live driver's point in its shard; written under the shard's lock
	links column[slotLinks]
}

// slotHot is what queries read of a slot, written under the lock of the
// slot's shard (shard also atomically, for Get), or by the writer alone
// while the slot is a tombstone.
type slotHot struct {
	ts    int64  // client timestamp of the last applied update (tombstone: newest superseded)
	idOff uint32 // offset of the id in the arena
	shard int32  // shard number of a live driver, -1 for a tombstone
}

// slotLinks is the writer's alone.
type slotLinks struct {
	recv       int64 // receive time of the last update, or when the tombstone was made
	prev, next int32 // receive-time list links (live or tombstone list); -1 at the ends
}

// alloc returns a free slot, in no shard, or -1 when maxSlots are in use.
// Writer only. A slot from the free list is a released tombstone, already in
// no shard.
func (t *slotTable) alloc(maxSlots int) int32 {
	if s := t.free; s >= 0 {
		t.free = t.links.at(s).next
		return s
	}
	if int(t.n) >= maxSlots {
		return -1
	}
	s := t.n
	t.n++
	if s&pageMask == 0 {
		t.hot.grow(t.n)
		t.pos.grow(t.n)
		t.links.grow(t.n)
	}
	// A new page's fields are zero, and shard 0 is a real shard: Get, which
	// finds a slot through the directory before the writer has put it in
	// its shard, must see it as in no shard rather than read shard 0's
	// points under shard 0's lock while the writer fills them in.
	atomic.StoreInt32(&t.hot.at(s).shard, -1)
	return s
}

// release puts s back on the free list. Writer only.
func (t *slotTable) release(s int32) {
	t.links.at(s).next = t.free
	t.free = s
}

package index

// list is a doubly-linked list of slots, linked through the prev and next
// columns, ordered by receive time, oldest first. A slot is in at most one
// list at a time (live or tombstones). Only the writer touches lists and
// links.
type list struct {
	head, tail int32 // -1 when empty
	n          int
}

func newList() list { return list{head: -1, tail: -1} }

// pushBack appends s, which must not be in a list.
func (l *list) pushBack(t *slotTable, s int32) {
	t.links.at(s).prev, t.links.at(s).next = l.tail, -1
	if l.tail >= 0 {
		t.links.at(l.tail).next = s
	} else {
		l.head = s
	}
	l.tail = s
	l.n++
}

// remove unlinks s, which must be in l.
func (l *list) remove(t *slotTable, s int32) {
	prev, next := t.links.at(s).prev, t.links.at(s).next
	if prev >= 0 {
		t.links.at(prev).next = next
	} else {
		l.head = next
	}
	if next >= 0 {
		t.links.at(next).prev = prev
	} else {
		l.tail = prev
	}
	t.links.at(s).prev, t.links.at(s).next = -1, -1
	l.n--
}

// moveToBack makes s, which must be in l, the newest element.
func (l *list) moveToBack(t *slotTable, s int32) {
	if l.tail == s {
		return
	}
	l.remove(t, s)
	l.pushBack(t, s)
}

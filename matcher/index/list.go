package index

// list is an intrusive doubly-linked list of entries ordered by receive time,
// oldest first. An entry is in at most one list at a time (live or
// tombstones). Only the writer touches lists and links.
type list struct {
	head, tail *entry
	n          int
}

// pushBack appends e, which must not be in a list.
func (l *list) pushBack(e *entry) {
	e.prev, e.next = l.tail, nil
	if l.tail != nil {
		l.tail.next = e
	} else {
		l.head = e
	}
	l.tail = e
	l.n++
}

// remove unlinks e, which must be in l.
func (l *list) remove(e *entry) {
	if e.prev != nil {
		e.prev.next = e.next
	} else {
		l.head = e.next
	}
	if e.next != nil {
		e.next.prev = e.prev
	} else {
		l.tail = e.prev
	}
	e.prev, e.next = nil, nil
	l.n--
}

// moveToBack makes e, which must be in l, the newest element.
func (l *list) moveToBack(e *entry) {
	if l.tail == e {
		return
	}
	l.remove(e)
	l.pushBack(e)
}

package client

import geomatchv1 "github.com/geomatch/geomatch/proto/geomatch/v1"

// unacked holds a driver session's location updates that the router has
// not acknowledged yet, oldest first, at most limit of them: a ring
// buffer. When it is full, the oldest update is dropped to make room: an
// older position of the same driver is superseded by every newer one, so
// losing it loses nothing a reconnect needs (the newest position and
// status). It is plain data, not safe for concurrent use.
type unacked struct {
	buf     []*geomatchv1.LocationUpdate
	head, n int
	// dropped counts updates pushed out by newer ones before their ack.
	dropped int64
}

func newUnacked(limit int) *unacked {
	return &unacked{buf: make([]*geomatchv1.LocationUpdate, limit)}
}

func (q *unacked) len() int { return q.n }

func (q *unacked) at(i int) *geomatchv1.LocationUpdate { return q.buf[(q.head+i)%len(q.buf)] }

// add keeps u until an ack covers it.
func (q *unacked) add(u *geomatchv1.LocationUpdate) {
	if q.n == len(q.buf) {
		q.buf[q.head] = nil
		q.head = (q.head + 1) % len(q.buf)
		q.n--
		q.dropped++
	}
	q.buf[(q.head+q.n)%len(q.buf)] = u
	q.n++
}

// ack forgets every update with a timestamp at or before through (the
// router applied or rejected them), wherever it is in the buffer.
func (q *unacked) ack(through int64) {
	q.filter(func(u *geomatchv1.LocationUpdate) bool { return u.GetTimestampMs() > through })
}

// reject forgets the updates with timestamp ts: the router refused them
// and says so; sending them again would be refused again.
func (q *unacked) reject(ts int64) {
	q.filter(func(u *geomatchv1.LocationUpdate) bool { return u.GetTimestampMs() != ts })
}

// filter keeps the updates keep says yes to, in order.
func (q *unacked) filter(keep func(*geomatchv1.LocationUpdate) bool) {
	// The common case: acks come in order and remove a prefix.
	for q.n > 0 && !keep(q.buf[q.head]) {
		q.buf[q.head] = nil
		q.head = (q.head + 1) % len(q.buf)
		q.n--
	}
	w := 0
	for r := 0; r < q.n; r++ {
		u := q.at(r)
		if keep(u) {
			q.buf[(q.head+w)%len(q.buf)] = u
			w++
		}
	}
	for i := w; i < q.n; i++ {
		q.buf[(q.head+i)%len(q.buf)] = nil
	}
	q.n = w
}

// replay returns what to send again on a new stream: every update kept,
// oldest first, or with newestOnly just the newest (the one that says
// where the driver is and what its status is). The buffer keeps them
// until acked.
func (q *unacked) replay(newestOnly bool) []*geomatchv1.LocationUpdate {
	if q.n == 0 {
		return nil
	}
	if newestOnly {
		return []*geomatchv1.LocationUpdate{q.at(q.n - 1)}
	}
	out := make([]*geomatchv1.LocationUpdate, q.n)
	for i := range out {
		out[i] = q.at(i)
	}
	return out
}

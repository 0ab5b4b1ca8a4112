package events

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"
	"unsafe"
)

// MemoryConfig configures NewMemory.
type MemoryConfig struct {
	// Partitions is the number of partitions. Default 8, as the Redis
	// log's, so a cursor's shape is the same in dev and production.
	Partitions int
	// Retention is how many records each partition keeps at most; older
	// ones are trimmed. Default 100_000.
	Retention int
	// MaxBytes bounds the memory the log keeps in all partitions (the
	// records' payloads and strings plus their slots), shared equally
	// among them; a partition over its share trims its oldest records even
	// below Retention. Default 32 MiB: about 150,000 events of about 200
	// bytes with their slots, a long while of a dev cluster's fence
	// traffic, without the log growing with the fleet (1M drivers coming
	// online are 1M lifecycle events, 190 MB kept whole).
	MaxBytes int64
}

// Defaults of MemoryConfig.
const (
	DefaultPartitions      = 8
	DefaultMemoryRetention = 100_000
	DefaultMemoryBytes     = 32 << 20
)

// slotSize is what a record costs beside its bytes: its slot in a ring.
const slotSize = int64(unsafe.Sizeof(memRecord{}))

// firstRing is a partition ring's first size: rings grow by doubling up to
// Retention (and while they fit the partition's bytes) as records
// arrive, so an idle log holds little.
const firstRing = 16

// maxPartitions bounds the partition count of a log: cursors carry a
// position per partition, and a cursor should stay small.
const maxPartitions = 1024

func (c *MemoryConfig) setDefaults() error {
	if c.Partitions == 0 {
		c.Partitions = DefaultPartitions
	}
	if c.Retention == 0 {
		c.Retention = DefaultMemoryRetention
	}
	if c.MaxBytes == 0 {
		c.MaxBytes = DefaultMemoryBytes
	}
	if c.Partitions < 0 || c.Partitions > maxPartitions {
		return fmt.Errorf("partitions %d not in [1, %d]", c.Partitions, maxPartitions)
	}
	if c.Retention < 0 {
		return fmt.Errorf("retention %d is negative", c.Retention)
	}
	if c.MaxBytes < 0 {
		return fmt.Errorf("max bytes %d is negative", c.MaxBytes)
	}
	return nil
}

// Memory is a Log in process memory: each partition a ring buffer of its
// newest records (at most Retention, and at most its share of MaxBytes),
// numbered from 1 (Position{Seq: n}). It is as
// durable as the process — for geomatch dev and tests. Safe for
// concurrent use; a waiting Read sleeps on a broadcast channel that the
// next Append closes, never polling.
type Memory struct {
	n         int
	retention int   // records a partition keeps at most
	budget    int64 // bytes a partition keeps at most

	mu      sync.Mutex
	parts   []memPartition
	notify  chan struct{} // closed and replaced by an Append when waiting
	waiting bool          // a Read holds notify
}

// memPartition is one partition's ring: the record numbered seq is at
// ring[(seq-1) % len(ring)] while first <= seq < next.
type memPartition struct {
	ring  []memRecord
	first uint64 // oldest retained (next when empty)
	next  uint64 // number of the next record appended
	bytes int64  // bytes of the records retained, beside their slots
}

// memRecord is a record as a partition keeps it: its strings and payload
// back to back in buf, a piece of its batch's buffer that is never written
// again, so a slot is 56 bytes holding one pointer (a Record is 104 with
// five).
type memRecord struct {
	buf                             []byte // ID, Key, Set, FenceID, Payload
	timeMs                          int64
	idLen, keyLen, setLen, fenceLen uint32
	kind                            Kind
}

// record returns the Record r holds; its strings and payload share r's
// buffer, which nothing writes again.
func (r *memRecord) record() Record {
	b := r.buf
	cut := func(n uint32) string {
		if n == 0 {
			return ""
		}
		s := unsafe.String(&b[0], n)
		b = b[n:]
		return s
	}
	out := Record{Kind: r.kind, TimeMs: r.timeMs}
	out.ID = cut(r.idLen)
	out.Key = cut(r.keyLen)
	out.Set = cut(r.setLen)
	out.FenceID = cut(r.fenceLen)
	out.Payload = b
	return out
}

// len is the number of records retained.
func (pt *memPartition) len() int { return int(pt.next - pt.first) }

// push appends r as the record numbered next. A full ring grows (doubling,
// up to retention slots, while the partition's records and slots fit
// budget) or else drops its oldest record; then the oldest records are
// trimmed while the partition is over budget, never the one just pushed.
func (pt *memPartition) push(r memRecord, retention int, budget int64) {
	if pt.len() == len(pt.ring) {
		size := min(max(2*len(pt.ring), firstRing), retention)
		if len(pt.ring) == 0 || size > len(pt.ring) && pt.bytes+int64(len(r.buf))+int64(size)*slotSize <= budget {
			pt.grow(size)
		} else {
			pt.trim()
		}
	}
	pt.ring[(pt.next-1)%uint64(len(pt.ring))] = r
	pt.next++
	pt.bytes += int64(len(r.buf))
	for pt.bytes+int64(len(pt.ring))*slotSize > budget && pt.len() > 1 {
		pt.trim()
	}
}

// trim drops the oldest record, clearing its slot so that its bytes can
// be collected.
func (pt *memPartition) trim() {
	i := (pt.first - 1) % uint64(len(pt.ring))
	pt.bytes -= int64(len(pt.ring[i].buf))
	pt.ring[i] = memRecord{}
	pt.first++
}

// grow moves the retained records into a ring of size slots.
func (pt *memPartition) grow(size int) {
	ring := make([]memRecord, size)
	for seq := pt.first; seq < pt.next; seq++ {
		ring[(seq-1)%uint64(size)] = pt.ring[(seq-1)%uint64(len(pt.ring))]
	}
	pt.ring = ring
}

var _ Log = (*Memory)(nil)

// NewMemory returns an empty in-memory log.
func NewMemory(cfg MemoryConfig) (*Memory, error) {
	if err := cfg.setDefaults(); err != nil {
		return nil, fmt.Errorf("memory event log: %w", err)
	}
	m := &Memory{
		n:         cfg.Partitions,
		retention: cfg.Retention,
		budget:    max(cfg.MaxBytes/int64(cfg.Partitions), 1),
		parts:     make([]memPartition, cfg.Partitions),
		notify:    make(chan struct{}),
	}
	for i := range m.parts {
		m.parts[i] = memPartition{first: 1, next: 1}
	}
	return m, nil
}

// Partitions returns the partition count.
func (m *Memory) Partitions() int { return m.n }

// Append stores recs, copying their strings and payloads (into one buffer
// per call: the buffer lives until the batch's last record is trimmed),
// and wakes every waiting Read. Allocation budget: one allocation per
// call, plus a new wake-up channel when a Read was waiting.
func (m *Memory) Append(ctx context.Context, recs []Record) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("append events: %w", err)
	}
	if len(recs) == 0 {
		return nil
	}
	size := 0
	for i := range recs {
		r := &recs[i]
		size += len(r.ID) + len(r.Key) + len(r.Set) + len(r.FenceID) + len(r.Payload)
	}
	buf := make([]byte, 0, size)

	m.mu.Lock()
	defer m.mu.Unlock()
	for i := range recs {
		r := &recs[i]
		start := len(buf)
		buf = append(append(append(append(append(buf, r.ID...), r.Key...), r.Set...), r.FenceID...), r.Payload...)
		m.parts[PartitionOf(r.Key, m.n)].push(memRecord{
			buf:      buf[start:len(buf):len(buf)],
			timeMs:   r.TimeMs,
			idLen:    uint32(len(r.ID)),
			keyLen:   uint32(len(r.Key)),
			setLen:   uint32(len(r.Set)),
			fenceLen: uint32(len(r.FenceID)),
			kind:     r.Kind,
		}, m.retention, m.budget)
	}
	if m.waiting {
		close(m.notify)
		m.notify = make(chan struct{})
		m.waiting = false
	}
	return nil
}

// Read returns up to limit entries after c (see Log.Read), waiting up to
// wait for one.
func (m *Memory) Read(ctx context.Context, c Cursor, limit int, wait time.Duration) ([]Entry, Cursor, error) {
	pos, err := c.widen(m.n)
	if err != nil {
		return nil, c, fmt.Errorf("read events: %w", err)
	}
	if limit <= 0 {
		return nil, c, errors.New("read events: limit must be positive")
	}
	var deadline <-chan time.Time
	for {
		entries, next, notify, err := m.read(pos, limit)
		if err != nil || len(entries) > 0 || wait <= 0 {
			return entries, next, err
		}
		if deadline == nil {
			t := time.NewTimer(wait)
			defer t.Stop()
			deadline = t.C
		}
		select {
		case <-notify:
		case <-deadline:
			return nil, next, nil
		case <-ctx.Done():
			return nil, next, fmt.Errorf("read events: %w", ctx.Err())
		}
	}
}

// read is one attempt of Read under the lock; with nothing to return it
// gives the channel the next Append closes.
func (m *Memory) read(pos []Position, limit int) ([]Entry, Cursor, <-chan struct{}, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	// Next record number to read in each partition; fits on the stack for
	// the usual partition counts.
	var arr [16]uint64
	from := arr[:0]
	avail := 0
	trimmed := false
	for p, ps := range pos {
		pt := &m.parts[p]
		switch {
		case ps.Ms != 0 || ps.Seq >= pt.next:
			return nil, Cursor{pos: pos}, nil, fmt.Errorf("read events: partition %d at %s, newest is 0-%d: %w", p, ps, pt.next-1, ErrCursorAhead)
		case ps.Seq+1 < pt.first:
			trimmed = true
		}
		from = append(from, ps.Seq+1)
		avail += int(pt.next - 1 - min(ps.Seq, pt.next-1))
	}
	if trimmed {
		oldest := make([]Position, m.n)
		for p, ps := range pos {
			oldest[p] = Position{Seq: max(ps.Seq, m.parts[p].first-1)}
		}
		return nil, Cursor{pos: pos}, nil, fmt.Errorf("read events: %w", &TrimmedError{Oldest: Cursor{pos: oldest}})
	}
	peek := func(p int) (int64, bool) {
		pt := &m.parts[p]
		if from[p] >= pt.next {
			return 0, false
		}
		return pt.ring[(from[p]-1)%uint64(len(pt.ring))].timeMs, true
	}
	take := func(p int) (Record, Position) {
		pt := &m.parts[p]
		seq := from[p]
		from[p]++
		return pt.ring[(seq-1)%uint64(len(pt.ring))].record(), Position{Seq: seq}
	}
	entries, next := merge(pos, limit, avail, peek, take)
	if len(entries) > 0 {
		return entries, next, nil, nil
	}
	m.waiting = true
	return nil, next, m.notify, nil
}

// Head returns the cursor after the newest record.
func (m *Memory) Head(ctx context.Context) (Cursor, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	pos := make([]Position, m.n)
	for p := range pos {
		pos[p] = Position{Seq: m.parts[p].next - 1}
	}
	return Cursor{pos: pos}, nil
}

// Oldest returns the cursor before the oldest record retained.
func (m *Memory) Oldest(ctx context.Context) (Cursor, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	pos := make([]Position, m.n)
	for p := range pos {
		pos[p] = Position{Seq: m.parts[p].first - 1}
	}
	return Cursor{pos: pos}, nil
}

package events

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"
)

// MemoryConfig configures NewMemory.
type MemoryConfig struct {
	// Partitions is the number of partitions. Default 8, as the Redis
	// log's, so a cursor's shape is the same in dev and production.
	Partitions int
	// Retention is how many records each partition keeps; older ones are
	// trimmed. Default 100_000: about 20 MB of 200-byte events per
	// partition, hours of a dev cluster's traffic.
	Retention int
}

// Defaults of MemoryConfig.
const (
	DefaultPartitions      = 8
	DefaultMemoryRetention = 100_000
)

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
	if c.Partitions < 0 || c.Partitions > maxPartitions {
		return fmt.Errorf("partitions %d not in [1, %d]", c.Partitions, maxPartitions)
	}
	if c.Retention < 0 {
		return fmt.Errorf("retention %d is negative", c.Retention)
	}
	return nil
}

// Memory is a Log in process memory: each partition a ring buffer of the
// last Retention records, numbered from 1 (Position{Seq: n}). It is as
// durable as the process — for geomatch dev and tests. Safe for
// concurrent use; a waiting Read sleeps on a broadcast channel that the
// next Append closes, never polling.
type Memory struct {
	n int

	mu      sync.Mutex
	parts   []memPartition
	notify  chan struct{} // closed and replaced by an Append when waiting
	waiting bool          // a Read holds notify
}

// memPartition is one partition's ring: the record numbered seq is at
// ring[(seq-1) % len(ring)] while first <= seq < next.
type memPartition struct {
	ring  []Record
	first uint64 // oldest retained (next when empty)
	next  uint64 // number of the next record appended
}

var _ Log = (*Memory)(nil)

// NewMemory returns an empty in-memory log.
func NewMemory(cfg MemoryConfig) (*Memory, error) {
	if err := cfg.setDefaults(); err != nil {
		return nil, fmt.Errorf("memory event log: %w", err)
	}
	m := &Memory{n: cfg.Partitions, parts: make([]memPartition, cfg.Partitions), notify: make(chan struct{})}
	for i := range m.parts {
		m.parts[i] = memPartition{ring: make([]Record, cfg.Retention), first: 1, next: 1}
	}
	return m, nil
}

// Partitions returns the partition count.
func (m *Memory) Partitions() int { return m.n }

// Append stores recs, copying their payloads (into one buffer per call:
// the buffer lives until the batch's last record is trimmed), and wakes
// every waiting Read. Allocation budget: one allocation per call, plus a
// new wake-up channel when a Read was waiting.
func (m *Memory) Append(ctx context.Context, recs []Record) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("append events: %w", err)
	}
	if len(recs) == 0 {
		return nil
	}
	size := 0
	for i := range recs {
		size += len(recs[i].Payload)
	}
	buf := make([]byte, 0, size)

	m.mu.Lock()
	defer m.mu.Unlock()
	for i := range recs {
		r := recs[i]
		start := len(buf)
		buf = append(buf, r.Payload...)
		r.Payload = buf[start:len(buf):len(buf)]
		pt := &m.parts[PartitionOf(r.Key, m.n)]
		size := uint64(len(pt.ring))
		pt.ring[(pt.next-1)%size] = r
		pt.next++
		if pt.next-pt.first > size {
			pt.first = pt.next - size
		}
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
		return pt.ring[(from[p]-1)%uint64(len(pt.ring))].TimeMs, true
	}
	take := func(p int) (Record, Position) {
		pt := &m.parts[p]
		seq := from[p]
		from[p]++
		return pt.ring[(seq-1)%uint64(len(pt.ring))], Position{Seq: seq}
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

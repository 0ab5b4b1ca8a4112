package events

import (
	"context"
	"time"
)

// Kind is the payload kind of an event, for filtering without decoding.
type Kind uint8

// Event kinds (the values of geomatchv1.EventKind).
const (
	KindUnspecified Kind = 0
	KindFence       Kind = 1
	KindTrip        Kind = 2
	KindDriver      Kind = 3
)

// Record is one event on its way into the log.
type Record struct {
	// ID is the event's deterministic id (the same fact always has the same
	// id): sinks drop duplicates by it.
	ID string
	// Key orders events: records with the same key (a driver id, a trip id)
	// go to the same partition and are read back in the order appended.
	Key string
	// Kind, Set and FenceID are copies of payload fields, so readers filter
	// without decoding (Set and FenceID are empty but for fence events).
	Kind    Kind
	Set     string
	FenceID string
	// TimeMs is when the event was logged (ms since the Unix epoch).
	TimeMs int64
	// Payload is the marshalled geomatchv1.Event, without its cursor.
	Payload []byte
}

// Entry is one record read back from the log, with the cursor that resumes
// right after it.
type Entry struct {
	Record
	Cursor Cursor
}

// Log is the durable, partitioned event log. Records are spread over a
// fixed number of partitions by Key; each partition keeps its records in
// append order and trims the oldest beyond its retention. Implementations:
// an in-memory log (geomatch dev, tests) and Redis Streams.
type Log interface {
	// Append stores records; when it returns nil every record is durable
	// (as durable as the log is) and visible to readers. Records with the
	// same Key keep their relative order.
	Append(ctx context.Context, recs []Record) error
	// Read returns up to max entries after c, in per-partition order,
	// waiting up to wait for the first one when there is none (an empty
	// answer is not an error). It returns the cursor after the last entry
	// returned (c itself when none). A cursor from which records have
	// already been trimmed fails with a *TrimmedError.
	Read(ctx context.Context, c Cursor, max int, wait time.Duration) ([]Entry, Cursor, error)
	// Head returns the cursor after the newest record: reading from it
	// returns only records appended later.
	Head(ctx context.Context) (Cursor, error)
	// Oldest returns the cursor before the oldest record retained.
	Oldest(ctx context.Context) (Cursor, error)
	// Partitions is the number of partitions, fixed for a log's lifetime.
	Partitions() int
}

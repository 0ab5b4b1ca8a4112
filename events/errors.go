package events

import (
	"errors"
	"fmt"
)

// TrimmedError is the error of a Read from a cursor some of whose
// following entries the log has already trimmed: reading on would skip
// them, so the log refuses rather than leave a silent gap.
type TrimmedError struct {
	// Oldest is the earliest cursor, at or after the refused one, that
	// reads without a gap: in every partition the later of the refused
	// cursor's position and the position before the oldest entry retained.
	// Resuming from it skips the trimmed entries (knowingly) and repeats
	// none that the refused cursor had already passed.
	Oldest Cursor
}

// Error says the cursor is older than retention and names Oldest.
func (e *TrimmedError) Error() string {
	return fmt.Sprintf("cursor is older than the event log's retention: the oldest cursor still available is %s", e.Oldest)
}

// Is makes errors.Is(err, ErrTrimmed) true for a *TrimmedError.
func (e *TrimmedError) Is(target error) bool { return target == ErrTrimmed }

// ErrTrimmed matches any *TrimmedError under errors.Is; use errors.As with
// a *TrimmedError to get the oldest cursor.
var ErrTrimmed = errors.New("cursor is older than the event log's retention")

// ErrCursorAhead is returned by Read for a cursor past the newest entry of
// a partition: the cursor comes from another log, or the log lost entries
// it had handed out (an in-memory log after a restart, a Redis server that
// lost data). Reading on could skip new entries silently.
var ErrCursorAhead = errors.New("cursor is ahead of the event log")

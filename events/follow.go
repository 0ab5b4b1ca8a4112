package events

import (
	"context"
	"fmt"
	"time"
)

// Follow defaults.
const (
	// DefaultFollowBatch is the batch size Follow uses for batch <= 0: big
	// enough to amortise a Redis round trip, small enough (~50 KiB of
	// 200-byte events) to bound a slow subscriber's footprint.
	DefaultFollowBatch = 256
	// FollowWait is how long each Read of Follow waits for new entries
	// before it asks again; it bounds how late Follow notices a cancelled
	// context on a log whose Read does not while waiting (the Redis log:
	// go-redis does not interrupt XREAD BLOCK).
	FollowWait = time.Second
)

// Follow reads log from start on, forever: it calls fn with every
// non-empty batch of entries that pass filter, in log order (per-partition
// order, see Read), until ctx ends (returning ctx's error), fn fails
// (returning its error) or a Read fails (returning the error wrapped; a
// trimmed start is a *TrimmedError under errors.As).
//
// Entries the filter drops still move the cursor on: Follow never reads
// them again. The last entry of each batch carries the cursor to resume
// from after the batch; a batch the filter drops entirely calls nothing,
// so a resumed subscriber may re-read (and drop) them.
//
// Memory is bounded: at most batch entries are in flight (batch <= 0
// means DefaultFollowBatch), whatever the log's backlog; a slow fn just
// falls behind on the log. fn may keep the slice it is given.
func Follow(ctx context.Context, log Log, start Cursor, filter Filter, batch int, fn func([]Entry) error) error {
	if batch <= 0 {
		batch = DefaultFollowBatch
	}
	cur := start
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		entries, next, err := log.Read(ctx, cur, batch, FollowWait)
		if err != nil {
			if ctxErr := ctx.Err(); ctxErr != nil {
				return ctxErr
			}
			return fmt.Errorf("follow events after %s: %w", cur, err)
		}
		cur = next
		if !filter.IsZero() {
			kept := entries[:0]
			for i := range entries {
				if filter.Match(&entries[i].Record) {
					kept = append(kept, entries[i])
				}
			}
			entries = kept
		}
		if len(entries) == 0 {
			continue
		}
		if err := fn(entries); err != nil {
			return err
		}
	}
}

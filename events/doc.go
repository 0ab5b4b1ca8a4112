// Package events is geomatch's durable, partitioned event log, and the
// cursors that resume reading it.
//
// # Role
//
// Matchers Append fence, trip and driver lifecycle events (marshalled
// geomatchv1.Event, with copies of the fields readers filter on) to the
// Log. Routers Read it to serve EventService.Subscribe, a server stream
// that resumes after a cursor; hook runners (package events/hook) Read it
// to deliver to webhooks, NATS and Redis. Both go through Follow, which
// loops Read, applies a Filter and hands out batches.
//
// An event is in the log before anyone sees it: Append returns once the
// records are stored, and readers only ever get entries read back from
// the log, each with the Cursor that resumes right after it. A reader
// that comes back with its last cursor — after its own restart, a
// router's, or a matcher killed mid-batch — reads exactly the entries it
// had not seen yet: no gap, no duplicate. (A matcher that dies between
// Append and its own bookkeeping appends again on restart; events carry
// deterministic ids, EventID, so sinks drop such duplicates.)
//
// # Partitions
//
// Records are spread over a fixed number of partitions (default 8) by
// PartitionOf(Record.Key): a stable FNV-1a hash, the same in every
// process and release. All records of a key — a driver, a trip — land in
// one partition, which keeps append order, so per-key order holds for
// every reader. A partition count, not one partition per shard, keeps a
// Cursor small (one position per partition) whatever the cluster's size.
// The log lives in Redis, not in a matcher: when a shard moves to a new
// owner, the new owner appends to the same partitions and readers'
// cursors stay valid.
//
// Read merges the partitions oldest TimeMs first (ties to the lower
// partition) without reordering any one partition. Across partitions the
// time order is best effort: a batch is merged from what each partition
// has at the time of the read, so an entry that arrives later with an
// older time comes in a later batch. Only per-partition (per-key) order
// is guaranteed.
//
// # Retention
//
// Every partition keeps its newest entries (Memory: MemoryConfig.Retention
// exactly, or fewer when they exceed the partition's share of
// MemoryConfig.MaxBytes; Redis: about RedisConfig.MaxLen, never fewer). A reader that
// falls further behind than that is not held in memory anywhere — it just
// reads older entries of the durable log — but once its position is
// trimmed, Read fails with a *TrimmedError naming the oldest cursor still
// readable from there, never skipping silently. A cursor past the newest
// entry (the log lost data, or the cursor is from another log) fails with
// ErrCursorAhead.
//
// # Cursors
//
// A Cursor holds one Position per partition. Its String is opaque,
// URL-safe and short: "c1" (the format version) and base64url of
// varints: 25 characters for 8 partitions of a young log, 36 at 10,000
// entries a partition, 68 at a billion. ParseCursor accepts exactly the
// strings String produces (one string per cursor), checks the partition
// count, and otherwise fails with ErrBadCursor. Version-1 strings stay
// readable by later releases as long as the log keeps its partition
// count.
//
// # Usage
//
//	log, _ := events.NewRedis(client, events.RedisConfig{})
//	_ = log.Append(ctx, []events.Record{{ID: id, Key: driverID, Kind: events.KindFence, ...}})
//
//	start, err := events.ParseCursor(req.AfterCursor, log.Partitions())
//	err = events.Follow(ctx, log, start, filter, 256, func(batch []events.Entry) error {
//		for _, e := range batch {
//			send(e.Payload, e.Cursor.String())
//		}
//		return nil
//	})
//	var trimmed *events.TrimmedError
//	if errors.As(err, &trimmed) {
//		// tell the client: resume from trimmed.Oldest, accepting the gap
//	}
package events

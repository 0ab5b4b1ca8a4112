package events_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/geomatch/geomatch/events"
)

// newLogFunc returns a fresh, empty log of the given partition count that
// keeps at least retention entries per partition (the Redis log keeps up
// to one stream node more).
type newLogFunc func(t *testing.T, partitions, retention int) events.Log

// runConformance checks the rules of the Log contract that every
// implementation shares.
func runConformance(t *testing.T, newLog newLogFunc) {
	tests := []struct {
		name string
		fn   func(t *testing.T, newLog newLogFunc)
	}{
		{"AppendThenReadReturnsEveryField", testRoundTrip},
		{"RecordsOfAKeyKeepAppendOrder", testPerKeyOrder},
		{"ResumingAfterAnyCursorGivesExactlyTheRest", testResume},
		{"ConcurrentAppendersAndReadersSeeEverythingOnce", testConcurrent},
		{"ReadWaitsThenWakesOnAppend", testReadWakes},
		{"ReadWaitReturnsEmptyAtTheDeadline", testReadTimeout},
		{"ReadReturnsWhenContextEnds", testReadContext},
		{"TrimmedCursorFailsNamingTheOldest", testTrimmed},
		{"HeadReadsOnlyNewEntriesOldestReadsAll", testHeadOldest},
		{"CursorPastTheNewestFails", testAhead},
		{"CursorOfAnotherPartitionCountFails", testWrongPartitions},
		{"FollowFiltersAndResumes", testFollow},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) { tt.fn(t, newLog) })
	}
}

func testCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// rec builds a record of key with sequence number n in its payload.
func rec(key string, n int) events.Record {
	return events.Record{
		ID:      events.EventID("test", key, strconv.Itoa(n)),
		Key:     key,
		Kind:    events.KindDriver,
		TimeMs:  int64(1_700_000_000_000 + n),
		Payload: []byte(key + "/" + strconv.Itoa(n)),
	}
}

// readAll reads from c until a non-waiting Read returns nothing.
func readAll(t *testing.T, log events.Log, c events.Cursor, batch int) ([]events.Entry, events.Cursor) {
	t.Helper()
	ctx := testCtx(t)
	var all []events.Entry
	for {
		es, next, err := log.Read(ctx, c, batch, 0)
		if err != nil {
			t.Fatalf("read after %s: %v", c, err)
		}
		if len(es) > batch {
			t.Fatalf("read %d entries, asked for at most %d", len(es), batch)
		}
		if len(es) == 0 {
			if !next.Equal(c) {
				t.Fatalf("empty read moved the cursor from %s to %s", c, next)
			}
			return all, c
		}
		if !es[len(es)-1].Cursor.Equal(next) {
			t.Fatalf("cursor returned %s is not the last entry's %s", next, es[len(es)-1].Cursor)
		}
		all = append(all, es...)
		c = next
	}
}

func appendAll(t *testing.T, log events.Log, recs []events.Record) {
	t.Helper()
	if err := log.Append(testCtx(t), recs); err != nil {
		t.Fatalf("append: %v", err)
	}
}

// checkPerKeyOrder fails unless entries hold, per key, the sequence
// numbers from 0 up without gaps, duplicates or reordering, and want of
// them in total.
func checkPerKeyOrder(t *testing.T, entries []events.Entry, want int) {
	t.Helper()
	next := map[string]int{}
	for _, e := range entries {
		n := next[e.Key]
		if w := e.Key + "/" + strconv.Itoa(n); string(e.Payload) != w {
			t.Fatalf("key %s: got %q, want %q", e.Key, e.Payload, w)
		}
		next[e.Key] = n + 1
	}
	if len(entries) != want {
		t.Fatalf("read %d entries, want %d", len(entries), want)
	}
}

func testRoundTrip(t *testing.T, newLog newLogFunc) {
	log := newLog(t, 4, 1000)
	recs := []events.Record{
		{ID: "a", Key: "drv-1", Kind: events.KindFence, Set: "airports", FenceID: "sfo", TimeMs: 10, Payload: []byte{0, 1, 2, 255}},
		{ID: "b", Key: "trip-9", Kind: events.KindTrip, TimeMs: 11, Payload: []byte("trip")},
		{ID: "c", Key: "drv-2", Kind: events.KindDriver, TimeMs: 12},
	}
	appendAll(t, log, recs)
	got, _ := readAll(t, log, events.Cursor{}, 10)
	if len(got) != len(recs) {
		t.Fatalf("read %d entries, want %d", len(got), len(recs))
	}
	for i, e := range got {
		w := recs[i]
		if e.ID != w.ID || e.Key != w.Key || e.Kind != w.Kind || e.Set != w.Set || e.FenceID != w.FenceID || e.TimeMs != w.TimeMs || !bytes.Equal(e.Payload, w.Payload) {
			t.Errorf("entry %d = %+v, want %+v", i, e.Record, w)
		}
		if e.Cursor.Partitions() != 4 {
			t.Errorf("entry %d cursor has %d partitions, want 4", i, e.Cursor.Partitions())
		}
	}
}

func testPerKeyOrder(t *testing.T, newLog newLogFunc) {
	log := newLog(t, 8, 10_000)
	var recs []events.Record
	for n := range 50 {
		for k := range 20 {
			r := rec("drv-"+strconv.Itoa(k), n)
			r.TimeMs = int64(1000 - n) // times run backwards: order is by append, per key
			recs = append(recs, r)
		}
	}
	for i := 0; i < len(recs); i += 37 {
		appendAll(t, log, recs[i:min(i+37, len(recs))])
	}
	got, _ := readAll(t, log, events.Cursor{}, 64)
	checkPerKeyOrder(t, got, len(recs))
}

func testResume(t *testing.T, newLog newLogFunc) {
	log := newLog(t, 8, 10_000)
	var recs []events.Record
	for n := range 30 {
		for k := range 7 {
			recs = append(recs, rec("k"+strconv.Itoa(k), n))
		}
	}
	appendAll(t, log, recs)
	all, _ := readAll(t, log, events.Cursor{}, 1000)
	checkPerKeyOrder(t, all, len(recs))
	for i, e := range all {
		if i%13 != 0 && i != len(all)-1 {
			continue
		}
		// A client keeps only the string.
		c, err := events.ParseCursor(e.Cursor.String(), log.Partitions())
		if err != nil {
			t.Fatalf("parse cursor of entry %d: %v", i, err)
		}
		rest, _ := readAll(t, log, c, 1+i%5)
		if len(rest) != len(all)-i-1 {
			t.Fatalf("after entry %d: read %d entries, want %d", i, len(rest), len(all)-i-1)
		}
		seen := map[string]bool{}
		for _, e := range all[:i+1] {
			seen[e.ID] = true
		}
		for _, r := range rest {
			if seen[r.ID] {
				t.Fatalf("after entry %d: %s read again", i, r.ID)
			}
			seen[r.ID] = true
		}
		if len(seen) != len(all) {
			t.Fatalf("after entry %d: %d distinct entries, want %d", i, len(seen), len(all))
		}
	}
}

func testConcurrent(t *testing.T, newLog newLogFunc) {
	log := newLog(t, 8, 100_000)
	const writers, perWriter, keysPerWriter, readers = 4, 400, 5, 3
	total := writers * perWriter
	ctx := testCtx(t)
	var wg sync.WaitGroup
	errs := make(chan error, writers+readers)
	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			// Each writer owns its keys, so per-key order is its order.
			for n := 0; n < perWriter/keysPerWriter; n += 4 {
				var batch []events.Record
				for m := n; m < n+4; m++ {
					for k := range keysPerWriter {
						batch = append(batch, rec(fmt.Sprintf("w%d-k%d", w, k), m))
					}
				}
				if err := log.Append(ctx, batch); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	results := make([][]events.Entry, readers)
	for r := range readers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c := events.Cursor{}
			for len(results[r]) < total {
				es, next, err := log.Read(ctx, c, 50, 100*time.Millisecond)
				if err != nil {
					errs <- err
					return
				}
				results[r] = append(results[r], es...)
				c = next
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	for r := range readers {
		checkPerKeyOrder(t, results[r], total)
	}
}

func testReadWakes(t *testing.T, newLog newLogFunc) {
	log := newLog(t, 4, 1000)
	ctx := testCtx(t)
	type result struct {
		es  []events.Entry
		err error
		in  time.Duration
	}
	done := make(chan result, 1)
	go func() {
		start := time.Now()
		es, _, err := log.Read(ctx, events.Cursor{}, 10, 20*time.Second)
		done <- result{es, err, time.Since(start)}
	}()
	// Whether the Read is waiting yet or not, it must return the entry
	// long before its 20 s wait.
	time.Sleep(50 * time.Millisecond)
	appendAll(t, log, []events.Record{rec("k", 0)})
	select {
	case r := <-done:
		if r.err != nil || len(r.es) != 1 {
			t.Fatalf("read = %d entries, %v; want 1 entry", len(r.es), r.err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("read did not wake on append")
	}
}

func testReadTimeout(t *testing.T, newLog newLogFunc) {
	log := newLog(t, 4, 1000)
	appendAll(t, log, []events.Record{rec("k", 0)})
	head, err := log.Head(testCtx(t))
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	es, next, err := log.Read(testCtx(t), head, 10, 100*time.Millisecond)
	if err != nil || len(es) != 0 || !next.Equal(head) {
		t.Fatalf("read at head = %d entries, %s, %v; want none, the head, nil", len(es), next, err)
	}
	if d := time.Since(start); d < 90*time.Millisecond || d > 5*time.Second {
		t.Fatalf("read waited %v, want about 100ms", d)
	}
}

func testReadContext(t *testing.T, newLog newLogFunc) {
	log := newLog(t, 4, 1000)
	ctx, cancel := context.WithTimeout(testCtx(t), 100*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, _, err := log.Read(ctx, events.Cursor{}, 10, 3*time.Second)
	// The Redis log may not notice the context while XREAD BLOCK waits:
	// it returns at the wait's end, empty.
	if err != nil && !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("read = %v, want nil or context.DeadlineExceeded", err)
	}
	if d := time.Since(start); d > 4*time.Second {
		t.Fatalf("read returned after %v", d)
	}
}

func testTrimmed(t *testing.T, newLog newLogFunc) {
	const retention = 10
	log := newLog(t, 2, retention)
	ctx := testCtx(t)
	var recs []events.Record
	for n := range 500 {
		recs = append(recs, rec("hot", n))
	}
	appendAll(t, log, recs[:1])
	first, _ := readAll(t, log, events.Cursor{}, 10)
	for i := 1; i < len(recs); i += 50 {
		appendAll(t, log, recs[i:min(i+50, len(recs))])
	}

	for _, c := range []events.Cursor{{}, first[0].Cursor} {
		_, _, err := log.Read(ctx, c, 10, 0)
		var te *events.TrimmedError
		if !errors.As(err, &te) || !errors.Is(err, events.ErrTrimmed) {
			t.Fatalf("read after %s = %v, want a *TrimmedError", c, err)
		}
		oldest, err := log.Oldest(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if !te.Oldest.Equal(oldest) {
			t.Fatalf("TrimmedError.Oldest = %s, want the log's oldest %s", te.Oldest, oldest)
		}
		rest, _ := readAll(t, log, te.Oldest, 7)
		if len(rest) < retention || len(rest) >= len(recs) {
			t.Fatalf("read %d entries from the oldest cursor, want %d to %d", len(rest), retention, len(recs)-1)
		}
		if last := string(rest[len(rest)-1].Payload); last != "hot/499" {
			t.Fatalf("last entry %q, want hot/499", last)
		}
		// No gap from the oldest on: consecutive numbers.
		for i := 1; i < len(rest); i++ {
			a, _ := strconv.Atoi(string(rest[i-1].Payload[4:]))
			b, _ := strconv.Atoi(string(rest[i].Payload[4:]))
			if b != a+1 {
				t.Fatalf("gap after the oldest cursor: %d then %d", a, b)
			}
		}
	}
}

func testHeadOldest(t *testing.T, newLog newLogFunc) {
	log := newLog(t, 4, 1000)
	ctx := testCtx(t)
	head, err := log.Head(ctx)
	if err != nil {
		t.Fatal(err)
	}
	oldest, err := log.Oldest(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if !head.IsZero() || !oldest.IsZero() {
		t.Fatalf("empty log: head %s, oldest %s; want zero cursors", head, oldest)
	}
	var recs []events.Record
	for n := range 20 {
		recs = append(recs, rec("k"+strconv.Itoa(n%6), n/6))
	}
	appendAll(t, log, recs[:10])
	head, err = log.Head(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if es, _ := readAll(t, log, head, 100); len(es) != 0 {
		t.Fatalf("read %d entries from the head, want none", len(es))
	}
	appendAll(t, log, recs[10:])
	es, end := readAll(t, log, head, 100)
	if len(es) != 10 {
		t.Fatalf("read %d entries appended after the head, want 10", len(es))
	}
	if head2, _ := log.Head(ctx); !head2.Equal(end) || !head.Before(head2) {
		t.Fatalf("head %s after reading to %s from %s", head2, end, head)
	}
	oldest, _ = log.Oldest(ctx)
	if es, _ := readAll(t, log, oldest, 100); len(es) != 20 {
		t.Fatalf("read %d entries from the oldest, want 20", len(es))
	}
}

func testAhead(t *testing.T, newLog newLogFunc) {
	log := newLog(t, 2, 1000)
	appendAll(t, log, []events.Record{rec("k", 0)})
	c := events.NewCursor([]events.Position{{Seq: 5}, {Seq: 5}})
	if _, _, err := log.Read(testCtx(t), c, 10, 0); !errors.Is(err, events.ErrCursorAhead) {
		t.Fatalf("read after %s = %v, want ErrCursorAhead", c, err)
	}
}

func testWrongPartitions(t *testing.T, newLog newLogFunc) {
	log := newLog(t, 4, 1000)
	c := events.NewCursor(make([]events.Position, 3))
	if _, _, err := log.Read(testCtx(t), c, 10, 0); err == nil {
		t.Fatal("read with a 3-partition cursor from a 4-partition log succeeded")
	}
	if _, err := events.ParseCursor(c.String(), 4); err == nil {
		t.Fatal("ParseCursor took a 3-partition cursor for a 4-partition log")
	}
}

func testFollow(t *testing.T, newLog newLogFunc) {
	log := newLog(t, 4, 1000)
	fence := func(n int, set, fenceID string) events.Record {
		r := rec("drv", n)
		r.Kind, r.Set, r.FenceID = events.KindFence, set, fenceID
		return r
	}
	trip := func(n int) events.Record {
		r := rec("trip", n)
		r.Kind = events.KindTrip
		return r
	}
	recs := []events.Record{
		fence(0, "airports", "sfo"), trip(0), fence(1, "zones", "z1"), fence(2, "airports", "oak"),
		trip(1), fence(3, "zones", "z2"), fence(4, "airports", "sfo"),
	}
	for i := range recs {
		recs[i].TimeMs = int64(i) // read back in this order across partitions
	}
	appendAll(t, log, recs)

	follow := func(start events.Cursor, f events.Filter, want int) []events.Entry {
		t.Helper()
		ctx, cancel := context.WithCancel(testCtx(t))
		defer cancel()
		var got []events.Entry
		err := events.Follow(ctx, log, start, f, 2, func(es []events.Entry) error {
			if len(es) > 2 {
				t.Errorf("batch of %d entries, want at most 2", len(es))
			}
			got = append(got, es...)
			if len(got) >= want {
				cancel()
			}
			return nil
		})
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("follow = %v, want context.Canceled", err)
		}
		return got
	}
	// Across partitions the order is best effort: compare sorted.
	payloads := func(es []events.Entry) string {
		var ps []string
		for _, e := range es {
			ps = append(ps, string(e.Payload))
		}
		slices.Sort(ps)
		return strings.Join(ps, " ")
	}

	airports := events.Filter{Sets: []string{"airports"}}
	got := follow(events.Cursor{}, airports, 5)
	if p := payloads(got); p != "drv/0 drv/2 drv/4 trip/0 trip/1" {
		t.Fatalf("sets=airports: %s", p)
	}
	got = follow(events.Cursor{}, events.Filter{FenceIDs: []string{"sfo"}, Kinds: []events.Kind{events.KindFence}}, 2)
	if p := payloads(got); p != "drv/0 drv/4" {
		t.Fatalf("fence sfo, kind fence: %s", p)
	}
	// Resuming after any delivered entry (past filtered-out ones) gives
	// exactly the entries after its cursor that pass the filter.
	all, _ := readAll(t, log, events.Cursor{}, 100)
	delivered := follow(events.Cursor{}, airports, 5)
	for i, e := range delivered[:len(delivered)-1] {
		var want []events.Entry
		for _, a := range all {
			p := events.PartitionOf(a.Key, log.Partitions())
			if e.Cursor.Position(p).Less(a.Cursor.Position(p)) && airports.Match(&a.Record) {
				want = append(want, a)
			}
		}
		rest := follow(e.Cursor, airports, len(want))
		if payloads(rest) != payloads(want) {
			t.Fatalf("resumed after delivered entry %d (%s): %s, want %s", i, e.Payload, payloads(rest), payloads(want))
		}
	}

	// A failing fn stops Follow with its error.
	boom := errors.New("boom")
	if err := events.Follow(testCtx(t), log, events.Cursor{}, events.Filter{}, 3, func([]events.Entry) error { return boom }); !errors.Is(err, boom) {
		t.Fatalf("follow = %v, want fn's error", err)
	}
}

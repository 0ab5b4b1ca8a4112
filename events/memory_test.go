package events_test

import (
	"context"
	"testing"

	"github.com/geomatch/geomatch/events"
)

func newMemory(t *testing.T, partitions, retention int) events.Log {
	t.Helper()
	m, err := events.NewMemory(events.MemoryConfig{Partitions: partitions, Retention: retention})
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func TestMemoryConformance(t *testing.T) {
	runConformance(t, newMemory)
}

func TestMemoryTrimsExactlyAtRetention(t *testing.T) {
	log := newMemory(t, 1, 5)
	var recs []events.Record
	for n := range 8 {
		recs = append(recs, rec("k", n))
	}
	appendAll(t, log, recs)
	oldest, err := log.Oldest(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if got := oldest.Position(0).Seq; got != 3 {
		t.Fatalf("oldest = %d, want 3 (8 appended, 5 kept)", got)
	}
	// The cursor after the last entry trimmed still reads: nothing after
	// it is gone.
	es, _ := readAll(t, log, events.NewCursor([]events.Position{{Seq: 3}}), 10)
	if len(es) != 5 {
		t.Fatalf("read %d, want 5", len(es))
	}
	if _, _, err := log.Read(context.Background(), events.NewCursor([]events.Position{{Seq: 2}}), 10, 0); err == nil {
		t.Fatal("read after a trimmed entry succeeded")
	}
}

// TestMemoryRingGrows: a partition's ring starts small and grows as
// records arrive; every record survives each growth, in order.
func TestMemoryRingGrows(t *testing.T) {
	log := newMemory(t, 1, 10_000)
	const n = 5_000 // several doublings from the first ring of 1,024
	for i := 0; i < n; i += 700 {
		var recs []events.Record
		for j := i; j < min(i+700, n); j++ {
			recs = append(recs, rec("k", j))
		}
		appendAll(t, log, recs)
	}
	es, _ := readAll(t, log, events.NewCursor([]events.Position{{}}), 1000)
	checkPerKeyOrder(t, es, n)
}

// TestMemoryTrimsAtMaxBytes: a partition over its share of MaxBytes trims
// its oldest records even below Retention, never the newest, and a reader
// behind them is told so.
func TestMemoryTrimsAtMaxBytes(t *testing.T) {
	log, err := events.NewMemory(events.MemoryConfig{Partitions: 1, Retention: 1_000, MaxBytes: 4_000})
	if err != nil {
		t.Fatal(err)
	}
	big := func(n int) events.Record {
		r := rec("k", n)
		r.Payload = append(r.Payload, make([]byte, 900)...)
		return r
	}
	for n := range 10 {
		appendAll(t, log, []events.Record{big(n)})
	}
	oldest, err := log.Oldest(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	kept := 10 - int(oldest.Position(0).Seq)
	if kept < 1 || kept > 4 {
		t.Fatalf("kept %d records of about 1 KB under a 4,000-byte bound, want 1..4", kept)
	}
	es, _ := readAll(t, log, oldest, 10)
	if len(es) != kept || string(es[len(es)-1].Payload[:3]) != "k/9" {
		t.Fatalf("read %d records after the oldest cursor, want the %d newest", len(es), kept)
	}
	if _, _, err := log.Read(context.Background(), events.NewCursor([]events.Position{{}}), 10, 0); err == nil {
		t.Fatal("read from the start after trimming succeeded")
	}
	// One record bigger than the whole bound is still kept: the newest
	// record is never trimmed.
	huge := rec("k", 10)
	huge.Payload = make([]byte, 10_000)
	appendAll(t, log, []events.Record{huge})
	oldest, _ = log.Oldest(context.Background())
	if got := oldest.Position(0).Seq; got != 10 {
		t.Fatalf("after a record over the bound, oldest cursor at %d, want 10 (only it kept)", got)
	}
}

func TestMemoryConfigRejectsBadValues(t *testing.T) {
	for _, cfg := range []events.MemoryConfig{{Partitions: -1}, {Partitions: 5000}, {Retention: -1}, {MaxBytes: -1}} {
		if _, err := events.NewMemory(cfg); err == nil {
			t.Errorf("NewMemory(%+v) succeeded", cfg)
		}
	}
}

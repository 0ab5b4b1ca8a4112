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

func TestMemoryConfigRejectsBadValues(t *testing.T) {
	for _, cfg := range []events.MemoryConfig{{Partitions: -1}, {Partitions: 5000}, {Retention: -1}} {
		if _, err := events.NewMemory(cfg); err == nil {
			t.Errorf("NewMemory(%+v) succeeded", cfg)
		}
	}
}

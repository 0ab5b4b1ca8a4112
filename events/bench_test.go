package events_test

import (
	"context"
	"strconv"
	"testing"

	"github.com/geomatch/geomatch/events"
	"github.com/geomatch/geomatch/internal/redistest"
)

// benchRecords returns n records of about 200 bytes over 1000 keys.
func benchRecords(n int) []events.Record {
	payload := make([]byte, 200)
	for i := range payload {
		payload[i] = byte(i)
	}
	recs := make([]events.Record, n)
	for i := range recs {
		key := "drv-" + strconv.Itoa(i%1000)
		recs[i] = events.Record{ID: events.EventID(key, strconv.Itoa(i)), Key: key, Kind: events.KindFence, Set: "zones", FenceID: "z1", TimeMs: int64(i), Payload: payload}
	}
	return recs
}

func benchAppend(b *testing.B, log events.Log, batch int) {
	recs := benchRecords(batch)
	ctx := context.Background()
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		if err := log.Append(ctx, recs); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N*batch)/b.Elapsed().Seconds(), "records/s")
}

func benchRead(b *testing.B, log events.Log, batch int) {
	ctx := context.Background()
	const total = 100_000
	recs := benchRecords(1000)
	for range total / len(recs) {
		if err := log.Append(ctx, recs); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportAllocs()
	b.ResetTimer()
	read := 0
	c := events.Cursor{}
	for b.Loop() {
		es, next, err := log.Read(ctx, c, batch, 0)
		if err != nil {
			b.Fatal(err)
		}
		if len(es) == 0 {
			next = events.Cursor{}
		}
		read += len(es)
		c = next
	}
	b.ReportMetric(float64(read)/b.Elapsed().Seconds(), "records/s")
}

func BenchmarkRedisAppend(b *testing.B) {
	client := newClient(b, redistest.Start(b))
	for _, batch := range []int{100, 1000} {
		b.Run("batch="+strconv.Itoa(batch), func(b *testing.B) {
			benchAppend(b, newRedisLog(b, client, 8, 100_000), batch)
		})
	}
}

func BenchmarkRedisRead(b *testing.B) {
	client := newClient(b, redistest.Start(b))
	for _, batch := range []int{100, 1000} {
		b.Run("batch="+strconv.Itoa(batch), func(b *testing.B) {
			benchRead(b, newRedisLog(b, client, 8, 200_000), batch)
		})
	}
}

// Allocation budget: one allocation per Append (the payload buffer).
func BenchmarkMemoryAppend(b *testing.B) {
	for _, batch := range []int{1, 100} {
		b.Run("batch="+strconv.Itoa(batch), func(b *testing.B) {
			log, err := events.NewMemory(events.MemoryConfig{})
			if err != nil {
				b.Fatal(err)
			}
			benchAppend(b, log, batch)
		})
	}
}

// Allocation budget: two allocations per Read (entries and cursors).
func BenchmarkMemoryRead(b *testing.B) {
	log, err := events.NewMemory(events.MemoryConfig{Retention: 200_000})
	if err != nil {
		b.Fatal(err)
	}
	benchRead(b, log, 100)
}

func BenchmarkCursorString(b *testing.B) {
	pos := make([]events.Position, 8)
	for p := range pos {
		pos[p] = events.Position{Seq: 123_456 + uint64(p)}
	}
	c := events.NewCursor(pos)
	b.ReportAllocs()
	for b.Loop() {
		_ = c.String()
	}
}

package hook

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"github.com/geomatch/geomatch/events"
	"github.com/geomatch/geomatch/internal/natstest"
	geomatchv1 "github.com/geomatch/geomatch/proto/geomatch/v1"
)

// benchDelivery logs b.N events, then times a Manager delivering all of
// them to endpoint (a hook from the oldest event); delivered reports the
// sink's count. It reports events/s.
func benchDelivery(b *testing.B, endpoint string, delivered func() int64) {
	log, err := events.NewMemory(events.MemoryConfig{Partitions: 8, Retention: max(b.N/4, 1000)})
	if err != nil {
		b.Fatal(err)
	}
	appendEvents(b, log, "e", 0, b.N, 10_000)
	m := newTestManager(b, NewMemoryStore(0), log, testConfig())
	if _, err := m.Put(context.Background(), &geomatchv1.Hook{HookId: "bench", Endpoint: endpoint, FromOldest: true}); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.ResetTimer()
	start := time.Now()
	stop := runManager(b, m)
	deadline := start.Add(5 * time.Minute)
	for delivered() < int64(b.N) {
		if time.Now().After(deadline) {
			b.Fatalf("%d of %d delivered after 5 minutes", delivered(), b.N)
		}
		time.Sleep(time.Millisecond)
	}
	elapsed := time.Since(start)
	b.StopTimer()
	stop()
	b.ReportMetric(float64(b.N)/elapsed.Seconds(), "events/s")
}

// BenchmarkWebhookDelivery measures delivery to a local webhook that only
// counts the events of each batch.
//
//	go test -run '^$' -bench WebhookDelivery -benchtime 200000x ./events/hook/
func BenchmarkWebhookDelivery(b *testing.B) {
	var n atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		var batch struct {
			Events []json.RawMessage `json:"events"`
		}
		if err := json.Unmarshal(body, &batch); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		n.Add(int64(len(batch.Events)))
	}))
	defer srv.Close()
	benchDelivery(b, srv.URL, n.Load)
}

// BenchmarkNATSDelivery measures delivery to a local JetStream stream.
//
//	go test -run '^$' -bench NATSDelivery -benchtime 200000x ./events/hook/
func BenchmarkNATSDelivery(b *testing.B) {
	url := natstest.Start(b)
	js := jetStream(b, url)
	benchDelivery(b, url+"/bench.events", func() int64 {
		return int64(streamMsgs(b, js, StreamName("bench.events")))
	})
}

package hook

import (
	"context"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/redis/go-redis/v9"

	"github.com/geomatch/geomatch/internal/natstest"
	"github.com/geomatch/geomatch/internal/redistest"
	geomatchv1 "github.com/geomatch/geomatch/proto/geomatch/v1"
)

// jetStream connects to url for the test's own reads.
func jetStream(t testing.TB, url string) jetstream.JetStream {
	t.Helper()
	nc, err := nats.Connect(url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	return js
}

// streamMsgs returns the message count of a stream (0 while it does not
// exist).
func streamMsgs(t testing.TB, js jetstream.JetStream, name string) uint64 {
	s, err := js.Stream(context.Background(), name)
	if err != nil {
		return 0
	}
	info, err := s.Info(context.Background())
	if err != nil {
		return 0
	}
	return info.State.Msgs
}

func TestNATSHookPublishesToACreatedStream(t *testing.T) {
	url := natstest.Start(t)
	log := newTestLog(t)
	m := newTestManager(t, NewMemoryStore(0), log, testConfig())
	if _, err := m.Put(context.Background(), &geomatchv1.Hook{HookId: "n", Endpoint: url + "/geomatch.events"}); err != nil {
		t.Fatal(err)
	}
	runManager(t, m)
	const n = 1000
	appendEvents(t, log, "e", 0, n, 11)

	js := jetStream(t, url)
	name := StreamName("geomatch.events")
	if name != "GEOMATCH_geomatch_events" {
		t.Fatalf("StreamName = %q", name)
	}
	waitFor(t, 15*time.Second, "every event in the stream", func() bool { return streamMsgs(t, js, name) == n })

	// Read them back: ids in headers, per-key order kept.
	s, err := js.Stream(context.Background(), name)
	if err != nil {
		t.Fatal(err)
	}
	got := newCollector()
	for seq := uint64(1); seq <= n; seq++ {
		msg, err := s.GetMsg(context.Background(), seq)
		if err != nil {
			t.Fatal(err)
		}
		got.addJSON(t, msg.Data)
		if id := msg.Header.Get(jetstream.MsgIDHeader); id != got.events[len(got.events)-1].id {
			t.Fatalf("message %d: Nats-Msg-Id %q, event %q", seq, id, got.events[len(got.events)-1].id)
		}
	}
	evs, ids := got.snapshot()
	checkAll(t, ids, "e", 0, n)
	checkOrder(t, evs)
}

func TestNATSSinkStoresADuplicateOnce(t *testing.T) {
	url := natstest.Start(t)
	ep, err := ParseEndpoint(url + "/dup.test")
	if err != nil {
		t.Fatal(err)
	}
	sink, err := newNATSSink("dup", ep, 5*time.Second, testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	defer sink.Close()
	batch := []Delivery{{ID: "a", JSON: []byte(`{"eventId":"a"}`)}, {ID: "b", JSON: []byte(`{"eventId":"b"}`)}}
	for range 3 { // a batch retried after a lost ack
		if err := sink.Deliver(context.Background(), batch); err != nil {
			t.Fatal(err)
		}
	}
	if got := streamMsgs(t, jetStream(t, url), StreamName("dup.test")); got != 2 {
		t.Fatalf("stream holds %d messages after three deliveries of two events, want 2", got)
	}
}

func TestRedisHookAppendsToTheStream(t *testing.T) {
	addr := redistest.Start(t)
	log := newTestLog(t)
	m := newTestManager(t, NewMemoryStore(0), log, testConfig())
	if _, err := m.Put(context.Background(), &geomatchv1.Hook{HookId: "r", Endpoint: "redis://" + addr + "/geo:events"}); err != nil {
		t.Fatal(err)
	}
	runManager(t, m)
	const n = 700
	appendEvents(t, log, "e", 0, n, 5)

	rdb := redis.NewClient(&redis.Options{Addr: addr})
	defer rdb.Close()
	waitFor(t, 10*time.Second, "every event in the stream", func() bool {
		l, _ := rdb.XLen(context.Background(), "geo:events").Result()
		return l == n
	})
	msgs, err := rdb.XRange(context.Background(), "geo:events", "-", "+").Result()
	if err != nil {
		t.Fatal(err)
	}
	got := newCollector()
	for _, msg := range msgs {
		ev, _ := msg.Values["event"].(string)
		got.addJSON(t, []byte(ev))
		if id := msg.Values["id"]; id != got.events[len(got.events)-1].id {
			t.Fatalf("entry %s: id field %v, event %q", msg.ID, id, got.events[len(got.events)-1].id)
		}
	}
	evs, ids := got.snapshot()
	checkAll(t, ids, "e", 0, n)
	checkOrder(t, evs)
}

package hook

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/geomatch/geomatch/events"
)

func TestWebhookDeliversEveryEventOnceSignedInKeyOrder(t *testing.T) {
	log := newTestLog(t)
	m := newTestManager(t, NewMemoryStore(0), log, testConfig())
	rcv := newReceiver(t, nil)
	h := putWebhook(t, m, rcv, "orders")
	if len(h.GetSecret()) != 2*secretBytes {
		t.Fatalf("generated secret %q, want %d hex digits", h.GetSecret(), 2*secretBytes)
	}
	runManager(t, m)

	const n = 3000
	appendEvents(t, log, "e", 0, n, 37)
	waitFor(t, 10*time.Second, "every event delivered", func() bool { return rcv.got.unique() == n })

	evs, ids := rcv.got.snapshot()
	checkAll(t, ids, "e", 0, n)
	checkOrder(t, evs)
	if len(evs) != n {
		t.Errorf("%d events received for %d logged: duplicates without a failure", len(evs), n)
	}
	for _, e := range evs {
		if _, err := events.ParseCursor(e.cursor, log.Partitions()); err != nil {
			t.Fatalf("event %s carries a bad cursor: %v", e.id, err)
		}
	}
	rcv.mu.Lock()
	hdr := rcv.headers
	rcv.mu.Unlock()
	if hdr.Get("Authorization") != "Bearer t" || hdr.Get(HeaderHook) != "orders" || len(hdr.Get(HeaderDelivery)) != 32 {
		t.Errorf("headers %v: want the extra header, the hook id and a delivery id", hdr)
	}
	waitFor(t, 5*time.Second, "stats", func() bool {
		s := stats(t, m, "orders")
		return s.GetDelivered() == n && s.GetLagEvents() == 0 && s.GetLastDeliveredMs() > 0
	})
	if hs, _ := m.List(context.Background()); hs[0].GetSecret() != "" {
		t.Errorf("List shows the secret")
	}
}

func TestWebhookRetriesWhileReceiverFailsAndLosesNothing(t *testing.T) {
	log := newTestLog(t)
	var failing atomic.Bool
	failing.Store(true)
	rcv := newReceiver(t, failing.Load)
	reg := prometheus.NewRegistry()
	m, err := NewManager(testConfig(), log, NewMemoryStore(0), testLogger(t), reg)
	if err != nil {
		t.Fatal(err)
	}
	putWebhook(t, m, rcv, "flaky")
	runManager(t, m)

	const n = 2000
	appendEvents(t, log, "e", 0, n, 13)
	waitFor(t, 5*time.Second, "retries", func() bool { return stats(t, m, "flaky").GetRetried() >= 3 })
	s := stats(t, m, "flaky")
	if s.GetLastError() == "" || s.GetLagEvents() == 0 {
		t.Errorf("while failing: stats %v, want a last error and a lag", s)
	}
	time.Sleep(time.Second) // the receiver stays down a while
	failing.Store(false)
	waitFor(t, 10*time.Second, "every event delivered", func() bool { return rcv.got.unique() == n })

	evs, ids := rcv.got.snapshot()
	checkAll(t, ids, "e", 0, n)
	checkOrder(t, evs)
	waitFor(t, 5*time.Second, "stats after recovery", func() bool {
		s := stats(t, m, "flaky")
		return s.GetDelivered() >= n && s.GetLastError() == "" && s.GetDeadLettered() == 0
	})
	if got := testutil.ToFloat64(m.met.retried.WithLabelValues("flaky")); got < 3 {
		t.Errorf("geomatch_hook_retried_total = %v, want >= 3", got)
	}
	if got := testutil.ToFloat64(m.met.delivered.WithLabelValues("flaky")); got < n {
		t.Errorf("geomatch_hook_delivered_total = %v, want >= %d", got, n)
	}
}

func TestWebhookDeadLettersPastTheBound(t *testing.T) {
	log := newTestLog(t)
	var failing atomic.Bool
	failing.Store(true)
	rcv := newReceiver(t, failing.Load)
	cfg := testConfig()
	cfg.DeadLetterAfter = 1500 * time.Millisecond
	st := NewMemoryStore(0)
	m := newTestManager(t, st, log, cfg)
	putWebhook(t, m, rcv, "down")
	runManager(t, m)

	const n = 300
	appendEvents(t, log, "e", 0, n, 7)
	waitFor(t, 15*time.Second, "every event dead-lettered", func() bool { return stats(t, m, "down").GetDeadLettered() == n })
	if got := testutil.ToFloat64(m.met.deadLettered.WithLabelValues("down")); got != n {
		t.Errorf("geomatch_hook_dead_lettered_total = %v, want %d", got, n)
	}
	letters, err := st.DeadLetters(context.Background(), "down", 2*n)
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	for _, l := range letters {
		seen[l.EventID] = true
		if l.Error == "" || len(l.JSON) == 0 {
			t.Fatalf("dead letter %+v lacks its error or event", l)
		}
	}
	for i := range n {
		if !seen[eventID("e", i)] {
			t.Fatalf("event %d neither delivered nor dead-lettered", i)
		}
	}

	// The receiver comes back: later events are delivered again.
	failing.Store(false)
	appendEvents(t, log, "f", 0, 50, 7)
	waitFor(t, 10*time.Second, "delivery after the outage", func() bool { return rcv.got.unique() == 50 })
}

func TestDeleteStopsDeliveryAndForgetsSeries(t *testing.T) {
	log := newTestLog(t)
	rcv := newReceiver(t, nil)
	reg := prometheus.NewRegistry()
	m, err := NewManager(testConfig(), log, NewMemoryStore(0), testLogger(t), reg)
	if err != nil {
		t.Fatal(err)
	}
	putWebhook(t, m, rcv, "gone")
	runManager(t, m)
	appendEvents(t, log, "e", 0, 10, 3)
	waitFor(t, 5*time.Second, "delivery", func() bool { return rcv.got.unique() == 10 })
	if err := m.Delete(context.Background(), "gone"); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 5*time.Second, "runner stopped", func() bool { return m.get("gone") == nil })
	appendEvents(t, log, "f", 0, 10, 3)
	time.Sleep(200 * time.Millisecond)
	if got := rcv.got.unique(); got != 10 {
		t.Fatalf("%d events after delete, want 10", got)
	}
	if n := testutil.CollectAndCount(reg); n != 0 {
		t.Fatalf("%d series left after delete, want 0", n)
	}
}

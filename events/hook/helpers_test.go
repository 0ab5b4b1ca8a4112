package hook

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"strconv"
	"sync"
	"testing"
	"time"

	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	"github.com/geomatch/geomatch/events"
	geomatchv1 "github.com/geomatch/geomatch/proto/geomatch/v1"
)

// testConfig is fast: short polls, leases and backoff.
func testConfig() Config {
	return Config{
		PollInterval: 50 * time.Millisecond,
		LeaseTTL:     500 * time.Millisecond,
		BackoffMin:   10 * time.Millisecond,
		BackoffMax:   200 * time.Millisecond,
	}
}

func testLogger(t testing.TB) *slog.Logger {
	if os.Getenv("HOOK_TEST_LOG") != "" {
		return slog.New(slog.NewTextHandler(os.Stderr, nil))
	}
	return slog.New(slog.DiscardHandler)
}

func newTestLog(t testing.TB) *events.Memory {
	l, err := events.NewMemory(events.MemoryConfig{Partitions: 8, Retention: 200_000})
	if err != nil {
		t.Fatal(err)
	}
	return l
}

func newTestManager(t testing.TB, st Store, log events.Log, cfg Config) *Manager {
	t.Helper()
	m, err := NewManager(cfg, log, st, testLogger(t), nil)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// runManager runs m until the returned stop is called (or the test ends);
// stop waits for Run to return.
func runManager(t testing.TB, m *Manager) (stop func()) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- m.Run(ctx) }()
	var once sync.Once
	stop = func() {
		once.Do(func() {
			cancel()
			select {
			case err := <-done:
				if err != nil {
					t.Errorf("Run = %v", err)
				}
			case <-time.After(10 * time.Second):
				t.Errorf("Run did not return within 10s of its context ending")
			}
		})
	}
	t.Cleanup(stop)
	return stop
}

// appendEvents logs n driver events spread over keys driver-0..driver-
// (keys-1), each carrying its sequence number in timestamp_ms; ids are
// "<prefix>-<i>".
func appendEvents(t testing.TB, log events.Log, prefix string, from, n, keys int) {
	t.Helper()
	const chunk = 1000
	recs := make([]events.Record, 0, min(n, chunk))
	for i := from; i < from+n; i++ {
		key := "driver-" + strconv.Itoa(i%keys)
		id := prefix + "-" + strconv.Itoa(i)
		now := time.Now().UnixMilli()
		ev := &geomatchv1.Event{EventId: id, TimeMs: now, Payload: &geomatchv1.Event_Driver{Driver: &geomatchv1.DriverLifecycleEvent{
			DriverId: key, Lifecycle: geomatchv1.DriverLifecycle_DRIVER_LIFECYCLE_ONLINE, TimestampMs: int64(i),
		}}}
		b, err := proto.Marshal(ev)
		if err != nil {
			t.Fatal(err)
		}
		recs = append(recs, events.Record{ID: id, Key: key, Kind: events.KindDriver, TimeMs: now, Payload: b})
		if len(recs) == chunk || i == from+n-1 {
			if err := log.Append(context.Background(), recs); err != nil {
				t.Fatal(err)
			}
			recs = recs[:0]
		}
	}
}

// received is one event a test receiver got.
type received struct {
	id, key string
	seq     int64
	cursor  string
}

// collector keeps what a sink received, in arrival order.
type collector struct {
	mu     sync.Mutex
	events []received
	ids    map[string]int
}

func newCollector() *collector { return &collector{ids: map[string]int{}} }

func (c *collector) add(r received) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.events = append(c.events, r)
	c.ids[r.id]++
}

func (c *collector) unique() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.ids)
}

func (c *collector) snapshot() ([]received, map[string]int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	ids := make(map[string]int, len(c.ids))
	for k, v := range c.ids {
		ids[k] = v
	}
	return append([]received(nil), c.events...), ids
}

// addJSON decodes one delivered event.
func (c *collector) addJSON(t testing.TB, b []byte) {
	var ev geomatchv1.Event
	if err := protojson.Unmarshal(b, &ev); err != nil {
		t.Errorf("delivered event is not a geomatchv1.Event: %v: %s", err, b)
		return
	}
	d := ev.GetDriver()
	c.add(received{id: ev.GetEventId(), key: d.GetDriverId(), seq: d.GetTimestampMs(), cursor: ev.GetCursor()})
}

// checkOrder fails the test when a key's events arrived out of order.
// Redeliveries of the un-acked window may repeat a run of events, so the
// rule is checked on each event's first arrival.
func checkOrder(t testing.TB, evs []received) {
	t.Helper()
	seen := map[string]bool{}
	last := map[string]int64{}
	for _, e := range evs {
		if seen[e.id] {
			continue
		}
		seen[e.id] = true
		if prev, ok := last[e.key]; ok && e.seq <= prev {
			t.Fatalf("key %s: event %d arrived after %d", e.key, e.seq, prev)
		}
		last[e.key] = e.seq
	}
}

// checkAll fails the test unless every id prefix-from..prefix-(from+n-1)
// was received.
func checkAll(t testing.TB, ids map[string]int, prefix string, from, n int) {
	t.Helper()
	missing := 0
	for i := from; i < from+n; i++ {
		if ids[prefix+"-"+strconv.Itoa(i)] == 0 {
			missing++
		}
	}
	if missing > 0 {
		t.Fatalf("%d of %d events never delivered", missing, n)
	}
}

// receiver is a webhook endpoint: it verifies the signature and headers,
// answers failStatus while fail() says so, and collects the events of
// the batches it accepts.
type receiver struct {
	t      testing.TB
	srv    *httptest.Server
	secret []byte
	got    *collector
	fail   func() bool

	mu         sync.Mutex
	posts      int
	deliveries map[string]bool
	headers    http.Header // of the last accepted POST
}

func newReceiver(t testing.TB, fail func() bool) *receiver {
	r := &receiver{t: t, got: newCollector(), fail: fail, deliveries: map[string]bool{}}
	r.srv = httptest.NewServer(http.HandlerFunc(r.serve))
	t.Cleanup(r.srv.Close)
	return r
}

func (r *receiver) serve(w http.ResponseWriter, req *http.Request) {
	body, err := io.ReadAll(req.Body)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	r.mu.Lock()
	r.posts++
	secret := r.secret
	r.mu.Unlock()
	if r.fail != nil && r.fail() {
		http.Error(w, "down for the test", http.StatusInternalServerError)
		return
	}
	if !Verify(secret, body, req.Header.Get(HeaderSignature)) {
		r.t.Errorf("bad signature %q", req.Header.Get(HeaderSignature))
		http.Error(w, "bad signature", http.StatusUnauthorized)
		return
	}
	var batch struct {
		Hook   string            `json:"hook"`
		Events []json.RawMessage `json:"events"`
	}
	if err := json.Unmarshal(body, &batch); err != nil {
		r.t.Errorf("body is not a batch: %v", err)
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	if batch.Hook != req.Header.Get(HeaderHook) || req.Header.Get("Content-Type") != "application/json" {
		r.t.Errorf("hook %q, header %q, content type %q", batch.Hook, req.Header.Get(HeaderHook), req.Header.Get("Content-Type"))
	}
	for _, e := range batch.Events {
		r.got.addJSON(r.t, e)
	}
	r.mu.Lock()
	r.deliveries[req.Header.Get(HeaderDelivery)] = true
	r.headers = req.Header.Clone()
	r.mu.Unlock()
	w.WriteHeader(http.StatusNoContent)
}

func (r *receiver) setSecret(s string) {
	r.mu.Lock()
	r.secret = []byte(s)
	r.mu.Unlock()
}

// putWebhook creates a webhook hook to r and records its secret.
func putWebhook(t testing.TB, m *Manager, r *receiver, id string) *geomatchv1.Hook {
	t.Helper()
	h, err := m.Put(context.Background(), &geomatchv1.Hook{HookId: id, Endpoint: r.srv.URL + "/events", Headers: map[string]string{"Authorization": "Bearer t"}})
	if err != nil {
		t.Fatal(err)
	}
	r.setSecret(h.GetSecret())
	return h
}

// waitFor polls cond until it holds or d passes.
func waitFor(t testing.TB, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", d, what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// stats returns a hook's stats from List.
func stats(t testing.TB, m *Manager, id string) *geomatchv1.HookStats {
	t.Helper()
	hs, err := m.List(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	for _, h := range hs {
		if h.GetHookId() == id {
			return h.GetStats()
		}
	}
	t.Fatalf("hook %s not listed", id)
	return nil
}

func eventID(prefix string, i int) string { return fmt.Sprintf("%s-%d", prefix, i) }

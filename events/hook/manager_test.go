package hook

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/geomatch/geomatch/internal/redistest"
	geomatchv1 "github.com/geomatch/geomatch/proto/geomatch/v1"
)

func TestResumeAfterStopLeavesNoGap(t *testing.T) {
	log := newTestLog(t)
	st := NewMemoryStore(0)
	rcv := newReceiver(t, nil)
	m1 := newTestManager(t, st, log, testConfig())
	putWebhook(t, m1, rcv, "resume")
	stop1 := runManager(t, m1)

	const n = 20_000
	appended := make(chan struct{})
	go func() {
		defer close(appended)
		appendEvents(t, log, "e", 0, n, 101)
	}()
	defer func() { <-appended }()
	waitFor(t, 10*time.Second, "part of the stream delivered", func() bool { return rcv.got.unique() > 2000 })
	stop1()
	before := rcv.got.unique()

	m2 := newTestManager(t, st, log, testConfig())
	runManager(t, m2)
	waitFor(t, 20*time.Second, "every event delivered", func() bool { return rcv.got.unique() == n })
	evs, ids := rcv.got.snapshot()
	checkAll(t, ids, "e", 0, n)
	checkOrder(t, evs)
	t.Logf("stopped after %d events; %d deliveries for %d events (duplicates: the un-acked window)", before, len(evs), n)
	if before == n {
		t.Skip("the first manager finished before it was stopped: nothing resumed")
	}
}

func TestLeaseLetsOneManagerDeliverAtATime(t *testing.T) {
	rdb := redis.NewClient(&redis.Options{Addr: redistest.Start(t)})
	t.Cleanup(func() { rdb.Close() })
	st := NewRedisStore(rdb, RedisStoreConfig{})
	log := newTestLog(t)
	rcv := newReceiver(t, nil)

	cfg := testConfig()
	cfg.Owner = "a"
	ma := newTestManager(t, st, log, cfg)
	cfg.Owner = "b"
	mb := newTestManager(t, st, log, cfg)
	putWebhook(t, ma, rcv, "shared")
	stopA := runManager(t, ma)
	waitFor(t, 5*time.Second, "a runs the hook", func() bool { return ma.get("shared") != nil })
	runManager(t, mb)

	// Both poll for a while: never both run it.
	var both atomic.Bool
	deadline := time.Now().Add(time.Second)
	for time.Now().Before(deadline) {
		if ma.get("shared") != nil && mb.get("shared") != nil {
			both.Store(true)
		}
		time.Sleep(5 * time.Millisecond)
	}
	if both.Load() {
		t.Fatal("both managers ran the hook at once")
	}
	if mb.get("shared") != nil {
		t.Fatal("b took the hook while a held its lease")
	}
	appendEvents(t, log, "e", 0, 1000, 17)
	waitFor(t, 10*time.Second, "a delivers", func() bool { return rcv.got.unique() == 1000 })

	// a stops (releasing its lease): b takes over from a's cursor.
	stopA()
	waitFor(t, 5*time.Second, "b runs the hook", func() bool { return mb.get("shared") != nil })
	appendEvents(t, log, "e", 1000, 1000, 17)
	waitFor(t, 10*time.Second, "b delivers", func() bool { return rcv.got.unique() == 2000 })
	evs, ids := rcv.got.snapshot()
	checkAll(t, ids, "e", 0, 2000)
	checkOrder(t, evs)
	if s := stats(t, mb, "shared"); s.GetDelivered() < 2000 {
		t.Errorf("stats across managers: delivered %d, want >= 2000", s.GetDelivered())
	}
}

func TestRedisStore(t *testing.T) {
	rdb := redis.NewClient(&redis.Options{Addr: redistest.Start(t)})
	t.Cleanup(func() { rdb.Close() })
	testStore(t, NewRedisStore(rdb, RedisStoreConfig{Prefix: "t"}))
}

func TestMemoryStore(t *testing.T) {
	testStore(t, NewMemoryStore(0))
}

// testStore checks the Store contract.
func testStore(t *testing.T, st Store) {
	ctx := context.Background()
	h := &geomatchv1.Hook{HookId: "h", Endpoint: "http://x/", Stats: &geomatchv1.HookStats{Delivered: 9}}
	if err := st.PutHook(ctx, h, Progress{Cursor: "c1"}, 1); err != nil {
		t.Fatal(err)
	}
	if err := st.PutHook(ctx, &geomatchv1.Hook{HookId: "h2"}, Progress{}, 1); !errors.Is(err, ErrTooManyHooks) {
		t.Fatalf("second hook beyond max 1: %v, want ErrTooManyHooks", err)
	}
	hs, err := st.Hooks(ctx)
	if err != nil || len(hs) != 1 || hs[0].GetStats() != nil || hs[0].GetEndpoint() != "http://x/" {
		t.Fatalf("Hooks = %v, %v", hs, err)
	}
	if err := st.SaveProgress(ctx, "h", "a", Progress{Cursor: "c2"}); !errors.Is(err, ErrLeaseLost) {
		t.Fatalf("save without the lease: %v, want ErrLeaseLost", err)
	}
	if ok, err := st.Lease(ctx, "h", "a", time.Minute); !ok || err != nil {
		t.Fatalf("lease a: %v %v", ok, err)
	}
	if ok, err := st.Lease(ctx, "h", "b", time.Minute); ok || err != nil {
		t.Fatalf("lease b while a holds it: %v %v", ok, err)
	}
	if ok, err := st.Lease(ctx, "h", "a", time.Minute); !ok || err != nil {
		t.Fatalf("renew a: %v %v", ok, err)
	}
	if err := st.SaveProgress(ctx, "h", "a", Progress{Cursor: "c2", Delivered: 5}); err != nil {
		t.Fatal(err)
	}
	// Replacing keeps progress.
	if err := st.PutHook(ctx, &geomatchv1.Hook{HookId: "h", Endpoint: "http://y/"}, Progress{Cursor: "c9"}, 1); err != nil {
		t.Fatal(err)
	}
	if p, err := st.Progress(ctx, "h"); err != nil || p.Cursor != "c2" || p.Delivered != 5 {
		t.Fatalf("Progress = %+v, %v; want c2 with 5 delivered", p, err)
	}
	if err := st.Release(ctx, "h", "b"); err != nil {
		t.Fatal(err)
	}
	if ok, _ := st.Lease(ctx, "h", "b", time.Minute); ok {
		t.Fatal("b's release freed a's lease")
	}
	if err := st.Release(ctx, "h", "a"); err != nil {
		t.Fatal(err)
	}
	if ok, _ := st.Lease(ctx, "h", "b", 50*time.Millisecond); !ok {
		t.Fatal("lease not free after a's release")
	}
	time.Sleep(100 * time.Millisecond)
	if ok, _ := st.Lease(ctx, "h", "a", time.Minute); !ok {
		t.Fatal("b's lease did not expire")
	}
	letters := []DeadLetter{{EventID: "e1", Key: "k", JSON: []byte(`{}`), Error: "boom", TimeMs: 7}}
	if err := st.DeadLetter(ctx, "h", letters); err != nil {
		t.Fatal(err)
	}
	if got, err := st.DeadLetters(ctx, "h", 10); err != nil || len(got) != 1 || got[0].EventID != "e1" || got[0].Error != "boom" || got[0].TimeMs != 7 {
		t.Fatalf("DeadLetters = %+v, %v", got, err)
	}
	if err := st.DeleteHook(ctx, "h"); err != nil {
		t.Fatal(err)
	}
	if err := st.DeleteHook(ctx, "h"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("second delete: %v, want ErrNotFound", err)
	}
	if _, err := st.Progress(ctx, "h"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("progress after delete: %v, want ErrNotFound", err)
	}
	if err := st.SaveProgress(ctx, "h", "a", Progress{}); !errors.Is(err, ErrLeaseLost) {
		t.Fatalf("save after delete: %v, want ErrLeaseLost", err)
	}
}

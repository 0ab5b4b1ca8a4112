package store_test

import (
	"context"
	"runtime"
	"testing"
	"time"

	"github.com/geomatch/geomatch/store"
	"github.com/geomatch/geomatch/store/storetest"
)

func TestMemoryConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T) store.Store {
		s := store.NewMemory()
		t.Cleanup(func() { _ = s.Close() })
		return s
	})
}

// TestMemorySubscriptionsLeaveNoGoroutines: subscriptions cost no goroutine
// while they live, and the callbacks that end them are gone once their
// channels are closed.
func TestMemorySubscriptionsLeaveNoGoroutines(t *testing.T) {
	before := runtime.NumGoroutine()
	s := store.NewMemory()
	ctx, cancel := context.WithCancel(t.Context())
	var chans []<-chan store.Event
	for range 100 {
		ch, err := s.Subscribe(ctx)
		if err != nil {
			t.Fatal(err)
		}
		chans = append(chans, ch)
	}
	if n := runtime.NumGoroutine(); n > before {
		t.Fatalf("%d goroutines with 100 live subscriptions, %d before", n, before)
	}
	kept, err := s.Subscribe(t.Context()) // ended by Close, not by a context
	if err != nil {
		t.Fatal(err)
	}
	cancel()
	for _, ch := range chans {
		for range ch {
		}
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	for range kept {
	}
	waitGoroutines(t, before)
	if _, err := s.Subscribe(t.Context()); err == nil {
		t.Fatal("Subscribe on a closed store succeeded")
	}
}

// waitGoroutines waits until no more than want goroutines run, failing
// after a deadline (exiting goroutines take a moment to be counted out).
func waitGoroutines(t *testing.T, want int) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for runtime.NumGoroutine() > want {
		if time.Now().After(deadline) {
			buf := make([]byte, 1<<16)
			buf = buf[:runtime.Stack(buf, true)]
			t.Fatalf("%d goroutines, want at most %d:\n%s", runtime.NumGoroutine(), want, buf)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// runtimeGoroutines is the current goroutine count.
func runtimeGoroutines() int { return runtime.NumGoroutine() }

// waitGoroutinesSettle gives goroutines that are exiting a moment to be
// counted out before a baseline is taken.
func waitGoroutinesSettle() {
	prev := runtime.NumGoroutine()
	for range 50 {
		time.Sleep(10 * time.Millisecond)
		n := runtime.NumGoroutine()
		if n == prev {
			return
		}
		prev = n
	}
}

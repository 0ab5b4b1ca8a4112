package router

import (
	"fmt"
	"runtime/debug"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/geomatch/geomatch/auth"
)

// TestLimiterSetIsBounded: the table of client buckets never holds more
// than its bound, forgets the least recently seen client first, and a
// client's bucket is its own.
func TestLimiterSetIsBounded(t *testing.T) {
	s := newLimiterSet(1, 2, 64) // 4 clients per shard
	now := time.Now()
	for i := 0; i < 10_000; i++ {
		s.allow(fmt.Sprintf("client-%d", i), 1, now)
	}
	if n := s.len(); n > 64 {
		t.Fatalf("%d clients tracked, bound 64", n)
	}
	if !s.allow("a", 2, now) || s.allow("a", 1, now) {
		t.Fatal("a's burst of 2 is not what it was given")
	}
	if !s.allow("b", 2, now) {
		t.Fatal("b was charged for a's calls")
	}
	if !s.allow("a", 1, now.Add(time.Second)) {
		t.Fatal("a's bucket did not refill at 1/s")
	}
}

// TestLimiterSetConcurrent: concurrent clients never get more than their
// bucket allows (run with -race).
func TestLimiterSetConcurrent(t *testing.T) {
	s := newLimiterSet(0.001, 10, 1000)
	now := time.Now()
	var wg sync.WaitGroup
	got := make([]int, 8)
	for g := range got {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 1000; i++ {
				if s.allow(fmt.Sprintf("c%d", i%4), 1, now) {
					got[g]++
				}
			}
		}()
	}
	wg.Wait()
	total := 0
	for _, n := range got {
		total += n
	}
	if total != 40 {
		t.Fatalf("%d calls allowed, want 4 clients × burst 10", total)
	}
}

// TestLimitsByRole: admins are not limited; drivers and riders are, each
// on its own key; a stream limit counts streams out as they end.
func TestLimitsByRole(t *testing.T) {
	cfg := Limits{RequestsPerS: 0.001, RequestBurst: 1, StreamsPerClient: 1}
	if err := cfg.fill(); err != nil {
		t.Fatal(err)
	}
	l := newClientLimits(cfg, nil)
	driver := caller{key: "driver x", claims: auth.Claims{Subject: "x", Role: auth.RoleDriver}, authed: true}
	rider := caller{key: "rider x", claims: auth.Claims{Subject: "x", Role: auth.RoleRider}, authed: true}
	admin := caller{key: "admin ops", claims: auth.Claims{Subject: "ops", Role: auth.RoleAdmin}, authed: true}
	for _, c := range []caller{driver, rider} {
		if err := l.admit(c, bucketRequests, 1); err != nil {
			t.Fatalf("%s first call: %v", c.key, err)
		}
		if err := l.admit(c, bucketRequests, 1); status.Code(err) != codes.ResourceExhausted {
			t.Fatalf("%s second call: %v", c.key, err)
		}
	}
	for i := 0; i < 5; i++ {
		if err := l.admit(admin, bucketRequests, 1); err != nil {
			t.Fatalf("admin call %d: %v", i, err)
		}
	}
	release, err := l.openStream(driver)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := l.openStream(driver); status.Code(err) != codes.ResourceExhausted {
		t.Fatalf("second stream: %v", err)
	}
	release()
	if _, err := l.openStream(driver); err != nil {
		t.Fatalf("stream after release: %v", err)
	}
	if len(l.streams.open) != 1 {
		t.Fatalf("stream table %v", l.streams.open)
	}
}

// TestLimitsConfig: negative limits are refused; bursts default to two
// seconds of the rate.
func TestLimitsConfig(t *testing.T) {
	bad := Limits{UpdatesPerS: -1}
	if err := bad.fill(); err == nil {
		t.Fatal("negative rate accepted")
	}
	l := Limits{UpdatesPerS: 2.5, RequestsPerS: 0.1}
	if err := l.fill(); err != nil {
		t.Fatal(err)
	}
	if l.UpdateBurst != 5 || l.RequestBurst != 1 || l.MaxClients != 100_000 || l.MaxStreams != DefaultMaxStreams() {
		t.Fatalf("defaults %+v", l)
	}
	if bad := (Limits{MaxStreams: -1}); bad.fill() == nil {
		t.Fatal("negative MaxStreams accepted")
	}
}

// TestDefaultMaxStreams: the default follows the memory budget within its
// bounds.
func TestDefaultMaxStreams(t *testing.T) {
	prev := debug.SetMemoryLimit(-1)
	defer debug.SetMemoryLimit(prev)
	for _, c := range []struct {
		limit int64
		want  int
	}{
		{2 << 30, 16384},             // 2 GiB: 1 GiB of 64 KiB streams
		{16 << 20, 1000},             // tiny: the floor
		{1 << 40, maxDefaultStreams}, // huge: the ceiling
	} {
		debug.SetMemoryLimit(c.limit)
		if got := DefaultMaxStreams(); got != c.want {
			t.Errorf("memory limit %d: %d streams, want %d", c.limit, got, c.want)
		}
	}
}

// TestServerStreamsCounted: openServerStream refuses beyond MaxStreams,
// and a release (even twice) gives back exactly one slot.
func TestServerStreamsCounted(t *testing.T) {
	cfg := Limits{MaxStreams: 2}
	if err := cfg.fill(); err != nil {
		t.Fatal(err)
	}
	l := newClientLimits(cfg, nil)
	r1, err := l.openServerStream()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := l.openServerStream(); err != nil {
		t.Fatal(err)
	}
	if _, err := l.openServerStream(); status.Code(err) != codes.ResourceExhausted {
		t.Fatalf("third stream: %v", err)
	}
	r1()
	r1()
	if _, err := l.openServerStream(); err != nil {
		t.Fatalf("after a release: %v", err)
	}
	if n := l.open.Load(); n != 2 {
		t.Fatalf("%d streams counted, want 2", n)
	}
}

// TestTokenCache: a cached token is honoured only within its validity
// period, and the cache stays within its bound.
func TestTokenCache(t *testing.T) {
	c := newTokenCache()
	now := time.Now()
	c.put("t", auth.Claims{Subject: "a", Role: auth.RoleRider, Expiry: now.Add(time.Minute)})
	if cl, ok := c.get("t", now); !ok || cl.Subject != "a" {
		t.Fatalf("cached token: %v %v", cl, ok)
	}
	if _, ok := c.get("t", now.Add(time.Minute+auth.ClockLeeway)); ok {
		t.Fatal("an expired token came from the cache")
	}
	c.put("later", auth.Claims{Subject: "b", Role: auth.RoleRider, NotBefore: now.Add(time.Hour), Expiry: now.Add(2 * time.Hour)})
	if _, ok := c.get("later", now); ok {
		t.Fatal("a token not yet valid came from the cache")
	}
	for i := 0; i < 2*tokenCacheSize; i++ {
		c.put(fmt.Sprint(i), auth.Claims{Expiry: now.Add(time.Hour)})
	}
	if len(c.m) > tokenCacheSize {
		t.Fatalf("%d tokens cached, bound %d", len(c.m), tokenCacheSize)
	}
}

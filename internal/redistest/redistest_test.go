package redistest

import (
	"github.com/geomatch/geomatch/internal/servertest"

	"fmt"
	"runtime"
	"strings"
	"testing"

	"github.com/redis/go-redis/v9"
)

func TestStartAnswersAndStopsAtCleanup(t *testing.T) {
	var addr string
	t.Run("running", func(t *testing.T) {
		addr = Start(t)
		if !strings.HasPrefix(addr, "127.0.0.1:") {
			t.Fatalf("address %s is not on loopback", addr)
		}
		if err := ping(addr); err != nil {
			t.Fatalf("PING: %v", err)
		}
	})
	if err := ping(addr); err == nil {
		t.Fatalf("server on %s still answers after its test ended", addr)
	}
}

func TestServersAreIndependent(t *testing.T) {
	a, b := Start(t), Start(t)
	if a == b {
		t.Fatalf("two servers on one address %s", a)
	}
	ca := redis.NewClient(&redis.Options{Addr: a})
	defer ca.Close()
	cb := redis.NewClient(&redis.Options{Addr: b})
	defer cb.Close()
	if err := ca.Set(t.Context(), "k", "a", 0).Err(); err != nil {
		t.Fatal(err)
	}
	if n, err := cb.Exists(t.Context(), "k").Result(); err != nil || n != 0 {
		t.Fatalf("key of server a seen on server b: %d, %v", n, err)
	}
}

func TestStartWithDirKeepsData(t *testing.T) {
	dir := t.TempDir()
	t.Run("write", func(t *testing.T) {
		c := redis.NewClient(&redis.Options{Addr: StartWithDir(t, dir)})
		defer c.Close()
		if err := c.Set(t.Context(), "k", "kept", 0).Err(); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("read after restart", func(t *testing.T) {
		c := redis.NewClient(&redis.Options{Addr: StartWithDir(t, dir)})
		defer c.Close()
		if v, err := c.Get(t.Context(), "k").Result(); err != nil || v != "kept" {
			t.Fatalf("GET after restart = %q, %v; want kept", v, err)
		}
	})
}

// fakeTB records Skip and Fatal instead of ending the real test.
type fakeTB struct {
	testing.TB
	skipped, failed bool
	msg             string
}

func (f *fakeTB) Helper() {}

func (f *fakeTB) Skip(args ...any) {
	f.skipped, f.msg = true, fmt.Sprint(args...)
	runtime.Goexit()
}

func (f *fakeTB) Fatalf(format string, args ...any) {
	f.failed, f.msg = true, fmt.Sprintf(format, args...)
	runtime.Goexit()
}

// runFake runs Start with a fake TB in its own goroutine (Skip and Fatal
// end it, as they end a test).
func runFake(t *testing.T) *fakeTB {
	f := &fakeTB{TB: t}
	done := make(chan struct{})
	go func() {
		defer close(done)
		Start(f)
	}()
	<-done
	return f
}

func TestMissingBinary(t *testing.T) {
	t.Setenv("PATH", t.TempDir())

	t.Setenv(servertest.RequireServersEnv, "")
	if f := runFake(t); !f.skipped || !strings.Contains(f.msg, "apt-get install redis-server") {
		t.Errorf("without %s: skipped %v failed %v (%q), want a skip saying how to install", servertest.RequireServersEnv, f.skipped, f.failed, f.msg)
	}

	t.Setenv(servertest.RequireServersEnv, "1")
	if f := runFake(t); !f.failed || f.skipped {
		t.Errorf("with %s=1: skipped %v failed %v (%q), want a failure", servertest.RequireServersEnv, f.skipped, f.failed, f.msg)
	}
}

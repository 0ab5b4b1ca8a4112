package natstest

import (
	"github.com/geomatch/geomatch/internal/servertest"

	"fmt"
	"runtime"
	"strings"
	"testing"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

func TestStartAnswersWithJetStreamAndStopsAtCleanup(t *testing.T) {
	var url string
	t.Run("running", func(t *testing.T) {
		url = Start(t)
		if !strings.HasPrefix(url, "nats://127.0.0.1:") {
			t.Fatalf("URL %s is not on loopback", url)
		}
		nc, err := nats.Connect(url)
		if err != nil {
			t.Fatalf("connect: %v", err)
		}
		defer nc.Close()
		js, err := jetstream.New(nc)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := js.AccountInfo(t.Context()); err != nil {
			t.Fatalf("JetStream account info: %v", err)
		}
	})
	if err := hello(strings.TrimPrefix(url, "nats://")); err == nil {
		t.Fatalf("server on %s still answers after its test ended", url)
	}
}

func TestStartWithDirKeepsStreams(t *testing.T) {
	dir := t.TempDir()
	stream := func(t *testing.T, url string) (jetstream.JetStream, func()) {
		nc, err := nats.Connect(url)
		if err != nil {
			t.Fatalf("connect: %v", err)
		}
		js, err := jetstream.New(nc)
		if err != nil {
			t.Fatal(err)
		}
		return js, nc.Close
	}
	t.Run("write", func(t *testing.T) {
		js, closeFn := stream(t, StartWithDir(t, dir))
		defer closeFn()
		if _, err := js.CreateStream(t.Context(), jetstream.StreamConfig{Name: "KEPT", Subjects: []string{"kept"}}); err != nil {
			t.Fatal(err)
		}
		if _, err := js.Publish(t.Context(), "kept", []byte("x")); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("read after restart", func(t *testing.T) {
		js, closeFn := stream(t, StartWithDir(t, dir))
		defer closeFn()
		s, err := js.Stream(t.Context(), "KEPT")
		if err != nil {
			t.Fatalf("stream after restart: %v", err)
		}
		if n := s.CachedInfo().State.Msgs; n != 1 {
			t.Fatalf("%d messages after restart, want 1", n)
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
	saved := debianPath
	debianPath = t.TempDir() + "/nats-server"
	t.Cleanup(func() { debianPath = saved })

	t.Setenv(servertest.RequireServersEnv, "")
	if f := runFake(t); !f.skipped || !strings.Contains(f.msg, "apt-get install nats-server") {
		t.Errorf("without %s: skipped %v failed %v (%q), want a skip saying how to install", servertest.RequireServersEnv, f.skipped, f.failed, f.msg)
	}

	t.Setenv(servertest.RequireServersEnv, "1")
	if f := runFake(t); !f.failed || f.skipped {
		t.Errorf("with %s=1: skipped %v failed %v (%q), want a failure", servertest.RequireServersEnv, f.skipped, f.failed, f.msg)
	}
}

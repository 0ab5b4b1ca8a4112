// Package servertest holds what the tests that start real servers (Redis,
// NATS, Consul, geomatch processes) share: the switch that turns a missing
// server binary from a skip into a failure, free loopback ports, a bounded
// buffer for a server's output, and StartProcess, which runs a server on a
// free port until it answers and stops it when the test ends.
package servertest

import (
	"bytes"
	"fmt"
	"net"
	"os"
	"strconv"
	"sync"
	"testing"
)

// RequireServersEnv is the environment variable that, set to 1, turns a
// missing server binary from a skip into a failure (CI sets it).
const RequireServersEnv = "GEOMATCH_REQUIRE_SERVERS"

// Missing skips the test because a server binary is absent (msg says which
// and how to get it), or fails it when RequireServersEnv is 1.
func Missing(t testing.TB, msg string) {
	t.Helper()
	if os.Getenv(RequireServersEnv) == "1" {
		t.Fatalf("%s (%s=1 forbids skipping)", msg, RequireServersEnv)
	}
	t.Skip(msg)
}

// FreeAddr asks the kernel for a free TCP address on the loopback host.
// The port is released before it returns, so a server started on it may
// still lose a race for it: callers retry.
func FreeAddr(host string) (string, error) {
	l, err := net.Listen("tcp", net.JoinHostPort(host, "0"))
	if err != nil {
		return "", fmt.Errorf("pick a free port on %s: %w", host, err)
	}
	defer l.Close()
	return l.Addr().String(), nil
}

// FreePort is FreeAddr's port on 127.0.0.1.
func FreePort() (int, error) {
	addr, err := FreeAddr("127.0.0.1")
	if err != nil {
		return 0, err
	}
	_, port, _ := net.SplitHostPort(addr)
	return strconv.Atoi(port)
}

// Output collects a server process's output, which os/exec writes from its
// own goroutine while the test reads it. It keeps the first MiB: enough to
// tell what went wrong, bounded however chatty the server is.
type Output struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

// outputMax is how much of the output Output keeps.
const outputMax = 1 << 20

// Write implements io.Writer; past the bound it drops p and reports it
// written, so the process never blocks on its output.
func (o *Output) Write(p []byte) (int, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.buf.Len() < outputMax {
		o.buf.Write(p)
	}
	return len(p), nil
}

// String returns the output kept so far.
func (o *Output) String() string {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.buf.String()
}

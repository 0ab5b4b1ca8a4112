// Package natstest runs a real nats-server with JetStream for tests, so the
// NATS sinks of geomatch (events/hook) are tested against the server they
// publish to in production rather than against a fake.
//
// Start launches a throw-away server on a free loopback port with
// JetStream storing in a temporary directory, waits until it answers with
// JetStream on, and stops it when the test ends:
//
//	func TestSomething(t *testing.T) {
//		url := natstest.Start(t) // nats://127.0.0.1:port
//		nc, err := nats.Connect(url)
//		...
//	}
//
// When nats-server is not on PATH (it is looked up there and in /usr/sbin,
// where the Debian package puts it) the test is skipped with a message
// saying how to install it, unless GEOMATCH_REQUIRE_SERVERS=1 is set (CI
// sets it): then the test fails, so CI never skips silently.
package natstest

import (
	"github.com/geomatch/geomatch/internal/servertest"

	"bufio"
	"errors"
	"fmt"
	"net"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

const (
	// binary is the server executable looked up on PATH.
	binary = "nats-server"
	// portAttempts bounds retries when the free port picked is taken by
	// someone else before the server binds it.
	portAttempts = 5
	// readyTimeout bounds the wait for the server's INFO with JetStream on.
	// A server starts in tens of milliseconds; the margin is for a loaded
	// CI machine.
	readyTimeout = 10 * time.Second
	// stopTimeout is how long a server gets to exit after SIGTERM (it
	// flushes its JetStream files) before it is killed.
	stopTimeout = 5 * time.Second
)

// Start starts a nats-server with JetStream on a free 127.0.0.1 port, its
// store in a directory of t.TempDir(), and returns its URL
// (nats://127.0.0.1:port). The server is stopped in t.Cleanup.
func Start(t testing.TB) (url string) {
	t.Helper()
	return StartWithDir(t, t.TempDir())
}

// StartWithDir starts a server like Start with its JetStream store in dir,
// so a later StartWithDir on the same dir (after the first server stopped)
// sees the streams and messages the first one stored. The URL differs from
// one server to the next.
func StartWithDir(t testing.TB, dir string) (url string) {
	t.Helper()
	path := lookPath(t)
	var lastErr error
	for range portAttempts {
		port, err := servertest.FreePort()
		if err != nil {
			t.Fatalf("natstest: pick a port: %v", err)
		}
		srv, err := launch(path, dir, port)
		if err == nil {
			t.Cleanup(srv.stop)
			return "nats://" + srv.addr
		}
		lastErr = err
		if !errors.Is(err, errExited) {
			break // not a collision: retrying will not help
		}
	}
	t.Fatalf("natstest: start nats-server: %v", lastErr)
	return ""
}

// debianPath is where the Debian package installs nats-server, off most
// users' PATH (a variable so the tests can hide it).
var debianPath = "/usr/sbin/nats-server"

// lookPath finds nats-server, or skips the test (fails it when
// GEOMATCH_REQUIRE_SERVERS=1).
func lookPath(t testing.TB) string {
	t.Helper()
	if path, err := exec.LookPath(binary); err == nil {
		return path
	}
	if path, err := exec.LookPath(debianPath); err == nil {
		return path
	}
	servertest.Missing(t, "nats-server not installed: apt-get install nats-server")
	return ""
}

// errExited marks a server that exited before answering, typically because
// the port was taken between servertest.FreePort and bind.
var errExited = errors.New("nats-server exited before it was ready")

// server is one running nats-server process.
type server struct {
	addr string
	cmd  *exec.Cmd
	done chan struct{} // closed when the process has been waited for
	out  *servertest.Output
}

// launch starts the process and waits until it greets a client with
// JetStream on.
func launch(path, dir string, port int) (*server, error) {
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	cmd := exec.Command(path, "-a", "127.0.0.1", "-p", strconv.Itoa(port), "-js", "-sd", dir)
	out := &servertest.Output{}
	cmd.Stdout = out
	cmd.Stderr = out
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("run %s: %w", path, err)
	}
	s := &server{addr: addr, cmd: cmd, done: make(chan struct{}), out: out}
	go func() {
		_ = cmd.Wait()
		close(s.done)
	}()

	deadline := time.Now().Add(readyTimeout)
	for {
		if hello(addr) == nil {
			return s, nil
		}
		select {
		case <-s.done:
			return nil, fmt.Errorf("%w on %s: %s", errExited, addr, lastLines(out.String(), 5))
		case <-time.After(20 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			s.stop()
			return nil, fmt.Errorf("no INFO with JetStream from %s within %v: %s", addr, readyTimeout, lastLines(out.String(), 5))
		}
	}
}

// stop terminates the server: SIGTERM, then SIGKILL after stopTimeout, and
// waits for the process either way.
func (s *server) stop() {
	_ = s.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-s.done:
		return
	case <-time.After(stopTimeout):
	}
	_ = s.cmd.Process.Kill()
	<-s.done
}

// hello reads the INFO line a NATS server sends every new client and
// checks that it announces JetStream.
func hello(addr string) error {
	c, err := net.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		return err
	}
	defer c.Close()
	if err := c.SetDeadline(time.Now().Add(time.Second)); err != nil {
		return err
	}
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil {
		return err
	}
	if !strings.HasPrefix(line, "INFO ") {
		return fmt.Errorf("greeted with %q", line)
	}
	if !strings.Contains(line, `"jetstream":true`) {
		return errors.New("JetStream not on yet")
	}
	return nil
}

// lastLines returns the last n lines of s, for error messages.
func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, " | ")
}

// Package redistest runs a real redis-server for tests, so the Redis-backed
// parts of geomatch (store.Redis) are tested against the server they run on
// in production rather than against a fake.
//
// Start launches a throw-away server on a free loopback port with
// persistence off, waits until it answers PING, and stops it when the test
// ends:
//
//	func TestSomething(t *testing.T) {
//		addr := redistest.Start(t)
//		s, err := store.NewRedis(ctx, store.RedisOptions{Addr: addr})
//		...
//	}
//
// StartWithDir runs a server with an append-only file in a given directory,
// for tests that stop a server and start another one on the same data.
//
// When redis-server is not on PATH the test is skipped with a message saying
// how to install it, unless GEOMATCH_REQUIRE_SERVERS=1 is set (CI sets it):
// then the test fails, so CI never skips silently.
package redistest

import (
	"github.com/geomatch/geomatch/internal/servertest"

	"bufio"
	"bytes"
	"errors"
	"fmt"
	"net"
	"os/exec"
	"strconv"
	"syscall"
	"testing"
	"time"
)

const (
	// binary is the server executable looked up on PATH.
	binary = "redis-server"
	// portAttempts bounds retries when the free port picked is taken by
	// someone else before the server binds it.
	portAttempts = 5
	// readyTimeout bounds the wait for the first PONG. A server starts in
	// milliseconds; the margin is for a loaded CI machine.
	readyTimeout = 10 * time.Second
	// stopTimeout is how long a server gets to exit after SIGTERM (it
	// rewrites nothing with persistence off, and fsyncs the AOF with it on)
	// before it is killed.
	stopTimeout = 5 * time.Second
)

// Start starts a redis-server on a free 127.0.0.1 port with persistence off
// and returns its address (host:port). The server is stopped in t.Cleanup.
func Start(t testing.TB) (addr string) {
	t.Helper()
	path := lookPath(t)
	return start(t, path, t.TempDir(), "--save", "", "--appendonly", "no")
}

// StartWithDir starts a redis-server like Start, but with its working
// directory at dir and the append-only file on, so the data survives the
// server: a later StartWithDir on the same dir (after the first server
// stopped, e.g. at the end of a subtest) sees what the first one wrote. The
// address differs from one server to the next.
func StartWithDir(t testing.TB, dir string) (addr string) {
	t.Helper()
	path := lookPath(t)
	return start(t, path, dir, "--save", "", "--appendonly", "yes", "--appendfsync", "always")
}

// lookPath finds redis-server, or skips the test (fails it when
// GEOMATCH_REQUIRE_SERVERS=1).
func lookPath(t testing.TB) string {
	t.Helper()
	path, err := exec.LookPath(binary)
	if err != nil {
		msg := "redis-server not installed: apt-get install redis-server"
		servertest.Missing(t, msg)
	}
	return path
}

// start runs the server with the common flags plus extra, retrying on a
// port collision.
func start(t testing.TB, path, dir string, extra ...string) string {
	t.Helper()
	var lastErr error
	for range portAttempts {
		port, err := servertest.FreePort()
		if err != nil {
			t.Fatalf("redistest: pick a port: %v", err)
		}
		srv, err := launch(path, dir, port, extra)
		if err == nil {
			t.Cleanup(srv.stop)
			return srv.addr
		}
		lastErr = err
		if !errors.Is(err, errExited) {
			break // not a collision: retrying will not help
		}
	}
	t.Fatalf("redistest: start redis-server: %v", lastErr)
	return ""
}

// errExited marks a server that exited before answering, typically because
// the port was taken between servertest.FreePort and bind.
var errExited = errors.New("redis-server exited before it was ready")

// server is one running redis-server process.
type server struct {
	addr string
	cmd  *exec.Cmd
	done chan struct{} // closed when the process has been waited for
	out  *servertest.Output
}

// launch starts the process and waits until it answers PING.
func launch(path, dir string, port int, extra []string) (*server, error) {
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	args := append([]string{
		"--port", strconv.Itoa(port),
		"--bind", "127.0.0.1",
		"--dir", dir,
		"--daemonize", "no",
		"--logfile", "",
	}, extra...)
	cmd := exec.Command(path, args...)
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
		if ping(addr) == nil {
			return s, nil
		}
		select {
		case <-s.done:
			return nil, fmt.Errorf("%w on %s: %s", errExited, addr, lastLines(out.String(), 5))
		case <-time.After(20 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			s.stop()
			return nil, fmt.Errorf("no PONG from %s within %v: %s", addr, readyTimeout, lastLines(out.String(), 5))
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

// ping sends an inline PING and expects +PONG.
func ping(addr string) error {
	c, err := net.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		return err
	}
	defer c.Close()
	if err := c.SetDeadline(time.Now().Add(time.Second)); err != nil {
		return err
	}
	if _, err := c.Write([]byte("PING\r\n")); err != nil {
		return err
	}
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil {
		return err
	}
	if line != "+PONG\r\n" {
		return fmt.Errorf("PING answered %q", line)
	}
	return nil
}

// lastLines returns the last n lines of s, for error messages.
func lastLines(s string, n int) string {
	lines := bytes.Split(bytes.TrimSpace([]byte(s)), []byte("\n"))
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return string(bytes.Join(lines, []byte(" | ")))
}

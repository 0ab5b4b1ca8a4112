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
	"fmt"
	"net"
	"os/exec"
	"strconv"
	"testing"
	"time"
)

// binary is the server executable looked up on PATH.
const binary = "redis-server"

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

// start runs the server in dir with the common flags plus extra.
func start(t testing.TB, path, dir string, extra ...string) string {
	t.Helper()
	return servertest.StartProcess(t, servertest.Server{
		Name: binary, Path: path, Ready: ping,
		Args: func(port int) []string {
			return append([]string{
				"--port", strconv.Itoa(port),
				"--bind", "127.0.0.1",
				"--dir", dir,
				"--daemonize", "no",
				"--logfile", "",
			}, extra...)
		},
	})
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

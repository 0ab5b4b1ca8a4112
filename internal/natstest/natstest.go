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
	"testing"
	"time"
)

// binary is the server executable looked up on PATH.
const binary = "nats-server"

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
	addr := servertest.StartProcess(t, servertest.Server{
		Name: binary, Path: path, Ready: hello,
		Args: func(port int) []string {
			return []string{"-a", "127.0.0.1", "-p", strconv.Itoa(port), "-js", "-sd", dir}
		},
	})
	return "nats://" + addr
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

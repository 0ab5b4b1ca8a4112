// Package consultest runs a real Consul agent in dev mode for tests, so the
// Consul-backed membership of geomatch (the ring in KV, the writer lock,
// matcher health checks) is tested against the server it runs on in
// production.
//
// The binary is found as $GEOMATCH_CONSUL_BINARY, then `consul` on PATH, then the
// cache that scripts/install-consul.sh fills (~/.cache/geomatch/consul-
// v1.13.9/consul). When none exists the test is skipped with a message
// saying how to build it, unless GEOMATCH_REQUIRE_SERVERS=1 is set (CI sets
// it): then the test fails.
package consultest

import (
	"github.com/geomatch/geomatch/internal/servertest"

	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"
)

// BinaryEnv names the Consul binary to use.
const BinaryEnv = "GEOMATCH_CONSUL_BINARY"

// Version is the Consul release scripts/install-consul.sh builds.
const Version = "v1.13.9"

// Agent is a running `consul agent -dev`.
type Agent struct {
	// Addr is the HTTP API address (host:port).
	Addr string

	path  string
	ports []int
	cmd   *exec.Cmd
	done  chan struct{}
	out   *servertest.Output
	once  sync.Once
}

// Binary returns the path of the Consul binary, or "" when there is none.
func Binary() string {
	if p := os.Getenv(BinaryEnv); p != "" {
		return p
	}
	if p, err := exec.LookPath("consul"); err == nil {
		return p
	}
	cache := os.Getenv("GEOMATCH_CACHE")
	if cache == "" {
		if dir, err := os.UserCacheDir(); err == nil {
			cache = filepath.Join(dir, "geomatch")
		}
	}
	p := filepath.Join(cache, "consul-"+Version, "consul")
	if st, err := os.Stat(p); err == nil && st.Mode()&0o111 != 0 {
		return p
	}
	return ""
}

// Start starts a dev agent on free loopback ports and stops it when the test
// ends.
func Start(t testing.TB) *Agent {
	t.Helper()
	path := Binary()
	if path == "" {
		msg := "consul not found: run scripts/install-consul.sh (builds Consul " + Version + " from the Go module proxy) or set " + BinaryEnv
		servertest.Missing(t, msg)
	}
	var lastErr error
	for range 3 {
		a, err := launch(path)
		if err == nil {
			t.Cleanup(a.Stop)
			return a
		}
		lastErr = err
	}
	t.Fatalf("consultest: %v", lastErr)
	return nil
}

func launch(path string) (*Agent, error) {
	ports := make([]int, 4)
	for i := range ports {
		p, err := servertest.FreePort()
		if err != nil {
			return nil, err
		}
		ports[i] = p
	}
	return launchOn(path, ports)
}

func launchOn(path string, ports []int) (*Agent, error) {
	args := []string{"agent", "-dev", "-bind", "127.0.0.1", "-client", "127.0.0.1",
		"-http-port", strconv.Itoa(ports[0]), "-dns-port", "-1", "-grpc-port", "-1",
		"-server-port", strconv.Itoa(ports[1]), "-serf-lan-port", strconv.Itoa(ports[2]),
		"-serf-wan-port", strconv.Itoa(ports[3]), "-log-level", "warn"}
	cmd := exec.Command(path, args...)
	out := &servertest.Output{}
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("run %s: %w", path, err)
	}
	a := &Agent{Addr: net.JoinHostPort("127.0.0.1", strconv.Itoa(ports[0])), path: path, ports: ports, cmd: cmd, done: make(chan struct{}), out: out}
	go func() { _ = cmd.Wait(); close(a.done) }()
	if err := a.WaitReady(20 * time.Second); err != nil {
		a.Stop()
		return nil, err
	}
	return a, nil
}

// WaitReady waits until the agent has a leader.
func (a *Agent) WaitReady(timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	client := &http.Client{Timeout: time.Second}
	for time.Now().Before(deadline) {
		select {
		case <-a.done:
			return fmt.Errorf("consul exited before it was ready: %s", a.out.String())
		default:
		}
		resp, err := client.Get("http://" + a.Addr + "/v1/status/leader")
		if err == nil {
			var buf bytes.Buffer
			_, _ = buf.ReadFrom(resp.Body)
			resp.Body.Close()
			if resp.StatusCode == 200 && len(bytes.Trim(buf.Bytes(), "\" \n")) > 0 {
				return nil
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	return errors.New("consul did not elect a leader in time")
}

// Pause stops the agent's process (SIGSTOP): it keeps its ports and state
// but answers nothing, like a hung or partitioned server.
func (a *Agent) Pause() error { return a.cmd.Process.Signal(syscall.SIGSTOP) }

// Resume continues a paused agent (SIGCONT).
func (a *Agent) Resume() error { return a.cmd.Process.Signal(syscall.SIGCONT) }

// Stop ends the agent (and waits for it).
func (a *Agent) Stop() {
	a.once.Do(func() {
		_ = a.cmd.Process.Signal(syscall.SIGCONT)
		_ = a.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-a.done:
		case <-time.After(5 * time.Second):
			_ = a.cmd.Process.Kill()
			<-a.done
		}
	})
}

// Restart stops the agent and starts a new one on the same ports. A dev
// agent keeps everything in memory, so the new one starts empty: this is
// the loss of a Consul's data.
func (a *Agent) Restart() error {
	a.Stop()
	var err error
	for range 20 { // the ports may linger for a moment
		var b *Agent
		if b, err = launchOn(a.path, a.ports); err == nil {
			a.cmd, a.done, a.out, a.once = b.cmd, b.done, b.out, sync.Once{}
			return nil
		}
		time.Sleep(250 * time.Millisecond)
	}
	return fmt.Errorf("restart consul: %w", err)
}

// Logs returns what the agent printed.
func (a *Agent) Logs() string { return a.out.String() }

// WaitFor polls cond every 20 ms until it is true or timeout passes.
func WaitFor(ctx context.Context, timeout time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) && ctx.Err() == nil {
		if cond() {
			return true
		}
		time.Sleep(20 * time.Millisecond)
	}
	return cond()
}

package servertest

import (
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

// Timings of StartProcess.
const (
	// portAttempts bounds retries when the free port picked is taken by
	// someone else before the server binds it.
	portAttempts = 5
	// readyTimeout bounds the wait for a server to answer. Servers start in
	// milliseconds; the margin is for a loaded CI machine.
	readyTimeout = 10 * time.Second
	// stopTimeout is how long a server gets to exit after SIGTERM (to
	// flush what it persists) before it is killed.
	stopTimeout = 5 * time.Second
)

// Server is how to run one kind of server for a test.
type Server struct {
	// Name names the server in errors ("redis-server").
	Name string
	// Path is the executable.
	Path string
	// Args returns the command line for a loopback port.
	Args func(port int) []string
	// Ready reports nil once the server at addr answers as it should.
	Ready func(addr string) error
}

// StartProcess starts s on a free 127.0.0.1 port and waits until it is
// ready, retrying on another port when the process exits first (the port
// was taken between FreePort and its bind). The server is stopped in
// t.Cleanup: SIGTERM, then SIGKILL after stopTimeout. It returns the
// server's host:port.
func StartProcess(t testing.TB, s Server) (addr string) {
	t.Helper()
	var lastErr error
	for range portAttempts {
		port, err := FreePort()
		if err != nil {
			t.Fatalf("%s: pick a port: %v", s.Name, err)
		}
		p, err := launch(s, port)
		if err == nil {
			t.Cleanup(p.stop)
			return p.addr
		}
		lastErr = err
		if !errors.Is(err, errExited) {
			break // not a collision: retrying will not help
		}
	}
	t.Fatalf("start %s: %v", s.Name, lastErr)
	return ""
}

// errExited marks a server that exited before it was ready.
var errExited = errors.New("exited before it was ready")

// process is one running server.
type process struct {
	addr string
	cmd  *exec.Cmd
	done chan struct{} // closed when the process has been waited for
}

// launch starts the process and waits until it is ready.
func launch(s Server, port int) (*process, error) {
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	cmd := exec.Command(s.Path, s.Args(port)...)
	out := &Output{}
	cmd.Stdout = out
	cmd.Stderr = out
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("run %s: %w", s.Path, err)
	}
	p := &process{addr: addr, cmd: cmd, done: make(chan struct{})}
	go func() {
		_ = cmd.Wait()
		close(p.done)
	}()
	deadline := time.Now().Add(readyTimeout)
	for {
		err := s.Ready(addr)
		if err == nil {
			return p, nil
		}
		select {
		case <-p.done:
			return nil, fmt.Errorf("%s %w on %s: %s", s.Name, errExited, addr, lastLines(out.String(), 5))
		case <-time.After(20 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			p.stop()
			return nil, fmt.Errorf("%s on %s not ready within %v (%v): %s", s.Name, addr, readyTimeout, err, lastLines(out.String(), 5))
		}
	}
}

// stop terminates the process: SIGTERM, then SIGKILL after stopTimeout,
// and waits for it either way.
func (p *process) stop() {
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
		return
	case <-time.After(stopTimeout):
	}
	_ = p.cmd.Process.Kill()
	<-p.done
}

// lastLines returns the last n lines of s, for error messages.
func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, " | ")
}

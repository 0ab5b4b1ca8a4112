package deploy

import (
	"github.com/geomatch/geomatch/internal/servertest"

	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// binary is the geomatch binary TestMain builds: the tests run it as the
// images of the deployment would.
var binary string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "geomatch-deploy-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	binary = filepath.Join(dir, "geomatch")
	if out, err := exec.Command("go", "build", "-o", binary, "../cmd/geomatch").CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "build geomatch: %v\n%s", err, out)
		os.RemoveAll(dir)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// baseEnv is the environment every process starts from: enough to run,
// and none of the test machine's GEOMATCH_* variables, so a process sees
// exactly the configuration the deployment file gives it.
func baseEnv() []string {
	env := []string{"PATH=" + os.Getenv("PATH")}
	for _, k := range []string{"HOME", "TMPDIR"} {
		if v, ok := os.LookupEnv(k); ok {
			env = append(env, k+"="+v)
		}
	}
	return env
}

// proc is one geomatch process of a deployment under test.
type proc struct {
	name string
	cmd  *exec.Cmd
	out  *servertest.Output
	done chan struct{} // closed once the process has been waited for
	err  error         // its exit status, once done is closed
}

// startProc runs the binary with args and env (added to baseEnv). The
// process is killed when the test ends if it still runs, and its output
// is logged if the test failed.
func startProc(t *testing.T, name string, args []string, env map[string]string) *proc {
	t.Helper()
	cmd := exec.Command(binary, args...)
	cmd.Env = baseEnv()
	for k, v := range env {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	out := &servertest.Output{}
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", name, err)
	}
	p := &proc{name: name, cmd: cmd, out: out, done: make(chan struct{})}
	go func() { p.err = cmd.Wait(); close(p.done) }()
	t.Cleanup(func() {
		select {
		case <-p.done:
		default:
			_ = cmd.Process.Kill()
			<-p.done
		}
		if t.Failed() {
			t.Logf("output of %s (%s):\n%s", name, strings.Join(args, " "), out.String())
		}
	})
	return p
}

// alive fails the test if the process has exited.
func (p *proc) alive(t *testing.T) {
	t.Helper()
	select {
	case <-p.done:
		t.Fatalf("%s exited (%v):\n%s", p.name, p.err, p.out.String())
	default:
	}
}

// stop sends SIGTERM and expects a clean exit within grace, the time the
// deployment gives the process before it kills it.
func (p *proc) stop(t *testing.T, grace time.Duration) time.Duration {
	t.Helper()
	start := time.Now()
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatalf("signal %s: %v", p.name, err)
	}
	select {
	case <-p.done:
		if p.err != nil {
			t.Fatalf("%s exited with %v after SIGTERM, want 0", p.name, p.err)
		}
	case <-time.After(grace):
		t.Fatalf("%s still running %v after SIGTERM (its grace period)", p.name, grace)
	}
	return time.Since(start)
}

// run runs the binary to completion (bounded by timeout) and returns its
// standard output.
func run(t *testing.T, timeout time.Duration, env map[string]string, args ...string) (string, error) {
	t.Helper()
	cmd := exec.Command(binary, args...)
	cmd.Env = baseEnv()
	for k, v := range env {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Start(); err != nil {
		return "", err
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			return stdout.String(), fmt.Errorf("geomatch %s: %w: %s", strings.Join(args, " "), err, stderr.String())
		}
		return stdout.String(), nil
	case <-time.After(timeout):
		_ = cmd.Process.Kill()
		<-done
		return stdout.String(), fmt.Errorf("geomatch %s: still running after %v", strings.Join(args, " "), timeout)
	}
}

// usage returns what `geomatch ARGS --help` prints: the flags of a
// command and their environment twins.
func usage(t *testing.T, args ...string) string {
	t.Helper()
	cmd := exec.Command(binary, append(args, "--help")...)
	cmd.Env = baseEnv()
	out, _ := cmd.CombinedOutput() // --help exits non-zero
	if !strings.Contains(string(out), "Usage: geomatch") {
		t.Fatalf("geomatch %s --help printed no usage:\n%s", strings.Join(args, " "), out)
	}
	return string(out)
}

// waitFor polls cond every 50 ms until it returns nil or timeout passes,
// then fails the test with the last error.
func waitFor(t *testing.T, timeout time.Duration, what string, cond func() error) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		err := cond()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %v: %v", what, timeout, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

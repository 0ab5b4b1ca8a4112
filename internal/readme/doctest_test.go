package readme

// TestREADME is the README's doc-test: it runs every shell block of
// README.md that a reader is meant to run, in order, against the processes
// the README describes, with the built geomatch binary as `geomatch` (on
// PATH) and as `bin/geomatch`. The directives (HTML comments before a block;
// see doc.go) group blocks into sessions, skip a block with a reason, run a
// long-running process in the background until a line of its output says it
// is ready, and check a block's output against a pattern:
//
//	<!-- doctest: session NAME [needs=redis,consul] [dir=repo] -->
//	<!-- doctest: skip REASON -->
//	<!-- doctest: background [REGEX] -->
//	<!-- doctest: expect REGEX -->
//
// A session is one `bash -euo pipefail` reading its blocks one after the
// other, in a directory of its own (or, with dir=repo, in the repository's
// root: `go run ./examples/...`); its background processes (a `&` in a
// block, or a background block) are stopped with their process group when
// the session ends. Every 127.0.0.x:PORT address of a session is replaced by
// a free port on that host, except 127.0.0.1:6379 and 127.0.0.1:8500, which
// become the session's own redis-server and Consul agent (needs=), and
// 127.0.0.1:8080, which becomes an HTTP server that answers 200 (a webhook
// sink). GEOMATCH_TARGET, the admin CLI's default router, is the address that
// 127.0.0.1:50051 became. Each block must exit 0 within blockTimeout and its
// output match its expect patterns. With -short only the sessions that need
// no server run.
//
// To add an example to the README: write it so that it runs as it stands on a
// fresh clone (mint keys and tokens in the example, capture ids in shell
// variables), then run `go test -count=1 -run TestREADME -v ./internal/readme/`.

import (
	"bytes"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/geomatch/geomatch/internal/consultest"
	"github.com/geomatch/geomatch/internal/redistest"
	"github.com/geomatch/geomatch/internal/servertest"
)

const (
	// blockTimeout bounds one block, or the wait for a background block to
	// say it is ready: generous, for a loaded 2-core CI machine.
	blockTimeout = 2 * time.Minute
	// stopTimeout is how long a session's processes get to stop after
	// SIGTERM before they are killed.
	stopTimeout = 10 * time.Second
	// routerAddr is the README's router address, the admin CLI's default.
	routerAddr = "127.0.0.1:50051"
	// webhookAddr is the README's webhook sink.
	webhookAddr = "127.0.0.1:8080"
	// pollEvery is how often a session's output is read while waiting.
	pollEvery = 50 * time.Millisecond
)

// tools are the commands besides geomatch that README examples call, with
// how to install each; a session that mentions one needs it.
var tools = []struct{ name, install string }{
	{"grpcurl", "go install github.com/fullstorydev/grpcurl/cmd/grpcurl@v1.9.3"},
	{"jq", "apt-get install jq"},
	{"redis-cli", "apt-get install redis-tools"},
}

var (
	buildOnce sync.Once
	buildDir  string
	buildErr  error
)

// geomatchBinary builds cmd/geomatch once per test process and returns the
// directory that holds it as `geomatch`.
func geomatchBinary(t *testing.T) string {
	t.Helper()
	buildOnce.Do(func() {
		buildDir, buildErr = os.MkdirTemp("", "geomatch-readme-")
		if buildErr != nil {
			return
		}
		out, err := exec.Command("go", "build", "-o", filepath.Join(buildDir, "geomatch"), "../../cmd/geomatch").CombinedOutput()
		if err != nil {
			buildErr = fmt.Errorf("build geomatch: %v\n%s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return buildDir
}

func TestMain(m *testing.M) {
	code := m.Run()
	if buildDir != "" {
		os.RemoveAll(buildDir)
	}
	os.Exit(code)
}

func TestREADME(t *testing.T) {
	md, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	sessions, err := Parse(string(md))
	if err != nil {
		t.Fatalf("README.md: %v", err)
	}
	if _, err := exec.LookPath("bash"); err != nil {
		servertest.Missing(t, "bash not found (apt-get install bash): the README's blocks are bash")
	}
	for _, s := range sessions {
		if !s.Runs() {
			for _, b := range s.Blocks {
				t.Logf("README.md:%d: not run: %s", b.Line, b.Skip)
			}
			continue
		}
		t.Run(s.Name, func(t *testing.T) {
			if testing.Short() && len(s.Needs) > 0 {
				t.Skipf("session %s needs %s: runs without -short", s.Name, strings.Join(s.Needs, ", "))
			}
			runSession(t, s)
		})
	}
}

// runSession runs the blocks of s in one shell.
func runSession(t *testing.T, s Session) {
	text := s.Text()
	for _, tool := range tools {
		if regexp.MustCompile(`(^|[\s|$(])` + regexp.QuoteMeta(tool.name) + `\s`).MatchString(text) {
			if _, err := exec.LookPath(tool.name); err != nil {
				servertest.Missing(t, fmt.Sprintf("%s not found (%s); the README's session %s calls it", tool.name, tool.install, s.Name))
			}
		}
	}
	bin := geomatchBinary(t)
	addrs := sessionAddrs(t, s)

	dir := t.TempDir()
	workDir := dir
	if s.InRepo {
		// bin/geomatch there is whatever make build left, if anything.
		if strings.Contains(text, "bin/geomatch") {
			t.Fatalf("session %s (README.md:%d) runs in the repository (dir=repo): call the binary as geomatch, not bin/geomatch", s.Name, s.Line)
		}
		root, err := filepath.Abs("../..")
		if err != nil {
			t.Fatal(err)
		}
		workDir = root
	} else {
		if err := os.Mkdir(filepath.Join(dir, "bin"), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.Symlink(filepath.Join(bin, "geomatch"), filepath.Join(dir, "bin", "geomatch")); err != nil {
			t.Fatal(err)
		}
	}
	sh := startShell(t, workDir, dir, []string{
		"PATH=" + bin + string(os.PathListSeparator) + os.Getenv("PATH"),
		"GEOMATCH_TARGET=" + addrs[routerAddr],
	})
	for i, b := range s.Blocks {
		if b.Skip != "" {
			t.Logf("README.md:%d: not run: %s", b.Line, b.Skip)
			continue
		}
		code := Substitute(b.Text, addrs)
		began := time.Now()
		if b.Background {
			sh.background(t, b, code, i)
			t.Logf("README.md:%d: running in the background (ready in %v)", b.Line, time.Since(began).Round(time.Millisecond))
			continue
		}
		out := sh.run(t, b, code, i)
		for _, re := range b.Expect {
			if !re.MatchString(out) {
				t.Fatalf("README.md:%d: the output does not match %q:\n%s", b.Line, re, out)
			}
		}
		t.Logf("README.md:%d: ok in %v", b.Line, time.Since(began).Round(time.Millisecond))
	}
}

// sessionAddrs maps every loopback address of s (and the router's) to where
// it is in this test: the session's servers, a webhook sink, or a free port
// on the same host.
func sessionAddrs(t *testing.T, s Session) map[string]string {
	m := map[string]string{}
	for _, name := range s.Needs {
		switch name {
		case "redis":
			m[Servers[name]] = redistest.Start(t)
		case "consul":
			m[Servers[name]] = consultest.Start(t).Addr
		}
	}
	for _, a := range append(Addresses(s.Text()), routerAddr) {
		if _, ok := m[a]; ok {
			continue
		}
		for name, sa := range Servers {
			if a == sa {
				t.Fatalf("session %s (README.md:%d) uses %s's address %s: start it with <!-- doctest: session %s needs=%s -->", s.Name, s.Line, name, a, s.Name, name)
			}
		}
		if a == webhookAddr {
			sink := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
			t.Cleanup(sink.Close)
			m[a] = sink.Listener.Addr().String()
			continue
		}
		host := a[:strings.LastIndexByte(a, ':')]
		free, err := servertest.FreeAddr(host)
		if err != nil {
			t.Fatal(err)
		}
		m[a] = free
	}
	return m
}

// shell is one session's bash, reading blocks on its stdin and writing
// everything to one log file.
type shell struct {
	dir   string
	cmd   *exec.Cmd
	stdin *os.File
	log   string
	done  chan struct{}
	bgs   []string // logs of the background blocks
}

// startShell starts bash in workDir with env added to the test's
// environment (less any GEOMATCH_ variable), its logs in logDir, and stops it
// and every process it started when the test ends.
func startShell(t *testing.T, workDir, logDir string, env []string) *shell {
	sh := &shell{dir: logDir, log: filepath.Join(logDir, ".doctest-session.log"), done: make(chan struct{})}
	logf, err := os.Create(sh.log)
	if err != nil {
		t.Fatal(err)
	}
	defer logf.Close()
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	sh.stdin = w
	cmd := exec.Command("bash", "--noprofile", "--norc", "-euo", "pipefail", "-s")
	cmd.Dir = workDir
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "GEOMATCH_") {
			cmd.Env = append(cmd.Env, kv)
		}
	}
	cmd.Env = append(cmd.Env, env...)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = r, logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		w.Close()
		t.Fatalf("start bash: %v", err)
	}
	sh.cmd = cmd
	go func() {
		cmd.Wait()
		close(sh.done)
	}()
	t.Cleanup(func() {
		began := time.Now()
		sh.stop(t)
		t.Logf("session stopped in %v", time.Since(began).Round(time.Millisecond))
		if t.Failed() {
			t.Logf("session output:\n%s", tail(sh.log))
			for _, bg := range sh.bgs {
				t.Logf("output of the background block %s:\n%s", filepath.Base(bg), tail(bg))
			}
		}
	})
	return sh
}

// stop ends the shell and its process group: SIGTERM (the geomatch
// processes shut down gracefully), then SIGKILL after stopTimeout.
func (sh *shell) stop(t *testing.T) {
	sh.stdin.Close()
	pgid := sh.cmd.Process.Pid
	_ = syscall.Kill(-pgid, syscall.SIGTERM)
	deadline := time.Now().Add(stopTimeout)
	select {
	case <-sh.done:
	case <-time.After(stopTimeout):
	}
	for time.Now().Before(deadline) {
		if err := syscall.Kill(-pgid, 0); errors.Is(err, syscall.ESRCH) {
			return
		}
		time.Sleep(pollEvery)
	}
	t.Errorf("processes of the session still running %v after SIGTERM: killed", stopTimeout)
	_ = syscall.Kill(-pgid, syscall.SIGKILL)
	<-sh.done
}

// run runs one block in the foreground and returns its output.
func (sh *shell) run(t *testing.T, b Block, code string, i int) string {
	t.Helper()
	marker := fmt.Sprintf("@@doctest block %d done@@", i)
	start := size(sh.log)
	sh.send(t, b, fmt.Sprintf("{\n%s\n} </dev/null\necho '%s'\n", code, marker))
	deadline := time.After(blockTimeout)
	for {
		out := readFrom(sh.log, start)
		if k := strings.Index(out, marker+"\n"); k >= 0 {
			return out[:k]
		}
		select {
		case <-sh.done:
			out = readFrom(sh.log, start)
			t.Fatalf("README.md:%d failed (%v):\n%s\noutput:\n%s", b.Line, sh.cmd.ProcessState, code, out)
		case <-deadline:
			t.Fatalf("README.md:%d still running after %v:\n%s\noutput:\n%s", b.Line, blockTimeout, code, readFrom(sh.log, start))
		case <-time.After(pollEvery):
		}
	}
}

// background starts a block in the background, its output in a file of its
// own, and waits for the line that says it is ready.
func (sh *shell) background(t *testing.T, b Block, code string, i int) {
	t.Helper()
	log := filepath.Join(sh.dir, fmt.Sprintf(".doctest-background-%d.log", b.Line))
	sh.bgs = append(sh.bgs, log)
	// The line after the block says when it ends: a failure, before it said
	// it is ready.
	const exited = "@@doctest background block exited@@"
	sh.run(t, b, fmt.Sprintf("{ {\n%s\n} >'%s' 2>&1 || true; echo '%s' >>'%s'; } &", code, log, exited, log), i)
	if b.Wait == nil {
		return
	}
	deadline := time.After(blockTimeout)
	for {
		out := readFrom(log, 0)
		if b.Wait.MatchString(out) {
			return
		}
		if strings.Contains(out, exited) {
			t.Fatalf("README.md:%d: exited before an output line matched %q:\n%s", b.Line, b.Wait, tail(log))
		}
		select {
		case <-deadline:
			t.Fatalf("README.md:%d: no output line matched %q within %v:\n%s", b.Line, b.Wait, blockTimeout, tail(log))
		case <-time.After(pollEvery):
		}
	}
}

// send writes a block's code to the shell.
func (sh *shell) send(t *testing.T, b Block, code string) {
	t.Helper()
	if _, err := sh.stdin.WriteString(code); err != nil {
		t.Fatalf("README.md:%d: the session's shell has exited: %v", b.Line, err)
	}
}

// size is the size of a file, 0 when it cannot be read.
func size(path string) int64 {
	st, err := os.Stat(path)
	if err != nil {
		return 0
	}
	return st.Size()
}

// readFrom returns a file's content from offset on.
func readFrom(path string, offset int64) string {
	data, err := os.ReadFile(path)
	if err != nil || int64(len(data)) < offset {
		return ""
	}
	return string(data[offset:])
}

// tail returns the last lines of a file, for a failure's message.
func tail(path string) string {
	const limit = 8 << 10
	data, err := os.ReadFile(path)
	if err != nil {
		return err.Error()
	}
	if len(data) > limit {
		data = data[len(data)-limit:]
		if k := bytes.IndexByte(data, '\n'); k >= 0 {
			data = data[k+1:]
		}
	}
	return string(data)
}

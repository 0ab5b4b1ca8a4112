package router_test

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"

	geomatchv1 "github.com/geomatch/geomatch/proto/geomatch/v1"
)

// TestRSSProbe measures what driver streams cost `geomatch dev --auth=off`
// and whether the memory comes back: one client (this test, one IP) opens
// GEOMATCH_PROBE_STREAMS Connect streams (default 20000, at most 50000)
// over loopback, holds them, closes them all, and the test logs the
// server's resident size before, at the peak and for a minute after, with
// its goroutines and refusals. It is not part of the default run:
//
//	go build -o /tmp/gm ./cmd/geomatch
//	GEOMATCH_RSS_PROBE=/tmp/gm go test ./router -run TestRSSProbe -v -timeout 10m
//	# the default limits refuse this client beyond 1,000 streams; to see
//	# 20,000 open and closed, raise them:
//	GEOMATCH_RSS_PROBE=/tmp/gm GEOMATCH_PROBE_ARGS="--client-streams 0 --client-request-rate 0" go test ./router -run TestRSSProbe -v -timeout 10m
//
// GEOMATCH_PROBE_AFTER sets how long it watches after the disconnect
// (default 60s, at most 5m).
func TestRSSProbe(t *testing.T) {
	bin := os.Getenv("GEOMATCH_RSS_PROBE")
	if bin == "" {
		t.Skip("GEOMATCH_RSS_PROBE=/path/to/geomatch runs this probe")
	}
	streams := envInt(t, "GEOMATCH_PROBE_STREAMS", 20000)
	if streams < 1 || streams > 50000 {
		t.Fatalf("GEOMATCH_PROBE_STREAMS=%d, want 1..50000", streams)
	}
	after := 60 * time.Second
	if v := os.Getenv("GEOMATCH_PROBE_AFTER"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil || d <= 0 || d > 5*time.Minute {
			t.Fatalf("GEOMATCH_PROBE_AFTER=%q, want a duration in (0, 5m]", v)
		}
		after = d
	}
	ctx, cancel := context.WithTimeout(context.Background(), after+4*time.Minute)
	defer cancel()

	maddr := freeLoopback(t)
	args := append([]string{"dev", "--auth=off", "--listen", "127.0.0.1:0", "--matchers", "1", "--metrics", maddr, "--log-level", "warn"},
		strings.Fields(os.Getenv("GEOMATCH_PROBE_ARGS"))...)
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", bin, err)
	}
	defer func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		_ = cmd.Wait()
	}()
	addrc := make(chan string, 1)
	go func() { // ends when the process's stdout closes
		sc := bufio.NewScanner(out)
		re := regexp.MustCompile(`router listening on (\S+)`)
		for sc.Scan() {
			if m := re.FindStringSubmatch(sc.Text()); m != nil {
				addrc <- m[1]
			}
		}
		_, _ = io.Copy(io.Discard, out)
	}()
	var addr string
	select {
	case addr = <-addrc:
	case <-time.After(30 * time.Second):
		t.Fatal("geomatch dev did not start")
	}
	pid := cmd.Process.Pid
	sample := func(label string) {
		m := scrape(t, maddr)
		t.Logf("%-22s RSS %4d MiB  goroutines %6s  driver streams %6s  heap in use %4s MiB  stacks %4s MiB", label, rssMiB(t, pid),
			m["go_goroutines"], m["geomatch_driver_streams"], mib(m["go_memstats_heap_inuse_bytes"]), mib(m["go_memstats_stack_inuse_bytes"]))
	}
	time.Sleep(2 * time.Second)
	sample("before")

	// One client: several connections (10,000 streams at most each) from
	// one address.
	nconn := (streams + 4999) / 5000
	conns := make([]*grpc.ClientConn, nconn)
	for i := range conns {
		if conns[i], err = grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials())); err != nil {
			t.Fatal(err)
		}
	}
	sctx, closeStreams := context.WithCancel(ctx)
	var opened atomic.Int64
	var mu sync.Mutex
	refused := map[string]int{}
	start := time.Now()
	var wg sync.WaitGroup
	next := atomic.Int64{}
	for w := 0; w < 200; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1)) - 1
				if i >= streams || sctx.Err() != nil {
					return
				}
				st, err := geomatchv1.NewDriverServiceClient(conns[i%nconn]).Connect(sctx)
				if err == nil {
					err = st.Send(&geomatchv1.DriverMessage{Msg: &geomatchv1.DriverMessage_Hello{Hello: &geomatchv1.DriverHello{DriverId: fmt.Sprintf("probe-%d", i)}}})
				}
				if err == nil || errors.Is(err, io.EOF) { // EOF: refused already; Recv says why
					_, err = st.Recv() // the ack, or the refusal
				}
				if err != nil {
					s := status.Convert(err)
					msg := s.Message()
					if i := strings.IndexByte(msg, ':'); i > 0 {
						msg = msg[:i]
					}
					mu.Lock()
					refused[s.Code().String()+" "+msg]++
					mu.Unlock()
					continue
				}
				opened.Add(1)
			}
		}()
	}
	wg.Wait()
	t.Logf("opened %d of %d streams in %v; refused: %v", opened.Load(), streams, time.Since(start).Round(time.Millisecond), refused)
	time.Sleep(3 * time.Second)
	sample("peak (streams open)")

	closeStreams()
	for _, c := range conns {
		c.Close()
	}
	closed := time.Now()
	var last time.Duration
	for _, at := range []time.Duration{5 * time.Second, 15 * time.Second, 30 * time.Second, after} {
		if at > after || at <= last {
			continue
		}
		last = at
		time.Sleep(time.Until(closed.Add(at)))
		sample(fmt.Sprintf("%v after disconnect", at))
	}
	m := scrape(t, maddr)
	for k, v := range m {
		if strings.HasPrefix(k, "geomatch_refused_total") && v != "0" {
			t.Logf("%s %s", k, v)
		}
	}
}

func envInt(t *testing.T, name string, def int) int {
	v := os.Getenv(name)
	if v == "" {
		return def
	}
	n, err := strconv.Atoi(v)
	if err != nil {
		t.Fatalf("%s=%q: %v", name, v, err)
	}
	return n
}

func freeLoopback(t *testing.T) string {
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer lis.Close()
	return lis.Addr().String()
}

// rssMiB reads VmRSS of pid from /proc.
func rssMiB(t *testing.T, pid int) int64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		if f := strings.Fields(line); len(f) >= 2 && f[0] == "VmRSS:" {
			kb, _ := strconv.ParseInt(f[1], 10, 64)
			return kb >> 10
		}
	}
	return -1
}

// scrape returns the samples of /metrics by series (name and labels).
func scrape(t *testing.T, addr string) map[string]string {
	resp, err := http.Get("http://" + addr + "/metrics")
	if err != nil {
		t.Fatalf("scrape: %v", err)
	}
	defer resp.Body.Close()
	m := map[string]string{}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if line == "" || line[0] == '#' {
			continue
		}
		if i := strings.LastIndexByte(line, ' '); i > 0 {
			m[line[:i]] = line[i+1:]
		}
	}
	return m
}

func mib(v string) string {
	f, err := strconv.ParseFloat(v, 64)
	if err != nil {
		return "?"
	}
	return strconv.FormatInt(int64(f)>>20, 10)
}

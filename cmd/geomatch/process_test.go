package main

import (
	"github.com/geomatch/geomatch/internal/servertest"

	"bufio"
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	geomatchv1 "github.com/geomatch/geomatch/proto/geomatch/v1"
)

var binary string

// TestMain builds the geomatch binary once; the tests run it as real
// processes.
func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "geomatch-bin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	binary = filepath.Join(dir, "geomatch")
	if out, err := exec.Command("go", "build", "-o", binary, ".").CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "build geomatch: %v\n%s", err, out)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// proc is a geomatch process under test.
type proc struct {
	t    *testing.T
	name string
	cmd  *exec.Cmd
	mu   sync.Mutex
	out  []string
	more chan struct{}
	done chan struct{}
	err  error
}

// start runs geomatch with args; the process is killed at the end of the
// test if it is still running.
func start(t *testing.T, name string, args ...string) *proc {
	t.Helper()
	cmd := exec.Command(binary, args...)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = cmd.Stdout // one ordered log
	if err := cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", name, err)
	}
	p := &proc{t: t, name: name, cmd: cmd, more: make(chan struct{}, 1), done: make(chan struct{})}
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			p.mu.Lock()
			p.out = append(p.out, sc.Text())
			p.mu.Unlock()
			select {
			case p.more <- struct{}{}:
			default:
			}
		}
		p.err = cmd.Wait()
		close(p.done)
	}()
	t.Cleanup(func() {
		select {
		case <-p.done:
		default:
			cmd.Process.Kill()
			<-p.done
		}
		if t.Failed() {
			p.mu.Lock()
			t.Logf("output of %s:\n  %s", name, strings.Join(p.out, "\n  "))
			p.mu.Unlock()
		}
	})
	return p
}

// waitFor waits for an output line matching re and returns its submatches.
func (p *proc) waitFor(re *regexp.Regexp, d time.Duration) []string {
	p.t.Helper()
	deadline := time.After(d)
	seen := 0
	for {
		p.mu.Lock()
		for ; seen < len(p.out); seen++ {
			if m := re.FindStringSubmatch(p.out[seen]); m != nil {
				p.mu.Unlock()
				return m
			}
		}
		p.mu.Unlock()
		select {
		case <-p.more:
		case <-p.done:
			p.mu.Lock()
			n := len(p.out)
			p.mu.Unlock()
			if seen == n {
				p.t.Fatalf("%s exited (%v) before printing %q", p.name, p.err, re)
			}
		case <-deadline:
			p.t.Fatalf("%s did not print %q within %v", p.name, re, d)
		}
	}
}

// stop sends SIGTERM and expects a clean exit within d.
func (p *proc) stop(d time.Duration) {
	p.t.Helper()
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		p.t.Fatalf("signal %s: %v", p.name, err)
	}
	select {
	case <-p.done:
		if p.err != nil {
			p.t.Fatalf("%s exited with %v after SIGTERM, want 0", p.name, p.err)
		}
	case <-time.After(d):
		p.t.Fatalf("%s did not stop within %v of SIGTERM", p.name, d)
	}
}

// kill sends SIGKILL and waits for the process to die.
func (p *proc) kill() {
	p.cmd.Process.Kill()
	<-p.done
}

func dial(t *testing.T, addr string) *grpc.ClientConn {
	t.Helper()
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return conn
}

func ctxFor(t *testing.T, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

// freeAddr returns a free TCP address on the loopback host.
func freeAddr(t *testing.T, host string) string {
	t.Helper()
	addr, err := servertest.FreeAddr(host)
	if err != nil {
		t.Fatal(err)
	}
	return addr
}

var listening = regexp.MustCompile(`listening on (\S+)`)

// TestDevProcess starts `geomatch dev` as a real process, uses it over
// gRPC with the committed stubs (health, updates, a nearby query), and
// stops it with SIGTERM.
func TestDevProcess(t *testing.T) {
	p := start(t, "geomatch dev", "dev", "--listen", "127.0.0.1:0", "--matchers", "3")
	addr := p.waitFor(listening, 20*time.Second)[1]
	conn := dial(t, addr)
	h, err := healthpb.NewHealthClient(conn).Check(ctxFor(t, 5*time.Second), &healthpb.HealthCheckRequest{Service: "geomatch.v1.RiderService"})
	if err != nil || h.GetStatus() != healthpb.HealthCheckResponse_SERVING {
		t.Fatalf("health: %v %v", h, err)
	}
	drivers := geomatchv1.NewDriverServiceClient(conn)
	now := time.Now().UnixMilli()
	req := &geomatchv1.UpdateLocationsRequest{}
	for i := 0; i < 100; i++ {
		req.Updates = append(req.Updates, &geomatchv1.LocationUpdate{
			DriverId: fmt.Sprintf("d%d", i), Position: &geomatchv1.LatLng{Lat: 40.75 + float64(i)*0.001, Lng: -73.98}, TimestampMs: now,
		})
	}
	resp, err := drivers.UpdateLocations(ctxFor(t, 5*time.Second), req)
	if err != nil || resp.GetAccepted() != 100 {
		t.Fatalf("UpdateLocations: %v %v", resp, err)
	}
	near, err := geomatchv1.NewRiderServiceClient(conn).NearbyDrivers(ctxFor(t, 5*time.Second), &geomatchv1.NearbyDriversRequest{
		Position: &geomatchv1.LatLng{Lat: 40.75, Lng: -73.98}, Limit: 3, RadiusM: 1000,
	})
	if err != nil || len(near.GetDrivers()) != 3 || near.GetDrivers()[0].GetDriverId() != "d0" || near.GetDrivers()[1].GetDriverId() != "d1" {
		t.Fatalf("NearbyDrivers: %v %v", near, err)
	}
	p.stop(15 * time.Second)
	p.waitFor(regexp.MustCompile(`geomatch dev: stopped`), time.Second)
}

// TestStaticClusterProcesses runs two matchers and a router as separate
// processes on 127.0.0.x, kills a matcher with SIGKILL, checks that clients
// get a clear UNAVAILABLE naming it, restarts it and checks the cluster
// serves again.
func TestStaticClusterProcesses(t *testing.T) {
	m1, m2 := freeAddr(t, "127.0.0.2"), freeAddr(t, "127.0.0.3")
	peers := "m1=" + m1 + ",m2=" + m2
	startMatcher := func(id string) *proc {
		p := start(t, "matcher "+id, "matcher", "--id", id, "--peers", peers, "--insecure-internal")
		p.waitFor(listening, 20*time.Second)
		return p
	}
	startMatcher("m1")
	pm2 := startMatcher("m2")
	rp := start(t, "router", "router", "--listen", "127.0.0.1:0", "--peers", peers, "--auth=off", "--insecure-internal")
	conn := dial(t, rp.waitFor(listening, 20*time.Second)[1])
	drivers, riders := geomatchv1.NewDriverServiceClient(conn), geomatchv1.NewRiderServiceClient(conn)

	// Drivers over a 40 km wide area so both matchers own some of them.
	fleet := func(ts int64) *geomatchv1.UpdateLocationsRequest {
		req := &geomatchv1.UpdateLocationsRequest{}
		for i := 0; i < 400; i++ {
			req.Updates = append(req.Updates, &geomatchv1.LocationUpdate{
				DriverId:    fmt.Sprintf("d%03d", i),
				Position:    &geomatchv1.LatLng{Lat: 40.55 + 0.02*float64(i%20), Lng: -74.10 + 0.02*float64(i/20)},
				TimestampMs: ts,
			})
		}
		return req
	}
	now := time.Now().UnixMilli()
	resp, err := drivers.UpdateLocations(ctxFor(t, 10*time.Second), fleet(now))
	if err != nil || resp.GetAccepted() != 400 {
		t.Fatalf("UpdateLocations: %v %v", resp, err)
	}
	wide := &geomatchv1.NearbyDriversRequest{Position: &geomatchv1.LatLng{Lat: 40.75, Lng: -73.90}, Limit: 1000, RadiusM: 50000}
	near, err := riders.NearbyDrivers(ctxFor(t, 10*time.Second), wide)
	if err != nil || len(near.GetDrivers()) != 400 {
		t.Fatalf("NearbyDrivers before the kill: %d drivers, %v", len(near.GetDrivers()), err)
	}

	pm2.kill()
	// A static cluster has no failover: the answer leaves m2's shards out
	// and says so.
	part, err := riders.NearbyDrivers(ctxFor(t, 10*time.Second), wide)
	if err != nil || !part.GetPartial() || len(part.GetMissingShards()) == 0 || len(part.GetDrivers()) == 0 || len(part.GetDrivers()) >= 400 {
		t.Fatalf("NearbyDrivers with m2 dead: %d drivers, partial %v, %d shards missing, %v; want m1's drivers, flagged partial",
			len(part.GetDrivers()), part.GetPartial(), len(part.GetMissingShards()), err)
	}
	resp, err = drivers.UpdateLocations(ctxFor(t, 10*time.Second), fleet(now+1000))
	if err != nil {
		t.Fatalf("UpdateLocations with m2 dead: %v", err)
	}
	// m2's updates wait for an owner until their deadline (no failover
	// here), then are refused naming m2.
	if resp.GetAccepted() == 0 || len(resp.GetRejected()) == 0 {
		t.Fatalf("UpdateLocations with m2 dead: accepted %d, rejected %d; want m1's applied and m2's refused", resp.GetAccepted(), len(resp.GetRejected()))
	}
	for _, rj := range resp.GetRejected() {
		if rj.GetReason() != geomatchv1.RejectReason_REJECT_REASON_UNAVAILABLE || !strings.Contains(rj.GetMessage(), "m2") {
			t.Fatalf("rejection %v, want UNAVAILABLE naming m2", rj)
		}
	}

	pm2 = startMatcher("m2")
	// The restarted matcher is empty: drivers report again (as they do every
	// few seconds) and the cluster answers completely again.
	deadline := time.Now().Add(20 * time.Second)
	for ts := now + 2000; ; ts += 1000 {
		resp, err = drivers.UpdateLocations(ctxFor(t, 10*time.Second), fleet(ts))
		if err == nil && resp.GetAccepted() == 400 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("cluster did not recover after m2 restarted: %v %v", resp, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
	near, err = riders.NearbyDrivers(ctxFor(t, 10*time.Second), wide)
	if err != nil || len(near.GetDrivers()) != 400 {
		t.Fatalf("NearbyDrivers after the restart: %d drivers, %v", len(near.GetDrivers()), err)
	}
	rp.stop(15 * time.Second)
	pm2.stop(15 * time.Second)
}

// TestMetricsEndpoint scrapes --metrics of `geomatch dev` after some
// traffic: the listed series exist with sensible values, pprof answers, and
// /readyz says ready once the matchers have warmed.
func TestMetricsEndpoint(t *testing.T) {
	maddr := freeAddr(t, "127.0.0.1")
	p := start(t, "geomatch dev", "dev", "--listen", "127.0.0.1:0", "--matchers", "2", "--metrics", maddr)
	addr := p.waitFor(listening, 20*time.Second)[1]
	conn := dial(t, addr)
	now := time.Now().UnixMilli()
	req := &geomatchv1.UpdateLocationsRequest{}
	for i := 0; i < 50; i++ {
		req.Updates = append(req.Updates, &geomatchv1.LocationUpdate{
			DriverId: fmt.Sprintf("d%d", i), Position: &geomatchv1.LatLng{Lat: 40.70 + float64(i)*0.002, Lng: -73.98}, TimestampMs: now,
		})
	}
	req.Updates = append(req.Updates, req.Updates[0]) // a duplicate
	if _, err := geomatchv1.NewDriverServiceClient(conn).UpdateLocations(ctxFor(t, 5*time.Second), req); err != nil {
		t.Fatal(err)
	}
	for range 3 {
		if _, err := geomatchv1.NewRiderServiceClient(conn).NearbyDrivers(ctxFor(t, 5*time.Second), &geomatchv1.NearbyDriversRequest{
			Position: &geomatchv1.LatLng{Lat: 40.75, Lng: -73.98}, Limit: 3, RadiusM: 1000}); err != nil {
			t.Fatal(err)
		}
	}
	get := func(path string) (int, string) {
		resp, err := http.Get("http://" + maddr + path)
		if err != nil {
			t.Fatalf("GET %s: %v", path, err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	// The matchers warm their shards (over mutual TLS) right after the
	// router listens: scrape once they say they are ready.
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		if code, _ := get("/readyz"); code == 200 || time.Now().After(deadline) {
			break
		}
	}
	code, body := get("/metrics")
	if code != 200 {
		t.Fatalf("/metrics: %d", code)
	}
	for _, want := range []*regexp.Regexp{
		regexp.MustCompile(`geomatch_grpc_requests_total\{code="OK",method="/geomatch.v1.RiderService/NearbyDrivers",server="router"\} 3`),
		regexp.MustCompile(`geomatch_grpc_request_duration_seconds_count\{method="/geomatch.v1.DriverService/UpdateLocations",server="router"\} 1`),
		regexp.MustCompile(`geomatch_matcher_updates_total\{node="m1",outcome="applied"\} \d+`),
		regexp.MustCompile(`geomatch_matcher_updates_total\{node="m\d",outcome="duplicate"\} 1`),
		regexp.MustCompile(`geomatch_matcher_drivers\{node="m1"\} \d+`),
		regexp.MustCompile(`geomatch_matcher_drivers_by_status\{node="m\d",status="available"\} \d+`),
		regexp.MustCompile(`geomatch_ring_epoch\{node="m1"\} 1`),
		regexp.MustCompile(`geomatch_shard_moves_total\{node="m1"\} 0`),
		regexp.MustCompile(`geomatch_dispatch_reservation_conflicts_total\{node="m1"\} 0`),
		regexp.MustCompile(`geomatch_matcher_ready\{node="m2"\} 1`),
		regexp.MustCompile(`go_goroutines \d+`),
		regexp.MustCompile(`process_resident_memory_bytes \d`),
	} {
		if !want.MatchString(body) {
			t.Errorf("/metrics has no line matching %s", want)
		}
	}
	var drivers int
	for _, m := range regexp.MustCompile(`geomatch_matcher_drivers\{node="m\d"\} (\d+)`).FindAllStringSubmatch(body, -1) {
		k, _ := strconv.Atoi(m[1])
		drivers += k
	}
	if drivers != 50 {
		t.Errorf("geomatch_matcher_drivers sums to %d, want 50", drivers)
	}
	if code, _ := get("/readyz"); code != 200 {
		t.Errorf("/readyz: %d", code)
	}
	if code, body := get("/debug/pprof/"); code != 200 || !strings.Contains(body, "goroutine") {
		t.Errorf("/debug/pprof/: %d", code)
	}
	p.stop(15 * time.Second)
}

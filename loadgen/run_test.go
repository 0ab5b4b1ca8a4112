package loadgen

import (
	"context"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/geomatch/geomatch/cluster"
	"github.com/geomatch/geomatch/internal/redistest"
)

// shortConfig is a run of a few seconds at most. Batches are small so a
// call finishes well within a phase even under the race detector on a busy
// machine (a call still in flight when its phase ends is not counted).
func shortConfig() Config {
	cfg := DefaultConfig()
	cfg.Drivers = 2000
	cfg.Batch = 100
	cfg.Duration = 500 * time.Millisecond
	cfg.Concurrency = []int{1, 4}
	cfg.StreamApps = 32
	return cfg
}

// checkReport wants every phase, each with operations and without errors.
func checkReport(t *testing.T, rep Report, cfg Config) {
	t.Helper()
	want := []string{"load", "ingest-unary", "ingest-stream", "floor-1", "nearby-1", "floor-4", "nearby-4"}
	switch {
	case strings.HasPrefix(rep.Target, string(RedisGEO)+" ") || strings.HasPrefix(rep.Target, string(Tile38)+" "):
		want = append(want, PipelinedPhase) // RESP pipelines
	case strings.HasPrefix(rep.Target, "geomatch grpc "):
		want = append(want, PipelinedPhase, NearbyStreamPhase(4)) // over NearbyStream, one client and each concurrency above 1
	}
	if len(rep.Phases) != len(want) {
		t.Fatalf("got %d phases, want %v", len(rep.Phases), want)
	}
	for i, p := range rep.Phases {
		if p.Phase != want[i] {
			t.Errorf("phase %d is %s, want %s", i, p.Phase, want[i])
		}
		if p.Ops <= 0 || p.OpsPerS <= 0 {
			t.Errorf("%s: %d ops (%.0f/s), want some", p.Phase, p.Ops, p.OpsPerS)
		}
		if p.Errors != 0 {
			t.Errorf("%s: %d errors, first: %s", p.Phase, p.Errors, p.FirstError)
		}
		if p.P50Ms > p.P99Ms || p.P99Ms > p.P999Ms {
			t.Errorf("%s: percentiles out of order: %v %v %v", p.Phase, p.P50Ms, p.P99Ms, p.P999Ms)
		}
	}
	if got := rep.Phases[0].Ops; got != int64(cfg.Drivers) {
		t.Errorf("load reported %d updates, want every driver once (%d)", got, cfg.Drivers)
	}
	var b strings.Builder
	if err := rep.WriteTable(&b); err != nil {
		t.Fatal(err)
	}
	t.Log("\n" + b.String())
}

func TestRunAgainstEmbeddedCluster(t *testing.T) {
	c, err := cluster.StartDev(cluster.DevConfig{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := c.Stop(); err != nil {
			t.Errorf("stop cluster: %v", err)
		}
	})
	target, err := NewGRPCTarget(c.RouterAddr)
	if err != nil {
		t.Fatal(err)
	}
	defer target.Close()
	cfg := shortConfig()
	cfg.MeasureProcess = true
	rep, err := Run(context.Background(), cfg, target)
	if err != nil {
		t.Fatal(err)
	}
	checkReport(t, rep, cfg)
	for _, p := range rep.Phases {
		if p.RSSBytes <= 0 || p.LiveHeapBytes <= 0 || p.GCCPUShare < 0 || p.GCCPUShare > 1 {
			t.Errorf("%s: RSS %d, live heap %d, GC share %v: want them measured", p.Phase, p.RSSBytes, p.LiveHeapBytes, p.GCCPUShare)
		}
	}
}

// redisTarget is a Redis GEO target at addr for cfg, closed when the test
// ends.
func redisTarget(t *testing.T, addr string, cfg Config) *RESPTarget {
	t.Helper()
	target, err := NewRESPTarget(addr, RedisGEO, cfg.StreamApps)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { target.Close() })
	return target
}

// runRedis runs cfg against the Redis at addr and returns the report.
func runRedis(t *testing.T, addr string, cfg Config) Report {
	t.Helper()
	rep, err := Run(context.Background(), cfg, redisTarget(t, addr, cfg))
	if err != nil {
		t.Fatal(err)
	}
	return rep
}

func TestRunAgainstRedisGEO(t *testing.T) {
	addr := redistest.Start(t)
	cfg := shortConfig()
	rep := runRedis(t, addr, cfg)
	checkReport(t, rep, cfg)
	if rep.ProcessMeasured || rep.Phases[0].CPUSeconds != 0 {
		t.Error("CPU measured for an external target")
	}
}

func TestRunStopsWithTheContext(t *testing.T) {
	addr := redistest.Start(t)
	cfg := shortConfig()
	cfg.Duration = 30 * time.Second
	target := redisTarget(t, addr, cfg)
	ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err := Run(ctx, cfg, target)
	if err == nil {
		t.Fatal("Run returned no error after its context ended")
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("Run took %v after a 500ms context", d)
	}
}

func TestConfigValidateNamesEveryBadField(t *testing.T) {
	if err := DefaultConfig().Validate(); err != nil {
		t.Fatalf("defaults invalid: %v", err)
	}
	cfg := DefaultConfig()
	cfg.Drivers = MaxDrivers + 1
	cfg.Dist = "clustered"
	cfg.Duration = 2 * MaxDuration
	cfg.Concurrency = []int{0}
	cfg.Batch = 0
	cfg.Skip = []string{"nearby-x"}
	cfg.ServerPID = -1
	err := cfg.Validate()
	if err == nil {
		t.Fatal("Validate accepted a bad config")
	}
	for _, field := range []string{"drivers", "dist", "duration", "concurrency", "batch", "skip", "server pid"} {
		if !strings.Contains(err.Error(), field+":") {
			t.Errorf("error %q does not name %s", err, field)
		}
	}
}

func TestRunSkipsPhasesAndCallsTheHook(t *testing.T) {
	addr := redistest.Start(t)
	cfg := shortConfig()
	cfg.Skip = []string{"ingest-unary", "nearby-4", "floor"}
	var started, ended []string
	cfg.PhaseHook = func(phase string) func() {
		started = append(started, phase)
		return func() { ended = append(ended, phase) }
	}
	rep := runRedis(t, addr, cfg)
	want := []string{"load", "ingest-stream", "nearby-1", PipelinedPhase} // only "nearby" skips the pipelined phase; "floor" every floor-C
	var got []string
	for _, p := range rep.Phases {
		got = append(got, p.Phase)
	}
	if !slices.Equal(got, want) || !slices.Equal(started, want) || !slices.Equal(ended, want) {
		t.Errorf("phases %v, hook started %v and ended %v, want %v", got, started, ended, want)
	}
}

func TestRunMeasuresAServerProcess(t *testing.T) {
	addr := redistest.Start(t)
	cfg := shortConfig()
	cfg.Skip = []string{"ingest-stream", "nearby"}
	// This process stands in for the server: its CPU and RSS are real.
	cfg.ServerPID = os.Getpid()
	rep := runRedis(t, addr, cfg)
	if !rep.ProcessMeasured || rep.ServerPID != cfg.ServerPID {
		t.Errorf("report: measured %v, pid %d", rep.ProcessMeasured, rep.ServerPID)
	}
	for _, p := range rep.Phases {
		if p.RSSBytes <= 0 || p.CPUSeconds < 0 || p.ClientCPUSeconds < 0 {
			t.Errorf("%s: rss %d, cpu %v, client cpu %v", p.Phase, p.RSSBytes, p.CPUSeconds, p.ClientCPUSeconds)
		}
	}
	var b strings.Builder
	if err := rep.WriteTable(&b); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(b.String(), "client cpu") || !strings.Contains(b.String(), "server process") {
		t.Errorf("table does not show the server and client CPU:\n%s", b.String())
	}
}

func TestProcessMeasurement(t *testing.T) {
	if err := CheckProcess(os.Getpid()); err != nil {
		t.Fatalf("CheckProcess(self): %v", err)
	}
	if err := CheckProcess(1 << 30); err == nil {
		t.Error("CheckProcess accepted a pid that cannot exist")
	}
	// Burn 50 ms of CPU (5 clock ticks; bounded by 10 s of wall time on a
	// busy machine): /proc must see it.
	m := &procMeter{pid: os.Getpid()}
	before := m.cpu()
	for cpu0, start := cpuTime(), time.Now(); cpuTime()-cpu0 < 50*time.Millisecond && time.Since(start) < 10*time.Second; {
	}
	if after := m.cpu(); after <= before {
		t.Errorf("cpu of this process did not grow: %v then %v", before, after)
	}
	now, peak := m.rss()
	self, _ := (&procMeter{}).rss()
	if now <= 0 || self <= 0 || peak < now {
		t.Errorf("resident set %d, peak %d, in process %d: want positive, peak at least the resident set", now, peak, self)
	}
	var none *procMeter
	if n, p := none.rss(); none.cpu() != 0 || n != 0 || p != 0 {
		t.Error("a nil meter measured something")
	}
}

func TestWriteComparison(t *testing.T) {
	a := Report{Target: "geomatch", Drivers: 10, Dist: Uniform, Seed: 1, Batch: 5, DurationS: 1, ProcessMeasured: true,
		Phases: []PhaseResult{{Phase: "load", OpsPerS: 100}, {Phase: "nearby-1", OpsPerS: 2000, P50Ms: 0.5, P99Ms: 1, P999Ms: 2, CPUPerOpUs: 50}}}
	b := Report{Target: "redis", Drivers: 10, Dist: Uniform, Seed: 1, Batch: 5, DurationS: 1, ProcessMeasured: true,
		Phases: []PhaseResult{{Phase: "nearby-1", OpsPerS: 1000, P50Ms: 1, P99Ms: 3, P999Ms: 4, CPUPerOpUs: 100, Errors: 2, FirstError: "boom"}}}
	dir := t.TempDir()
	for name, r := range map[string]Report{"a.json": a, "b.json": b} {
		f, err := os.Create(dir + "/" + name)
		if err != nil {
			t.Fatal(err)
		}
		if err := r.WriteJSON(f); err != nil {
			t.Fatal(err)
		}
		f.Close()
	}
	ra, err := ReadReport(dir + "/a.json")
	if err != nil {
		t.Fatal(err)
	}
	rb, err := ReadReport(dir + "/b.json")
	if err != nil {
		t.Fatal(err)
	}
	var out strings.Builder
	if err := WriteComparison(&out, ra, rb); err != nil {
		t.Fatal(err)
	}
	s := out.String()
	for _, want := range []string{"nearby-1", "2.00x", "3.00x", "boom"} {
		if !strings.Contains(s, want) {
			t.Errorf("comparison lacks %q:\n%s", want, s)
		}
	}
	if strings.Contains(s, "load ") {
		t.Errorf("comparison shows a phase only A ran:\n%s", s)
	}
	if _, err := ReadReport(dir + "/missing.json"); err == nil {
		t.Error("ReadReport of a missing file succeeded")
	}
}

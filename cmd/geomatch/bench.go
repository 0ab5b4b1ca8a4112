package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"runtime/metrics"
	"runtime/pprof"
	"strconv"
	"strings"
	"time"

	"github.com/geomatch/geomatch/cluster"
	"github.com/geomatch/geomatch/loadgen"
	"github.com/geomatch/geomatch/matcher"
)

// benchTTL keeps the embedded cluster's drivers alive for a whole run (the
// default 30 s TTL would expire the loaded fleet during the later phases).
const benchTTL = 30 * time.Minute

// runBench is `geomatch bench`: the load generator of package loadgen
// against an embedded dev cluster, a running cluster (--target) or a RESP
// geo server (--resp-target).
func runBench(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("bench", "Load-test a geomatch cluster through its public gRPC API, or a RESP geo server\n(Redis GEO or Tile38) with the same workload. Loopback targets only. Without\n--target or --resp-target it starts an embedded cluster (--matchers). With\n--server-pid it reports the server process's CPU and RSS per phase.", stderr)
	d := loadgen.DefaultConfig()
	target := fs.String("target", "", "host:port of a geomatch router (loopback); empty: start an embedded cluster")
	respTarget := fs.String("resp-target", "", "host:port of a RESP geo server (loopback) to run the workload against instead")
	respProto := fs.String("resp-protocol", string(loadgen.RedisGEO), "commands of --resp-target: redis (GEOADD/GEOSEARCH) or tile38 (SET/NEARBY)")
	drivers := fs.Int("drivers", d.Drivers, fmt.Sprintf("simulated drivers, at most %d", loadgen.MaxDrivers))
	dist := fs.String("dist", string(d.Dist), "position distribution: uniform (New York) or hotspot (half within 3 km of Midtown)")
	seed := fs.Uint64("seed", d.Seed, "seed of positions and query points")
	duration := fs.Duration("duration", d.Duration, fmt.Sprintf("length of each measured phase, at most %v", loadgen.MaxDuration))
	conc := fs.String("concurrency", "1,8,32", "client concurrencies of the nearby phases, comma-separated")
	batch := fs.Int("batch", d.Batch, "updates per UpdateLocations call (per pipeline on RESP)")
	jsonOut := fs.String("json", "", "also write the report as JSON to this file")
	skip := fs.String("skip", "", "measured phases not to run, comma-separated: ingest-unary, ingest-stream, nearby, nearby-C, floor, floor-C (load always runs)")
	matchers := fs.Int("matchers", 3, "matcher nodes of the embedded cluster")
	serverPID := fs.Int("server-pid", 0, "process id of the --target or --resp-target server on this machine: report its CPU and RSS per phase")
	serverMetrics := fs.String("server-metrics", "", "http://HOST:PORT/metrics of the --target or --resp-target geomatch server (geomatch dev prints it): report its Go GC's share of CPU and its live heap per phase")
	cpuProfile := fs.String("cpuprofile", "", "write a CPU profile of the --profile-phases to this file (embedded cluster: the load generator's samples carry the label loadgen=client)")
	memProfile := fs.String("memprofile", "", "write an allocation profile to this file after the --profile-phases, and one taken before them to FILE.base (go tool pprof -sample_index=alloc_space -base FILE.base FILE)")
	profPhases := fs.String("profile-phases", "nearby", "phases the profiles cover, comma-separated: load, ingest-unary, ingest-stream, nearby, nearby-C")
	compare := fs.String("compare", "", "A.json,B.json: print two --json reports side by side with their ratios, and run nothing")
	var sec clientFlags // for --target
	sec.register(fs)
	var ff fenceFlags // --fences, --fence-compare
	ff.register(fs)
	if err := parse(fs, args); err != nil {
		return err
	}
	if *compare != "" {
		return compareReports(*compare, stdout)
	}
	cfg := d
	cfg.Drivers, cfg.Dist, cfg.Seed, cfg.Duration, cfg.Batch = *drivers, loadgen.Distribution(*dist), *seed, *duration, *batch
	cfg.Concurrency = nil
	for _, s := range strings.Split(*conc, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(s))
		if err != nil {
			return fmt.Errorf("--concurrency: %q is not a number", s)
		}
		cfg.Concurrency = append(cfg.Concurrency, n)
	}
	cfg.Skip = splitList(*skip)
	if *target != "" && *respTarget != "" {
		return errors.New("--target and --resp-target: give one or the other")
	}
	if *serverPID != 0 {
		if *target == "" && *respTarget == "" {
			return errors.New("--server-pid: only with --target or --resp-target (the embedded cluster is this process)")
		}
		if err := loadgen.CheckProcess(*serverPID); err != nil {
			return err
		}
		cfg.ServerPID = *serverPID
	}
	if *serverMetrics != "" {
		if *target == "" && *respTarget == "" {
			return errors.New("--server-metrics: only with --target or --resp-target (the embedded cluster is measured in process)")
		}
		cfg.ServerMetrics = *serverMetrics
	}
	if *matchers < 1 || *matchers > 64 {
		return fmt.Errorf("--matchers: %d, want 1..64", *matchers)
	}
	prof := &phaseProfiler{cpuPath: *cpuProfile, memPath: *memProfile, phases: splitList(*profPhases)}
	if prof.cpuPath != "" || prof.memPath != "" {
		cfg.PhaseHook = prof.hook
		defer prof.finish()
	}
	if err := cfg.Validate(); err != nil {
		return err
	}

	var t loadgen.Target
	switch {
	case *respTarget != "":
		pool := max(cfg.IngestConcurrency, cfg.StreamApps)
		for _, c := range cfg.Concurrency {
			pool = max(pool, c)
		}
		rt, err := loadgen.NewRESPTarget(*respTarget, loadgen.RESPProtocol(*respProto), pool)
		if err != nil {
			return err
		}
		defer rt.Close()
		if err := rt.Ping(ctx); err != nil {
			return err
		}
		t = rt
	case *target != "":
		opts, err := sec.dialOptions(*target)
		if err != nil {
			return err
		}
		gt, err := loadgen.NewGRPCTarget(*target, opts...)
		if err != nil {
			return err
		}
		defer gt.Close()
		t = gt
	default:
		ca, err := embeddedCA()
		if err != nil {
			return err
		}
		c, err := cluster.StartDev(cluster.DevConfig{Matchers: *matchers, Log: slog.New(slog.DiscardHandler), InternalCA: ca,
			Matcher: func(mc *matcher.Config) { mc.Index.TTL = benchTTL }})
		if err != nil {
			return err
		}
		defer c.Stop()
		gt, err := loadgen.NewGRPCTarget(c.RouterAddr)
		if err != nil {
			return err
		}
		defer gt.Close()
		t = gt
		cfg.MeasureProcess = true
		fmt.Fprintf(stdout, "embedded cluster: router %s, %d matchers\n", c.RouterAddr, *matchers)
	}

	if ff.active() {
		return ff.run(ctx, cfg, t, stdout, *jsonOut, prof.finish)
	}
	var gcs *gcShares // the embedded cluster's collector, per phase
	if cfg.MeasureProcess {
		gcs = &gcShares{}
		cfg.PhaseHook = gcs.wrap(cfg.PhaseHook)
	}
	rep, runErr := loadgen.Run(ctx, cfg, t)
	if err := prof.finish(); err != nil {
		return err
	}
	if err := rep.WriteTable(stdout); err != nil {
		return err
	}
	if gcs != nil {
		gcs.write(stdout)
	}
	if *jsonOut != "" {
		f, err := os.Create(*jsonOut)
		if err != nil {
			return err
		}
		if err := rep.WriteJSON(f); err != nil {
			f.Close()
			return err
		}
		if err := f.Close(); err != nil {
			return err
		}
	}
	return runErr
}

// splitList splits a comma-separated flag value, dropping empty items.
func splitList(v string) []string {
	var out []string
	for _, s := range strings.Split(v, ",") {
		if s = strings.TrimSpace(s); s != "" {
			out = append(out, s)
		}
	}
	return out
}

// phaseProfiler profiles the chosen phases of a run: the CPU profile runs
// from the first chosen phase's start to the last one's end (the phases in
// between included), and the allocation profile is taken at the same two
// points, so the difference covers those phases.
type phaseProfiler struct {
	cpuPath, memPath string
	phases           []string
	cpuFile          *os.File
	started, done    bool
	err              error
}

// wants reports whether phase is one of the chosen phases ("nearby" names
// every nearby-C).
func (p *phaseProfiler) wants(phase string) bool {
	for _, w := range p.phases {
		if w == phase || w == "nearby" && strings.HasPrefix(phase, "nearby-") {
			return true
		}
	}
	return false
}

// hook is a loadgen.Config.PhaseHook.
func (p *phaseProfiler) hook(phase string) func() {
	if !p.wants(phase) || p.done || p.err != nil {
		return nil
	}
	if !p.started {
		p.started = true
		if p.memPath != "" {
			p.err = writeHeapProfile(p.memPath + ".base")
		}
		if p.cpuPath != "" && p.err == nil {
			f, err := os.Create(p.cpuPath)
			if err == nil {
				err = pprof.StartCPUProfile(f)
			}
			if err != nil {
				p.err = fmt.Errorf("cpu profile: %w", err)
				return nil
			}
			p.cpuFile = f
		}
	}
	return p.stop
}

// stop writes the profiles after a chosen phase; a later chosen phase
// continues them (the CPU profile keeps running, the allocation profile is
// rewritten).
func (p *phaseProfiler) stop() {
	if p.memPath != "" && p.err == nil {
		p.err = writeHeapProfile(p.memPath)
	}
}

// finish ends the CPU profile, if one runs, and returns the first error of
// the profiles. It may be called more than once.
func (p *phaseProfiler) finish() error {
	p.done = true
	if p.cpuFile != nil {
		pprof.StopCPUProfile()
		if err := p.cpuFile.Close(); err != nil && p.err == nil {
			p.err = fmt.Errorf("cpu profile: %w", err)
		}
		p.cpuFile = nil
	}
	return p.err
}

// writeHeapProfile writes the allocation profile (every allocation since
// the process started, sampled) to path.
func writeHeapProfile(path string) error {
	f, err := os.Create(path)
	if err != nil {
		return fmt.Errorf("memory profile: %w", err)
	}
	if err := pprof.Lookup("allocs").WriteTo(f, 0); err != nil {
		f.Close()
		return fmt.Errorf("memory profile %s: %w", path, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("memory profile: %w", err)
	}
	return nil
}

// compareReports prints the two reports named by "A.json,B.json" side by
// side (loadgen.WriteComparison).
func compareReports(arg string, stdout io.Writer) error {
	paths := splitList(arg)
	if len(paths) != 2 {
		return fmt.Errorf("--compare: %q, want two report files A.json,B.json", arg)
	}
	a, err := loadgen.ReadReport(paths[0])
	if err != nil {
		return err
	}
	b, err := loadgen.ReadReport(paths[1])
	if err != nil {
		return err
	}
	return loadgen.WriteComparison(stdout, a, b)
}

// gcShares records the garbage collector's share of the CPU in each phase,
// for the embedded cluster (whose servers share the process with the load
// generator): /cpu/classes/gc/total against /cpu/classes/total (GOMAXPROCS
// times the wall-clock time) of runtime/metrics. The runtime brings both
// up to date when a collection ends, so a phase's share covers the time
// from the last collection before it to its last one, and a phase in
// which none ended shows "-". Both are estimates from wall-clock time: on
// a machine busy with other work they overstate the collector's CPU.
type gcShares struct {
	lines []string
}

// cpuClasses reads the collector's and the total CPU seconds so far.
func cpuClasses() (gc, total float64) {
	s := []metrics.Sample{{Name: "/cpu/classes/gc/total:cpu-seconds"}, {Name: "/cpu/classes/total:cpu-seconds"}}
	metrics.Read(s)
	return s[0].Value.Float64(), s[1].Value.Float64()
}

// wrap returns a loadgen.Config.PhaseHook that measures each phase and
// calls next (which may be nil).
func (g *gcShares) wrap(next func(string) func()) func(string) func() {
	return func(phase string) func() {
		var end func()
		if next != nil {
			end = next(phase)
		}
		gc0, total0 := cpuClasses()
		return func() {
			gc1, total1 := cpuClasses()
			share := "-"
			if total := total1 - total0; total > 0 {
				share = fmt.Sprintf("%.1f%%", 100*(gc1-gc0)/total)
			}
			g.lines = append(g.lines, phase+" "+share)
			if end != nil {
				end()
			}
		}
	}
}

// write prints the shares on one line.
func (g *gcShares) write(w io.Writer) {
	if len(g.lines) > 0 {
		fmt.Fprintf(w, "garbage collector, share of the CPU (runtime/metrics): %s\n", strings.Join(g.lines, ", "))
	}
}

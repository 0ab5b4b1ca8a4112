package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/schollz/progressbar/v3"
	"golang.org/x/term"

	"github.com/geomatch/geomatch/cluster"
	"github.com/geomatch/geomatch/dispatch"
	"github.com/geomatch/geomatch/internal/tlsconfig"
	"github.com/geomatch/geomatch/shardmap"
	"github.com/geomatch/geomatch/shardmap/autosplit"
	"github.com/geomatch/geomatch/simulator"
	"github.com/geomatch/geomatch/simulator/city"
	"github.com/geomatch/geomatch/simulator/report"
)

const simSynopsis = `Simulates a city's drivers and riders against a geomatch cluster through
its public API and reports match rate, time to match, pickup distance and
ETA, driver utilisation, API latency and location updates per second: a
live progress line, a KPI table, JSON (--json) and an HTML report
(--report DIR).

By default it starts its own cluster (a router and --matchers matchers in
this process, as geomatch dev does, with the matching flags below);
--target host:port runs against any router on this machine instead.
--compare greedy,batch runs the same scenario under each matching mode,
each on a fresh embedded cluster, and prints the differences; by default
(--compare auto) an embedded-cluster run long enough for it (at least
--warmup plus 3 simulated minutes) compares the two modes, --mode first.

The fleet starts warm (--warm-start): drivers already on trips in the
share a steady state would have; the first --warmup of simulated time is
left out of the KPIs all the same, and shaded on the report's charts.

Drivers report every --update-interval on their DriverService.Connect
streams (--transport batch: in UpdateLocations batches), accept offers
with --accept probability after a think time, and drive their trips.
Riders arrive as a Poisson process with a morning and evening peak and hot
spots. --speedup runs simulated time faster than the wall clock for
everything the simulator decides; what the service times stays real.
--seed makes the scenario (city, positions, arrivals, choices) the same
every run.

The city has named zones (six districts, the airport, a park, a stadium, a
station, a mall): the run puts them as fences of set sim-zones and reports
the available drivers in each over time (GetFenceCounts) and their enter
and exit events (an EventService subscription). --zones=false leaves them
out; a target without fences runs without them.`

// simFlags are the simulator's own flags.
type simFlags struct {
	target, cityName, roads                      string
	drivers                                      int
	duration, interval                           time.Duration
	speedup                                      float64
	seed                                         uint64
	runID, transport                             string
	batchSize                                    int
	demand, startHour, accept                    float64
	thinkMin, thinkMax, patienceMin, patienceMax time.Duration
	onShift                                      float64
	nearby, zones, warmStart                     bool
	warmup                                       time.Duration
	workers, matchers, maxWaiting                int
	compare, jsonPath, reportDir, progress       string
	scenario                                     string
}

func (f *simFlags) register(fs *flag.FlagSet) {
	d := simulator.DefaultConfig()
	fs.StringVar(&f.target, "target", "", "router to load (host:port on this machine); empty starts an embedded cluster")
	fs.StringVar(&f.cityName, "city", "nyc", "city preset: "+strings.Join(city.PresetNames(), ", "))
	fs.StringVar(&f.roads, "roads", "", "GeoJSON file of LineString roads to use instead of the preset's grid (demand spreads evenly)")
	fs.IntVar(&f.drivers, "drivers", d.Drivers, "fleet size")
	fs.DurationVar(&f.duration, "duration", d.Duration, "measured window (wall time)")
	fs.DurationVar(&f.interval, "update-interval", d.UpdateInterval, "how often each driver reports its position (wall time)")
	fs.Float64Var(&f.speedup, "speedup", d.Speedup, "simulated seconds per wall second (1..100) for movement, trips, arrivals, think and patience times")
	fs.Uint64Var(&f.seed, "seed", d.Seed, "seed of the scenario")
	fs.StringVar(&f.runID, "run-id", "", "suffix of the run's request ids (default: from the start time, so runs never share trips)")
	fs.StringVar(&f.transport, "transport", string(d.Transport), "stream (a Connect stream per driver) or batch (UpdateLocations batches, for very large fleets)")
	fs.IntVar(&f.batchSize, "batch-size", d.BatchSize, "updates per UpdateLocations call with --transport batch")
	fs.Float64Var(&f.demand, "demand", 0, "ride requests per simulated minute at the morning peak (0: 5% of the fleet)")
	fs.Float64Var(&f.startHour, "start-hour", d.StartHour, "simulated time of day at the start (demand follows the hour)")
	fs.Float64Var(&f.accept, "accept", d.AcceptProbability, "probability that a driver accepts an offer")
	fs.DurationVar(&f.thinkMin, "think-min", d.ThinkMin, "shortest time a driver takes to answer an offer (simulated)")
	fs.DurationVar(&f.thinkMax, "think-max", d.ThinkMax, "longest time a driver takes to answer an offer (simulated)")
	fs.DurationVar(&f.patienceMin, "patience-min", d.PatienceMin, "shortest time a rider waits for a driver (simulated)")
	fs.DurationVar(&f.patienceMax, "patience-max", d.PatienceMax, "longest time a rider waits for a driver (simulated)")
	fs.Float64Var(&f.onShift, "on-shift", d.OnShift, "share of the fleet on shift at the start")
	fs.BoolVar(&f.nearby, "nearby", d.Nearby, "riders look at nearby drivers (NearbyDrivers) before requesting")
	fs.BoolVar(&f.zones, "zones", d.Zones, "put the city's named zones as fences (set "+d.ZoneSet+") and report the supply and fence events per zone")
	fs.IntVar(&f.workers, "workers", d.Workers, "goroutines that own the drivers")
	fs.IntVar(&f.maxWaiting, "max-waiting-riders", d.MaxWaitingRiders, "riders waiting at once; arrivals beyond are dropped and counted")
	fs.IntVar(&f.matchers, "matchers", 3, "matcher nodes of the embedded cluster")
	fs.StringVar(&f.compare, "compare", "auto", "comma-separated matching modes to compare on the same scenario (e.g. greedy,batch), each on its own embedded cluster; auto: greedy and batch when the run allows it (embedded cluster, long enough); off: none")
	fs.BoolVar(&f.warmStart, "warm-start", d.WarmStart, "start the fleet near its steady state: some drivers already on (synthetic) trips")
	fs.DurationVar(&f.warmup, "warmup", d.Warmup, "simulated time at the start left out of the KPIs (at most half the run)")
	fs.StringVar(&f.scenario, "scenario", "", "stadium: a moving hot spot (30% of the fleet and of the ride requests converge on the stadium's shard from 15% to 55% of the window, then disperse), with the load per matcher and the ring's splits and merges charted; empty: none")
	fs.StringVar(&f.jsonPath, "json", "", "write the result as JSON to this file (- for stdout)")
	fs.StringVar(&f.reportDir, "report", "sim-report", "write the HTML report (index.html, report.json) into this directory (empty: none)")
	fs.StringVar(&f.progress, "progress", "auto", "live progress: auto (a bar on a terminal, else a line every 5 s), bar, plain or off")
}

// config builds the simulator configuration (without target and mode).
func (f *simFlags) config(log *slog.Logger) (simulator.Config, error) {
	cfg := simulator.DefaultConfig()
	p, ok := city.PresetByName(f.cityName)
	if !ok {
		return cfg, fmt.Errorf("--city: %q is not one of %s", f.cityName, strings.Join(city.PresetNames(), ", "))
	}
	if f.roads != "" {
		file, err := os.Open(f.roads)
		if err != nil {
			return cfg, fmt.Errorf("--roads: %w", err)
		}
		g, err := city.LoadGeoJSON(filepath.Base(f.roads), file, city.Speeds{})
		file.Close()
		if err != nil {
			return cfg, fmt.Errorf("--roads: %w", err)
		}
		cfg.City = g
	} else {
		g, err := city.Grid(p.Grid)
		if err != nil {
			return cfg, fmt.Errorf("--city %s: %w", p.Name, err)
		}
		cfg.City, cfg.Places = g, p.Places
	}
	cfg.Drivers, cfg.Duration, cfg.UpdateInterval, cfg.Speedup = f.drivers, f.duration, f.interval, f.speedup
	cfg.Seed, cfg.RunID, cfg.Transport, cfg.BatchSize = f.seed, f.runID, simulator.Transport(f.transport), f.batchSize
	cfg.DemandPerMinute, cfg.StartHour, cfg.AcceptProbability = f.demand, f.startHour, f.accept
	cfg.ThinkMin, cfg.ThinkMax, cfg.PatienceMin, cfg.PatienceMax = f.thinkMin, f.thinkMax, f.patienceMin, f.patienceMax
	cfg.OnShift, cfg.Nearby, cfg.Workers, cfg.MaxWaitingRiders = f.onShift, f.nearby, f.workers, f.maxWaiting
	cfg.Zones = f.zones
	cfg.WarmStart, cfg.Warmup = f.warmStart, f.warmup
	switch f.scenario {
	case "":
	case "stadium":
		st := simulator.DefaultStadium()
		cfg.Stadium = &st
	default:
		return cfg, fmt.Errorf("--scenario: %q, want stadium or nothing", f.scenario)
	}
	cfg.Log = log
	cfg.Target = "127.0.0.1:1" // placeholder for validation; set per run
	if err := cfg.Validate(); err != nil {
		return cfg, err
	}
	cfg.Target = ""
	return cfg, nil
}

func runSim(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("sim", simSynopsis, stderr)
	var sf simFlags
	var lf logFlags
	var rf ringFlags
	var stf storeFlags
	var df dispatchFlags
	sf.register(fs)
	lf.register(fs)
	rf.register(fs)
	stf.register(fs)
	df.register(fs)
	var sec clientFlags // for --target
	sec.register(fs)
	var asf autosplitFlags // for the embedded cluster
	asf.register(fs, "off")
	if err := fs.Set("log-level", "warn"); err != nil {
		return err
	}
	fs.Lookup("log-level").DefValue = "warn"
	if err := parse(fs, args); err != nil {
		return err
	}
	log, err := lf.logger(stderr)
	if err != nil {
		return err
	}
	cfg, err := sf.config(log)
	if err != nil {
		return err
	}
	autosplitCfg, err := asf.config()
	if err != nil {
		return err
	}
	if autosplitCfg != nil && sf.target != "" {
		return errors.New("--autosplit configures the embedded cluster; a --target runs its own (geomatch dev --autosplit on)")
	}
	if sf.target != "" {
		if cfg.DialOptions, err = sec.dialOptions(sf.target); err != nil {
			return err
		}
	}
	if sf.matchers < 1 || sf.matchers > 64 {
		return fmt.Errorf("--matchers: %d, want 1..64", sf.matchers)
	}
	switch sf.progress {
	case "auto", "bar", "plain", "off":
	default:
		return fmt.Errorf("--progress: %q, want auto, bar, plain or off", sf.progress)
	}
	modes, noCompare := autoCompare(&sf, cfg, df.mode)
	if sf.compare != "auto" && sf.compare != "off" && sf.compare != "" {
		if sf.target != "" {
			return errors.New("--compare runs each mode on its own embedded cluster; it cannot be combined with --target")
		}
		modes = nil
		for _, m := range strings.Split(sf.compare, ",") {
			m = strings.TrimSpace(m)
			if m != string(dispatch.Greedy) && m != string(dispatch.Batch) {
				return fmt.Errorf("--compare: %q is neither greedy nor batch", m)
			}
			modes = append(modes, m)
		}
		if len(modes) < 2 {
			return errors.New("--compare: name at least two modes, e.g. greedy,batch")
		}
	}
	// With --json -, stdout carries the JSON alone; the rest goes to stderr.
	human := stdout
	if sf.jsonPath == "-" {
		human = stderr
	}
	env := simEnv{autosplit: autosplitCfg, flags: &sf, ring: &rf, store: &stf, dispatch: &df, stdout: human, jsonOut: stdout, log: log}
	var results []*report.Result
	var runErr error
	for _, mode := range modes {
		res, err := env.runOne(ctx, cfg, mode)
		if res != nil {
			res.Run.NoComparison = noCompare
			if werr := report.WriteTable(human, res); werr != nil {
				return werr
			}
			if werr := report.WriteNodeLoad(human, res.NodeLoad); werr != nil {
				return werr
			}
			results = append(results, res)
		}
		if err != nil {
			runErr = err // an interrupted run still gets its report
			break
		}
	}
	return errors.Join(runErr, env.writeOutputs(modes, results, cfg.City))
}

// minCompareSimS is the measured window (simulated seconds after the
// warm-up) a run needs before --compare auto compares the matching modes.
const minCompareSimS = 180

// autoCompare resolves --compare auto and off: the modes to run (mode
// first) and, when there is no comparison, why not.
func autoCompare(f *simFlags, cfg simulator.Config, mode string) ([]string, string) {
	switch f.compare {
	case "auto":
	case "off", "":
		return []string{mode}, "switched off (--compare off)."
	default:
		return []string{mode}, "" // an explicit list; parsed by the caller
	}
	if f.target != "" {
		return []string{mode}, "the run used --target; comparing matching modes needs a fresh embedded cluster per mode (run without --target)."
	}
	if sim := cfg.Duration.Seconds()*cfg.Speedup - cfg.Warmup.Seconds(); sim < minCompareSimS {
		return []string{mode}, fmt.Sprintf("the run is too short: %.1f simulated minutes after the warm-up, and a fair comparison needs %d (raise --duration or --speedup, or name the modes with --compare greedy,batch).",
			max(sim, 0)/60, minCompareSimS/60)
	}
	other := string(dispatch.Batch)
	if mode == other {
		other = string(dispatch.Greedy)
	}
	return []string{mode, other}, ""
}

// simEnv is what one invocation of geomatch sim needs across its runs.
type simEnv struct {
	autosplit *autosplit.Config // the embedded cluster's; nil: off
	flags     *simFlags
	ring      *ringFlags
	store     *storeFlags
	dispatch  *dispatchFlags
	stdout    io.Writer // progress, tables
	jsonOut   io.Writer // the JSON with --json -
	log       *slog.Logger
}

// runOne runs the scenario once, against the target or a fresh embedded
// cluster in matching mode mode.
func (env *simEnv) runOne(ctx context.Context, cfg simulator.Config, mode string) (*report.Result, error) {
	cfg.Target = env.flags.target
	cfg.MatchMode = ""
	if cfg.Target == "" {
		df := *env.dispatch
		df.mode = mode
		dcfg, err := df.config()
		if err != nil {
			return nil, err
		}
		st, err := env.store.open(ctx)
		if err != nil {
			return nil, err
		}
		if st != nil {
			defer st.Close()
		}
		ca, err := embeddedCA()
		if err != nil {
			return nil, err
		}
		c, err := cluster.StartDev(cluster.DevConfig{
			Store: st, Dispatch: dcfg, Matchers: env.flags.matchers, Drain: drainTimeout, Log: env.log, InternalCA: ca, Autosplit: env.autosplit,
			Doc: shardmap.Doc{ShardRes: env.ring.shardRes, MaxSplitDepth: env.ring.splitDepth, VNodes: env.ring.vnodes},
		})
		if err != nil {
			return nil, fmt.Errorf("start the embedded cluster: %w", err)
		}
		defer func() {
			if err := c.Stop(); err != nil {
				env.log.Warn("stop the embedded cluster", "err", err)
			}
		}()
		cfg.Target = c.RouterAddr
		cfg.MatchMode = mode
		fmt.Fprintf(env.stdout, "geomatch sim: embedded cluster (router %s, %d matchers, %s matching); %d drivers in %s for %v at %gx\n",
			c.RouterAddr, env.flags.matchers, mode, cfg.Drivers, cfg.City.Name, cfg.Duration, cfg.Speedup)
	} else {
		fmt.Fprintf(env.stdout, "geomatch sim: target %s; %d drivers in %s for %v at %gx\n", cfg.Target, cfg.Drivers, cfg.City.Name, cfg.Duration, cfg.Speedup)
	}
	prog := newProgressDisplay(env.stdout, env.flags.progress)
	cfg.OnSample = prog.update
	res, err := simulator.Run(ctx, cfg)
	prog.finish()
	return res, err
}

// writeOutputs writes the JSON and the HTML report, and the comparison.
func (env *simEnv) writeOutputs(modes []string, results []*report.Result, g *city.Graph) error {
	if len(results) == 0 {
		return nil
	}
	var doc any = results[0]
	if len(results) > 1 {
		c := report.Compare(modes[:len(results)], results)
		if err := report.WriteComparison(env.stdout, c); err != nil {
			return err
		}
		doc = c
	}
	if env.flags.jsonPath != "" {
		if env.flags.jsonPath == "-" {
			if err := report.WriteJSON(env.jsonOut, doc); err != nil {
				return err
			}
		} else if err := report.WriteJSONFile(env.flags.jsonPath, doc); err != nil {
			return err
		}
	}
	if dir := env.flags.reportDir; dir != "" {
		if len(results) == 1 {
			if err := report.WriteHTML(dir, results[0], g); err != nil {
				return err
			}
		} else if err := report.WriteComparisonHTML(dir, doc.(*report.Comparison), g); err != nil {
			return err
		}
		abs, _ := filepath.Abs(filepath.Join(dir, "index.html"))
		fmt.Fprintf(env.stdout, "report: %s\n", abs)
	}
	if env.flags.target == "" {
		// The embedded cluster stopped with the run; say how to watch a
		// live one.
		fmt.Fprintf(env.stdout, "live shard map: the run's cluster has stopped; keep one running with `geomatch dev --demo-drivers 2000` (make dev) and open http://%s/ui/\n", devHTTPAddr)
	} else {
		fmt.Fprintf(env.stdout, "live shard map: /ui/ on the --metrics address of the router at %s\n", env.flags.target)
	}
	return nil
}

// plainEvery is how often the progress line prints when stdout is not a
// terminal.
const plainEvery = 5 * time.Second

// progressDisplay shows the live progress: a progress bar on a terminal
// (schollz/progressbar), else a plain line every few seconds. update is
// called from the run's sampler goroutine, finish from the caller's.
type progressDisplay struct {
	mu        sync.Mutex
	w         io.Writer
	mode      string
	width     int // terminal columns, in bar mode
	bar       *progressbar.ProgressBar
	lastPlain time.Time
}

func newProgressDisplay(w io.Writer, mode string) *progressDisplay {
	width := 0
	f, isFile := w.(*os.File)
	if isFile && term.IsTerminal(int(f.Fd())) {
		width, _, _ = term.GetSize(int(f.Fd()))
	} else if mode == "auto" {
		mode = "plain"
	}
	if mode == "auto" {
		mode = "bar"
	}
	return &progressDisplay{w: w, mode: mode, width: width}
}

func (p *progressDisplay) update(s simulator.Progress) {
	p.mu.Lock()
	defer p.mu.Unlock()
	line := progressLine(s)
	switch p.mode {
	case "bar":
		// The bar redraws one line: keep it within the terminal.
		if max := p.width - 32; max > 20 && len(line) > max {
			line = line[:max-1] + "…"
		}
		if p.bar == nil {
			p.bar = progressbar.NewOptions64(int64(s.Duration/time.Second),
				progressbar.OptionSetWriter(p.w), progressbar.OptionSetWidth(20),
				progressbar.OptionSetPredictTime(false), progressbar.OptionSetElapsedTime(false),
				progressbar.OptionShowDescriptionAtLineEnd(), progressbar.OptionThrottle(200*time.Millisecond))
		}
		p.bar.Describe(line)
		if s.Phase == "running" {
			_ = p.bar.Set64(min(int64(s.Elapsed/time.Second), int64(s.Duration/time.Second)))
		}
	case "plain":
		if time.Since(p.lastPlain) >= plainEvery {
			p.lastPlain = time.Now()
			fmt.Fprintln(p.w, line)
		}
	}
}

func (p *progressDisplay) finish() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.bar != nil {
		_ = p.bar.Finish()
		fmt.Fprintln(p.w)
	}
}

// progressLine is the one-line state of a run.
func progressLine(s simulator.Progress) string {
	if s.Phase == "connecting" {
		return fmt.Sprintf("connecting %d/%d driver streams (%v)", s.Connected, s.Drivers, s.Elapsed.Round(time.Second))
	}
	var b strings.Builder
	fmt.Fprintf(&b, "%v/%v", s.Elapsed.Round(time.Second), s.Duration)
	if s.Phase != "running" {
		fmt.Fprintf(&b, " %s", s.Phase)
	}
	fmt.Fprintf(&b, " drivers %d (%d busy) waiting %d updates/s %.0f of %.0f", s.Online, s.Busy, s.Waiting, s.UpdatesPerS, s.OfferedPerS)
	sep := " p99 ms"
	for _, m := range []string{"RequestRide", "NearbyDrivers", "Connect.OfferAnswer", "UpdateLocations"} {
		if v, ok := s.P99Ms[m]; ok {
			fmt.Fprintf(&b, "%s %s %.1f", sep, shortMethod(m), v)
			sep = ","
		}
	}
	fmt.Fprintf(&b, " matched %d/%d", s.Matched, s.Requests)
	return b.String()
}

func shortMethod(m string) string {
	switch m {
	case "RequestRide":
		return "ride"
	case "NearbyDrivers":
		return "nearby"
	case "UpdateLocations":
		return "update"
	case "Connect.OfferAnswer":
		return "answer"
	case "Connect.TripProgress":
		return "progress"
	case "Connect.Send":
		return "send"
	case "CancelTrip":
		return "cancel"
	case "GetTrip":
		return "get"
	}
	return m
}

// embeddedCA is the throwaway CA of an embedded cluster's internal API
// (sim, bench): its matchers and router talk mutual TLS by identity, as
// geomatch dev's do.
func embeddedCA() (*tlsconfig.CA, error) {
	ca, err := tlsconfig.NewCA(devCluster, tlsconfig.ECDSAP256, devCertValidity)
	if err != nil {
		return nil, fmt.Errorf("embedded cluster CA: %w", err)
	}
	return ca, nil
}

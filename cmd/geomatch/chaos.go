package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"time"

	"github.com/geomatch/geomatch/chaos"
)

// Bounds of the chaos command's load: it runs on a shared machine (or
// against staging) and must never grow without limit.
const (
	chaosMaxUpdatesPerS = 100_000
	chaosMaxQueriesPerS = 10_000
	chaosMaxRidesPerS   = 100
	chaosMaxDrivers     = 50_000
	chaosMaxDuration    = time.Hour
)

// consulVersion is the Consul release scripts/install-consul.sh builds.
const consulVersion = "v1.13.9"

func runChaos(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("chaos", `Fault-injection harness: starts a real cluster on loopback (Consul, Redis,
--matchers matchers and --routers routers, each a child process of this
binary; Consul and Redis reached through proxies the harness can cut), drives
load through the public API (drivers streaming with acknowledgements, fleet
gateways reporting more in UpdateLocations batches, nearby queries, ride
requests answered by drivers), injects the scenario's faults on
a seeded schedule, records every client operation and checks the history:
double assignments, lost trips, lost acknowledged updates, stale or
incomplete answers, rejected updates, failed queries and rides, ended driver
streams, stranded trips; and the time to serve again, latencies during fault
windows and the position age. Prints a verdict table (and --json); exits 1 on
any violation.

Scenarios:
  kill       --faults SIGKILLs of random matchers, each restarted up to 3 s later
  partition  a matcher cut off from Consul, its peers and the routers for
             --partition, healed; then another matcher and the last router
             cut off from Consul only (the router keeps routing to the
             matcher by the ring it last saw: split brain unless the
             matcher fences itself); then Consul cut off from everything
  blips      Redis paused (SIGSTOP) 5 s, later Consul paused 10 s
  drain      SIGTERM of a matcher (restarted), later admin drain and undrain
             of another

With --attach the load and the checks run against an existing cluster's
routers, and no fault is injected.`, stderr)
	scenario := fs.String("scenario", "", "kill, partition, blips or drain (required)")
	duration := fs.Duration("duration", 60*time.Second, fmt.Sprintf("length of the load, at most %v", chaosMaxDuration))
	matchers := fs.Int("matchers", 3, "matcher processes")
	routers := fs.Int("routers", 2, "router processes")
	seed := fs.Uint64("seed", 1, "seed of the fault schedule and the load")
	updates := fs.Float64("updates-per-s", 2000, fmt.Sprintf("location updates a second, all drivers together, at most %d", chaosMaxUpdatesPerS))
	batched := fs.Float64("batched-updates-per-s", 0, fmt.Sprintf("more location updates a second from fleet gateways in UpdateLocations batches (drivers of their own, one update a second each), at most %d", chaosMaxDrivers))
	queries := fs.Float64("queries-per-s", 200, fmt.Sprintf("nearby queries a second, at most %d", chaosMaxQueriesPerS))
	rides := fs.Float64("rides-per-s", 2, fmt.Sprintf("ride requests a second, at most %d", chaosMaxRidesPerS))
	drivers := fs.Int("drivers", 0, fmt.Sprintf("streaming drivers (0: one per update a second, at most 5000); at most %d", chaosMaxDrivers))
	rideDrivers := fs.Int("ride-drivers", 40, "drivers answering offers, in an area of their own")
	faults := fs.Int("faults", 0, "kills of the kill scenario (0: one per 10 s)")
	partition := fs.Duration("partition", 30*time.Second, "how long the partition scenario cuts a matcher off")
	maxAge := fs.Duration("max-position-age", time.Second, "how much older than an acknowledged update a driver's position in an answer may be")
	jsonOut := fs.String("json", "", "also write the report as JSON to this file")
	history := fs.String("history", "", "write every client operation as JSON lines to this file")
	maxOps := fs.Int("max-ops", 5_000_000, "operations the history keeps in memory for the checker")
	logs := fs.String("logs", "", "directory for the processes' logs (default: a new temporary directory)")
	processLogLevel := fs.String("process-log-level", "warn", "log level of the matchers and routers started: debug, info, warn or error")
	attach := fs.String("attach", "", "comma-separated router addresses (loopback) of a running cluster: load and checks only, no faults")
	consul := fs.String("consul-binary", "", "Consul executable (default: consul on PATH, then the cache of scripts/install-consul.sh)")
	redis := fs.String("redis-binary", "redis-server", "redis-server executable")
	verbose := fs.Bool("v", false, "log the harness's progress to stderr")
	if err := parse(fs, args); err != nil {
		return err
	}
	if !slices.Contains(chaos.Scenarios, *scenario) {
		return fmt.Errorf("--scenario: %q is not one of %v", *scenario, chaos.Scenarios)
	}
	switch {
	case *duration <= 0 || *duration > chaosMaxDuration:
		return fmt.Errorf("--duration: %v is not in (0, %v]", *duration, chaosMaxDuration)
	case *updates <= 0 || *updates > chaosMaxUpdatesPerS:
		return fmt.Errorf("--updates-per-s: %v is not in (0, %d]", *updates, chaosMaxUpdatesPerS)
	case *batched < 0 || *batched > chaosMaxDrivers:
		return fmt.Errorf("--batched-updates-per-s: %v is not in [0, %d]", *batched, chaosMaxDrivers)
	case *queries < 0 || *queries > chaosMaxQueriesPerS:
		return fmt.Errorf("--queries-per-s: %v is not in [0, %d]", *queries, chaosMaxQueriesPerS)
	case *rides < 0 || *rides > chaosMaxRidesPerS:
		return fmt.Errorf("--rides-per-s: %v is not in [0, %d]", *rides, chaosMaxRidesPerS)
	case *drivers < 0 || *drivers > chaosMaxDrivers:
		return fmt.Errorf("--drivers: %d is not in [0, %d]", *drivers, chaosMaxDrivers)
	case *rideDrivers < 0 || *rideDrivers > chaosMaxDrivers:
		return fmt.Errorf("--ride-drivers: %d is not in [0, %d]", *rideDrivers, chaosMaxDrivers)
	case *routers < 1 || *routers > 9:
		return fmt.Errorf("--routers: %d is not in [1, 9]", *routers)
	case *matchers < 2 || *matchers > 9:
		return fmt.Errorf("--matchers: %d is not in [2, 9]", *matchers)
	case *maxOps < 1000:
		return fmt.Errorf("--max-ops: %d is below 1000", *maxOps)
	case !slices.Contains([]string{"debug", "info", "warn", "error"}, *processLogLevel):
		return fmt.Errorf("--process-log-level: %q is not debug, info, warn or error", *processLogLevel)
	}
	nd := *drivers
	if nd == 0 {
		nd = min(int(*updates), 5000)
	}
	cfg := chaos.RunConfig{
		Scenario: *scenario, Duration: *duration, Matchers: *matchers, Routers: *routers, Seed: *seed,
		Faults: *faults, Partition: *partition, Attach: splitList(*attach),
		Load: chaos.LoadConfig{Drivers: nd, UpdatesPerS: *updates, BatchedUpdatesPerS: *batched, QueriesPerS: *queries,
			RideDrivers: *rideDrivers, RidesPerS: *rides},
		RedisBinary: *redis, Dir: *logs, LogLevel: *processLogLevel, History: *history, MaxOps: *maxOps,
		Check: chaos.CheckConfig{MaxPositionAge: *maxAge},
	}
	if *verbose {
		cfg.Logger = slog.New(slog.NewTextHandler(stderr, nil))
	}
	if len(cfg.Attach) == 0 {
		self, err := os.Executable()
		if err != nil {
			return fmt.Errorf("find the geomatch binary: %w", err)
		}
		cfg.Binary = self
		if cfg.ConsulBinary = findConsul(*consul); cfg.ConsulBinary == "" {
			return fmt.Errorf("--consul-binary: no Consul found (run scripts/install-consul.sh, or make consul, and pass its output)")
		}
		if _, err := exec.LookPath(*redis); err != nil {
			return fmt.Errorf("--redis-binary: %w (apt-get install redis-server)", err)
		}
		if cfg.Dir == "" {
			dir, err := os.MkdirTemp("", "geomatch-chaos-")
			if err != nil {
				return fmt.Errorf("--logs: %w", err)
			}
			cfg.Dir = dir
		}
		fmt.Fprintf(stderr, "geomatch chaos: process logs in %s\n", cfg.Dir)
	}
	rep, err := chaos.Run(ctx, cfg)
	if rep != nil {
		if werr := chaos.WriteTable(stdout, rep); werr != nil {
			return werr
		}
		if *jsonOut != "" {
			if werr := chaos.WriteJSON(*jsonOut, rep); werr != nil {
				return werr
			}
		}
	}
	if err != nil {
		return err
	}
	if rep.Verdict != "PASS" {
		n := 0
		for _, v := range rep.Result.Violations {
			n += v.Count
		}
		return fmt.Errorf("scenario %s failed: %d violations", *scenario, n)
	}
	return nil
}

// findConsul returns the Consul executable: flag, PATH, or the cache
// scripts/install-consul.sh fills; "" when there is none.
func findConsul(flagValue string) string {
	if flagValue != "" {
		return flagValue
	}
	if p, err := exec.LookPath("consul"); err == nil {
		return p
	}
	cache := os.Getenv("GEOMATCH_CACHE")
	if cache == "" {
		dir, err := os.UserCacheDir()
		if err != nil {
			return ""
		}
		cache = filepath.Join(dir, "geomatch")
	}
	p := filepath.Join(cache, "consul-"+consulVersion, "consul")
	if st, err := os.Stat(p); err == nil && st.Mode()&0o111 != 0 {
		return p
	}
	return ""
}

package loadgen

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// Bounds of a Config.
const (
	// MaxDrivers bounds the simulated fleet; 2M drivers keep the client's
	// own state (ids and positions) under a few hundred MB.
	MaxDrivers = 2_000_000
	// MaxDuration bounds one measured phase.
	MaxDuration = 60 * time.Second
	// MaxConcurrency bounds the client workers of a nearby phase.
	MaxConcurrency = 1024
	// MaxBatch bounds the updates per UpdateLocations call (the API's own
	// limit is 10,000).
	MaxBatch = 10_000
	// MaxStreamApps bounds the driver-app streams of the ingest-stream phase.
	MaxStreamApps = 4096
	// MaxOpsPerWorker caps the operations of one worker in one phase, so
	// every loop is bounded by count as well as by time.
	MaxOpsPerWorker = 50_000_000
)

// Distribution is how driver and query positions are spread.
type Distribution string

// The distributions.
const (
	// Uniform spreads positions uniformly over New York: lat 40.55..40.95,
	// lng -74.10..-73.70.
	Uniform Distribution = "uniform"
	// Hotspot puts half the positions within 3 km of Midtown Manhattan
	// and the other half uniformly, like Uniform.
	Hotspot Distribution = "hotspot"
)

// Config describes one load-generation run. DefaultConfig gives every field
// its default; Validate checks it.
type Config struct {
	// Drivers is the simulated fleet size, 1..MaxDrivers; default 100,000.
	Drivers int
	// Dist is the position distribution; default Uniform.
	Dist Distribution
	// Seed makes positions and query points reproducible; default 1.
	Seed uint64
	// Duration is the length of each measured phase (every phase but
	// load), up to MaxDuration; default 5 s, long enough for stable
	// percentiles, short enough for a whole run to take under a minute.
	// Every worker completes at least one call (bounded by a 10 s call
	// timeout), so on a slow target a phase may run over by one call
	// rather than end without a figure.
	Duration time.Duration
	// Concurrency lists the client concurrencies of the nearby phases, one
	// phase each, 1..MaxConcurrency; default 1, 8, 32.
	Concurrency []int
	// Batch is the number of updates per UpdateLocations call (or per
	// pipeline on a RESP target), 1..MaxBatch; default 1,000.
	Batch int
	// IngestConcurrency is the number of workers of the load and
	// ingest-unary phases; default 8.
	IngestConcurrency int
	// StreamApps is the number of driver-app streams of the ingest-stream
	// phase (capped by Drivers), 1..MaxStreamApps; default 256.
	StreamApps int
	// LoadTimeout bounds the load phase; default 5 minutes.
	LoadTimeout time.Duration
	// RadiusM and Limit shape every nearby query; defaults 2,000 m and 10.
	RadiusM float64
	Limit   int
	// Skip names measured phases not to run: "ingest-unary",
	// "ingest-stream", "nearby" (every nearby-C phase) or one "nearby-C",
	// "floor" (every floor-C phase) or one "floor-C".
	// The load phase always runs. Default none.
	Skip []string
	// MeasureProcess reports this process's CPU seconds and RSS per phase
	// as the server's. Set it when the target runs in this process (the
	// embedded cluster: the figures then include the load generator);
	// default false.
	MeasureProcess bool
	// ServerPID, when not 0, is the process id of the target server on
	// this machine (geomatch dev, redis-server, tile38-server): its CPU
	// seconds and RSS are reported per phase, from /proc, and the load
	// generator's own CPU separately. Default 0.
	ServerPID int
	// ServerMetrics, when set, is the Prometheus endpoint of the target
	// server (geomatch dev's http://HOST:PORT/metrics, on loopback): the Go
	// runtime's GC share of the server's CPU and its live heap are read
	// from it at each phase's start and end. Default "".
	ServerMetrics string
	// PhaseHook, when set, is called before each phase with its name; the
	// function it returns, if not nil, is called when the phase ends (before
	// its CPU is read). `geomatch bench` uses it to profile chosen phases.
	PhaseHook func(phase string) (end func())
}

// DefaultConfig returns the documented defaults.
func DefaultConfig() Config {
	return Config{
		Drivers:           100_000,
		Dist:              Uniform,
		Seed:              1,
		Duration:          5 * time.Second,
		Concurrency:       []int{1, 8, 32},
		Batch:             1000,
		IngestConcurrency: 8,
		StreamApps:        256,
		LoadTimeout:       5 * time.Minute,
		RadiusM:           2000,
		Limit:             10,
	}
}

// Validate reports every field out of its bounds.
func (c Config) Validate() error {
	var errs []error
	if c.Drivers < 1 || c.Drivers > MaxDrivers {
		errs = append(errs, fmt.Errorf("drivers: %d, want 1..%d", c.Drivers, MaxDrivers))
	}
	if c.Dist != Uniform && c.Dist != Hotspot {
		errs = append(errs, fmt.Errorf("dist: %q is neither %s nor %s", c.Dist, Uniform, Hotspot))
	}
	if c.Duration <= 0 || c.Duration > MaxDuration {
		errs = append(errs, fmt.Errorf("duration: %v, want (0, %v]", c.Duration, MaxDuration))
	}
	if len(c.Concurrency) == 0 {
		errs = append(errs, errors.New("concurrency: at least one value is required"))
	}
	for _, n := range c.Concurrency {
		if n < 1 || n > MaxConcurrency {
			errs = append(errs, fmt.Errorf("concurrency: %d, want 1..%d", n, MaxConcurrency))
		}
	}
	if c.Batch < 1 || c.Batch > MaxBatch {
		errs = append(errs, fmt.Errorf("batch: %d, want 1..%d", c.Batch, MaxBatch))
	}
	if c.IngestConcurrency < 1 || c.IngestConcurrency > MaxConcurrency {
		errs = append(errs, fmt.Errorf("ingest concurrency: %d, want 1..%d", c.IngestConcurrency, MaxConcurrency))
	}
	if c.StreamApps < 1 || c.StreamApps > MaxStreamApps {
		errs = append(errs, fmt.Errorf("stream apps: %d, want 1..%d", c.StreamApps, MaxStreamApps))
	}
	if c.LoadTimeout <= 0 {
		errs = append(errs, fmt.Errorf("load timeout: %v, want > 0", c.LoadTimeout))
	}
	if c.RadiusM <= 0 {
		errs = append(errs, fmt.Errorf("radius: %v m, want > 0", c.RadiusM))
	}
	if c.Limit < 1 {
		errs = append(errs, fmt.Errorf("limit: %d, want >= 1", c.Limit))
	}
	for _, s := range c.Skip {
		if s != "ingest-unary" && s != "ingest-stream" && s != "nearby" && !isNearbyPhase(s) && s != "floor" && !isFloorPhase(s) {
			errs = append(errs, fmt.Errorf("skip: unknown phase %q (ingest-unary, ingest-stream, nearby, nearby-C, floor, floor-C)", s))
		}
	}
	if c.ServerPID < 0 {
		errs = append(errs, fmt.Errorf("server pid: %d, want >= 0", c.ServerPID))
	}
	if c.ServerMetrics != "" {
		if err := checkMetricsURL(c.ServerMetrics); err != nil {
			errs = append(errs, fmt.Errorf("server metrics: %w", err))
		}
		if c.MeasureProcess {
			errs = append(errs, errors.New("server metrics: the embedded cluster is measured in process; give it only with a target"))
		}
	}
	if c.ServerPID != 0 && c.MeasureProcess {
		errs = append(errs, errors.New("server pid: set together with measure process; give one"))
	}
	return errors.Join(errs...)
}

// isFloorPhase reports whether name is floor-C for some number C.
func isFloorPhase(name string) bool {
	c, ok := strings.CutPrefix(name, "floor-")
	if !ok {
		return false
	}
	_, err := strconv.Atoi(c)
	return err == nil
}

// isNearbyPhase reports whether name is nearby-C for some number C.
func isNearbyPhase(name string) bool {
	c, ok := strings.CutPrefix(name, "nearby-")
	if !ok {
		return false
	}
	_, err := strconv.Atoi(c)
	return err == nil
}

// skips reports whether phase is one of c.Skip (nearby-C also when Skip
// names "nearby").
func (c Config) skips(phase string) bool {
	for _, s := range c.Skip {
		if s == phase || s == "nearby" && isNearbyPhase(phase) || s == "floor" && isFloorPhase(phase) {
			return true
		}
	}
	return false
}

// checkMetricsURL accepts an http URL of a loopback host.
func checkMetricsURL(raw string) error {
	u, err := url.Parse(raw)
	if err != nil {
		return err
	}
	if u.Scheme != "http" {
		return fmt.Errorf("%q: want http://HOST:PORT/metrics", raw)
	}
	ip := net.ParseIP(u.Hostname())
	if u.Hostname() != "localhost" && (ip == nil || !ip.IsLoopback()) {
		return fmt.Errorf("%q: loopback hosts only", raw)
	}
	return nil
}

package simulator

import (
	"errors"
	"fmt"
	"github.com/geomatch/geomatch/internal/validate"
	"log/slog"
	"math"
	"time"

	"google.golang.org/grpc"

	"github.com/geomatch/geomatch/simulator/city"
	"github.com/geomatch/geomatch/simulator/demand"
)

// Transport is how drivers report their positions.
type Transport string

// Transports.
const (
	// Stream: each driver reports on its own DriverService.Connect stream,
	// as a driver app does.
	Stream Transport = "stream"
	// Batch: positions go in UpdateLocations batches (a fleet back end);
	// the Connect streams carry only offers and trip progress.
	Batch Transport = "batch"
)

// Config configures a run. DefaultConfig has a value for every field but
// the target and the city.
type Config struct {
	// Target is the router's public API (host:port, loopback only).
	Target string
	// DialOptions secure the connections to Target (TLS credentials, a
	// token); plaintext without them.
	DialOptions []grpc.DialOption
	// City is the street network; Places are its demand hot spots.
	City   *city.Graph
	Places []city.Place

	// Drivers is the fleet size; default 2000.
	Drivers int
	// Duration is the measured window, wall time; default 60 s.
	Duration time.Duration
	// UpdateInterval is how often each driver reports, wall time; default
	// 4 s (well inside the service's 30 s driver TTL).
	UpdateInterval time.Duration
	// Speedup runs simulated time this many times faster than wall time
	// (1: real time); at most 100.
	Speedup float64
	// Seed draws the scenario; the same seed gives the same scenario.
	Seed uint64
	// RunID makes the run's request ids unique on a long-lived cluster;
	// default derived from the start time.
	RunID string
	// DriverPrefix prefixes driver ids (<prefix>-d000001); default "sim".
	DriverPrefix string
	// Transport is Stream (default) or Batch; BatchSize is the updates per
	// UpdateLocations call in batch mode (default 1000, at most 10000).
	Transport Transport
	BatchSize int

	// DemandPerMinute is the mean ride requests per simulated minute when
	// the profile's factor is 1; 0 picks 5% of the fleet per minute (about
	// half the fleet busy once trips run their course in the default city).
	DemandPerMinute float64
	// Profile shapes demand over the day; StartHour is the simulated time of
	// day when the run starts (default 8: the morning peak).
	Profile   demand.Profile
	StartHour float64
	// BackgroundDemand is the weight of requests spread uniformly over the
	// city, against the places' weights (default: equal to the places'
	// total).
	BackgroundDemand float64
	// MinTripM is the shortest ride, straight line; default 800 m.
	MinTripM float64
	// Nearby makes every rider look at the nearby drivers first
	// (NearbyDrivers, 10 within 2 km), as rider apps do; default on.
	Nearby bool

	// AcceptProbability is the chance a driver accepts an offer; default
	// 0.9. ThinkMin and ThinkMax bound the time before answering
	// (simulated time; default 2 to 8 s).
	AcceptProbability  float64
	ThinkMin, ThinkMax time.Duration
	// PatienceMin and PatienceMax bound how long a rider waits for a
	// driver before giving up (simulated time; default 60 to 300 s).
	PatienceMin, PatienceMax time.Duration
	// OnShift is the share of the fleet on shift at the start; default
	// 0.95. ShiftMean and BreakMean are the mean lengths of a shift and of
	// the time off between shifts (simulated; default 4 h and 30 min).
	OnShift              float64
	ShiftMean, BreakMean time.Duration

	// Workers own the drivers; default 8.
	Workers int
	// MaxWaitingRiders bounds the riders waiting at once (each is a
	// goroutine and open calls); arrivals beyond it are dropped and
	// counted. Default 20000.
	MaxWaitingRiders int
	// StreamsPerConn bounds the driver streams per gRPC connection (the
	// servers allow 10000); default 4000.
	StreamsPerConn int
	// ConnectConcurrency is how many streams open at once; default 64.
	ConnectConcurrency int
	// SampleEvery is the interval of the time series and of OnSample;
	// default 1 s.
	SampleEvery time.Duration
	// WindDown bounds the wind-down after the window; default 15 s.
	WindDown time.Duration
	// MaxTrips bounds the trips one run tracks; later arrivals are dropped.
	// Default 2,000,000.
	MaxTrips int

	// Zones puts the city's named zones (city.Zones: six districts, the
	// airport, a park, a stadium, a station, a mall) as fences of ZoneSet
	// when the run starts, and reports the available drivers in each over
	// time (GetFenceCounts every sample interval) and their enter and exit
	// events (a subscription to the set); default on. A target without
	// fences (FAILED_PRECONDITION, UNIMPLEMENTED) runs without zones, with
	// a warning. The fences stay after the run (the next run replaces
	// them), so the counts can be read afterwards.
	Zones bool
	// ZoneSet is the zones' fence set; default "sim-zones". A zone's fence
	// id is the set, a slash and the zone's id ("sim-zones/airport"), so
	// no one else's fence is replaced.
	ZoneSet string

	// WarmStart starts the fleet near its steady state: when the window
	// opens, a share of the online drivers is already on a trip (carried
	// over from before the run; the service never sees those trips: their
	// drivers report themselves on a trip until the drop-off). Default on.
	WarmStart bool
	// Warmup is the simulated time at the start of the window left out of
	// the KPIs (at most half the window); default 2 minutes.
	Warmup time.Duration

	// Stadium, when set, runs the moving hot spot scenario (see Stadium):
	// `geomatch sim --scenario stadium`.
	Stadium *Stadium
	// NodeLoad samples the load per matcher every sample interval
	// (AdminService.ListShards and GetRing) for the report's load chart,
	// with the ring's splits and merges; on with Stadium. LoadQueryWeight
	// is a nearby query's weight in that load, in location updates
	// (default 0, updates only, as automatic splitting weighs them).
	NodeLoad        bool
	LoadQueryWeight float64

	// MatchMode names the cluster's matching mode in the report (the
	// simulator cannot ask a router for it).
	MatchMode string
	// Log receives the run's warnings; default discards them.
	Log *slog.Logger
	// OnSample, when set, is called with every sample (from the run's
	// sampler goroutine): the progress display.
	OnSample func(Progress)
}

// Progress is what the live progress line shows.
type Progress struct {
	// Phase is "connecting", "running" or "winding down".
	Phase string
	// Elapsed is the time into the window (or into the phase).
	Elapsed, Duration time.Duration
	// Connected streams of Drivers while connecting.
	Connected, Drivers int
	// Online and Busy drivers; riders Waiting for a driver.
	Online, Busy, Waiting int64
	// UpdatesPerS sent and offered over the last sample.
	UpdatesPerS, OfferedPerS float64
	// Requests and Matched so far.
	Requests, Matched int64
	// P99Ms is each method's p99 so far.
	P99Ms map[string]float64
}

// DefaultConfig returns the defaults.
func DefaultConfig() Config {
	return Config{
		Drivers:            2000,
		Duration:           60 * time.Second,
		UpdateInterval:     4 * time.Second,
		Speedup:            1,
		Seed:               1,
		DriverPrefix:       "sim",
		Transport:          Stream,
		BatchSize:          1000,
		Profile:            demand.DefaultProfile(),
		StartHour:          8,
		BackgroundDemand:   -1, // equal to the places' total
		MinTripM:           800,
		Nearby:             true,
		AcceptProbability:  0.9,
		ThinkMin:           2 * time.Second,
		ThinkMax:           8 * time.Second,
		PatienceMin:        60 * time.Second,
		PatienceMax:        300 * time.Second,
		OnShift:            0.95,
		ShiftMean:          4 * time.Hour,
		BreakMean:          30 * time.Minute,
		Workers:            8,
		MaxWaitingRiders:   20000,
		StreamsPerConn:     4000,
		ConnectConcurrency: 64,
		SampleEvery:        time.Second,
		WindDown:           15 * time.Second,
		MaxTrips:           2_000_000,
		Zones:              true,
		ZoneSet:            "sim-zones",
		WarmStart:          true,
		Warmup:             2 * time.Minute,
	}
}

// Limits of a run.
const (
	MaxDrivers     = 1_000_000
	MaxDuration    = 24 * time.Hour
	MaxSpeedup     = 100
	maxIDPrefix    = 32
	maxWorkers     = 256
	maxUpdateBatch = 10000
	// maxZoneSet leaves room in a fence id for the zone's own id.
	maxZoneSet = 64
)

// Validate checks the configuration.
func (c *Config) Validate() error {
	var errs []error
	check := func(ok bool, format string, args ...any) {
		if !ok {
			errs = append(errs, fmt.Errorf(format, args...))
		}
	}
	check(c.Target != "", "target: required")
	check(c.City != nil, "city: required")
	check(c.Drivers >= 1 && c.Drivers <= MaxDrivers, "drivers: %d, want 1..%d", c.Drivers, MaxDrivers)
	check(c.Duration >= time.Second && c.Duration <= MaxDuration, "duration: %v, want 1s..%v", c.Duration, MaxDuration)
	check(c.UpdateInterval >= 100*time.Millisecond && c.UpdateInterval <= time.Minute, "update interval: %v, want 100ms..1m", c.UpdateInterval)
	check(c.Speedup >= 1 && c.Speedup <= MaxSpeedup, "speedup: %v, want 1..%d", c.Speedup, MaxSpeedup)
	check(len(c.DriverPrefix) >= 1 && len(c.DriverPrefix) <= maxIDPrefix, "driver prefix: %q, want 1..%d bytes", c.DriverPrefix, maxIDPrefix)
	check(len(c.RunID) <= maxIDPrefix, "run id: %q, at most %d bytes", c.RunID, maxIDPrefix)
	check(c.Transport == Stream || c.Transport == Batch, "transport: %q, want stream or batch", c.Transport)
	check(c.BatchSize >= 1 && c.BatchSize <= maxUpdateBatch, "batch size: %d, want 1..%d", c.BatchSize, maxUpdateBatch)
	check(c.DemandPerMinute >= 0 && !math.IsInf(c.DemandPerMinute, 0), "demand: %v per minute, want >= 0", c.DemandPerMinute)
	check(c.StartHour >= 0 && c.StartHour < 24, "start hour: %v, want [0, 24)", c.StartHour)
	check(c.MinTripM >= 0 && c.MinTripM < 1e6, "min trip: %v m, want [0, 1000 km)", c.MinTripM)
	check(c.AcceptProbability >= 0 && c.AcceptProbability <= 1, "accept probability: %v, want [0, 1]", c.AcceptProbability)
	check(c.ThinkMin >= 0 && c.ThinkMax >= c.ThinkMin, "think time: %v..%v, want 0 <= min <= max", c.ThinkMin, c.ThinkMax)
	check(c.PatienceMin > 0 && c.PatienceMax >= c.PatienceMin, "patience: %v..%v, want 0 < min <= max", c.PatienceMin, c.PatienceMax)
	check(c.OnShift >= 0 && c.OnShift <= 1, "on shift: %v, want [0, 1]", c.OnShift)
	check(c.ShiftMean > 0 && c.BreakMean > 0, "shift and break means must be positive")
	check(c.Workers >= 1 && c.Workers <= maxWorkers, "workers: %d, want 1..%d", c.Workers, maxWorkers)
	check(c.MaxWaitingRiders >= 1 && c.MaxWaitingRiders <= 1_000_000, "max waiting riders: %d, want 1..1000000", c.MaxWaitingRiders)
	check(c.StreamsPerConn >= 1 && c.StreamsPerConn <= 10000, "streams per connection: %d, want 1..10000", c.StreamsPerConn)
	check(c.ConnectConcurrency >= 1 && c.ConnectConcurrency <= 1024, "connect concurrency: %d, want 1..1024", c.ConnectConcurrency)
	check(c.SampleEvery >= 100*time.Millisecond, "sample interval: %v, want at least 100ms", c.SampleEvery)
	check(c.WindDown >= time.Second, "wind-down: %v, want at least 1s", c.WindDown)
	check(c.MaxTrips >= 1, "max trips: %d, want at least 1", c.MaxTrips)
	check(c.Warmup >= 0 && c.Warmup <= MaxDuration, "warm-up: %v, want 0..%v", c.Warmup, MaxDuration)
	if c.Zones {
		err := validate.Name(c.ZoneSet)
		check(err == nil && len(c.ZoneSet) <= maxZoneSet, "zone set: %q, want 1..%d bytes of letters, digits and -_.:/@", c.ZoneSet, maxZoneSet)
	}
	if err := c.Profile.Validate(); err != nil {
		errs = append(errs, err)
	}
	if c.Stadium != nil {
		if err := c.Stadium.validate(); err != nil {
			errs = append(errs, err)
		}
	}
	check(c.LoadQueryWeight >= 0 && c.LoadQueryWeight <= 1e6, "load query weight: %v, want within [0, 1e6]", c.LoadQueryWeight)
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("simulator config: %w", err)
	}
	return nil
}

// demandPerMinute is the configured demand, or the fleet-sized default.
func (c *Config) demandPerMinute() float64 {
	if c.DemandPerMinute > 0 {
		return c.DemandPerMinute
	}
	return 0.05 * float64(c.Drivers)
}

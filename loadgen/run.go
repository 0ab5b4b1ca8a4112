package loadgen

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"runtime/pprof"
	"sync"
	"sync/atomic"
	"time"
)

// callTimeout bounds one call of the workload, so a stuck target cannot
// hold a phase past its duration by more than this.
const callTimeout = 10 * time.Second

// The area of the distributions.
const (
	minLat, maxLat = 40.55, 40.95
	minLng, maxLng = -74.10, -73.70
	midtownLat     = 40.7549
	midtownLng     = -73.9840
	hotspotRadiusM = 3000
	metersPerDeg   = 111_320
)

// fleet is the client's view of the simulated drivers.
type fleet struct {
	ids []string
	pos []point
}

type point struct{ lat, lng float64 }

// sample draws one position of the distribution.
func sample(rng *rand.Rand, d Distribution) point {
	if d == Hotspot && rng.IntN(2) == 0 {
		r := hotspotRadiusM * math.Sqrt(rng.Float64())
		theta := 2 * math.Pi * rng.Float64()
		lat := midtownLat + r*math.Cos(theta)/metersPerDeg
		lng := midtownLng + r*math.Sin(theta)/(metersPerDeg*math.Cos(midtownLat*math.Pi/180))
		return point{lat, lng}
	}
	return point{minLat + (maxLat-minLat)*rng.Float64(), minLng + (maxLng-minLng)*rng.Float64()}
}

// Run loads cfg.Drivers drivers into t and measures every phase in turn:
// load, ingest-unary, ingest-stream, then nearby-C for each C of
// cfg.Concurrency. It stops early, returning the phases done so far and
// ctx's error, when ctx ends.
func Run(ctx context.Context, cfg Config, t Target) (Report, error) {
	rep := Report{Target: t.Name(), Drivers: cfg.Drivers, Dist: cfg.Dist, Seed: cfg.Seed, Batch: cfg.Batch,
		DurationS: cfg.Duration.Seconds(), ProcessMeasured: cfg.MeasureProcess || cfg.ServerPID != 0, ServerPID: cfg.ServerPID}
	if err := cfg.Validate(); err != nil {
		return rep, fmt.Errorf("load generator config: %w", err)
	}
	rng := rand.New(rand.NewPCG(cfg.Seed, 0x9e3779b97f4a7c15))
	f := &fleet{ids: make([]string, cfg.Drivers), pos: make([]point, cfg.Drivers)}
	for i := range f.ids {
		f.ids[i] = fmt.Sprintf("bench-%07d", i)
		f.pos[i] = sample(rng, cfg.Dist)
	}
	r := &runner{cfg: cfg, t: t, f: f}
	type namedPhase struct {
		name string
		run  func(context.Context) PhaseResult
	}
	phases := []namedPhase{{"load", r.load}, {"ingest-unary", r.ingestUnary}, {"ingest-stream", r.ingestStream}}
	fl, floors := t.(Floorer)
	for _, c := range cfg.Concurrency {
		if floors {
			phases = append(phases, namedPhase{FloorPhase(c), func(ctx context.Context) PhaseResult { return r.floor(ctx, fl, c) }})
		}
		phases = append(phases, namedPhase{fmt.Sprintf("nearby-%d", c), func(ctx context.Context) PhaseResult { return r.nearby(ctx, c) }})
	}
	if _, ok := t.(Pipeliner); ok && !cfg.skips("nearby") {
		phases = append(phases, namedPhase{PipelinedPhase, func(ctx context.Context) PhaseResult { return r.nearbyPipelined(ctx, PipelinedPhase, 1) }})
	}
	if _, ok := t.(StreamPipeliner); ok && !cfg.skips("nearby") {
		for _, c := range cfg.Concurrency {
			if c > 1 {
				phases = append(phases, namedPhase{NearbyStreamPhase(c), func(ctx context.Context) PhaseResult { return r.nearbyPipelined(ctx, NearbyStreamPhase(c), c) }})
			}
		}
	}
	server := newProcMeter(cfg)
	for _, ph := range phases {
		if ph.name != "load" && cfg.skips(ph.name) {
			continue
		}
		var end func()
		if cfg.PhaseHook != nil {
			end = cfg.PhaseHook(ph.name)
		}
		meter := startPhase(cfg, server)
		res := ph.run(ctx)
		if end != nil {
			end()
		}
		meter.finish(&res)
		rep.Phases = append(rep.Phases, res)
		if err := ctx.Err(); err != nil {
			return rep, err
		}
	}
	return rep, nil
}

// runner runs the phases of one Run.
type runner struct {
	cfg Config
	t   Target
	f   *fleet
	// maxTs is the latest timestamp ingest-unary used, so the streams
	// start after it and none of their updates is stale.
	maxTs atomic.Int64
}

// noteTs raises maxTs to ts.
func (r *runner) noteTs(ts int64) {
	for {
		cur := r.maxTs.Load()
		if ts <= cur || r.maxTs.CompareAndSwap(cur, ts) {
			return
		}
	}
}

// over reports whether ctx is done or past its deadline. The deadline is
// checked too because a call may fail with DeadlineExceeded (the server saw
// the deadline first) before ctx's own timer has fired.
func over(ctx context.Context) bool {
	if ctx.Err() != nil {
		return true
	}
	d, ok := ctx.Deadline()
	return ok && !time.Now().Before(d)
}

// clientLabels mark the load generator's goroutines in CPU profiles
// (pprof -tagignore loadgen=client shows the server's share alone).
var clientLabels = pprof.Labels("loadgen", "client")

// worker is one client goroutine's tally; a phase merges them.
type worker struct {
	h                Histogram
	ops, calls, errs int64
	stale            int64
	firstErr         error
}

func (w *worker) fail(n int64, err error) {
	w.errs += n
	if w.firstErr == nil {
		w.firstErr = err
	}
}

// phase runs n workers until each returns and merges their tallies.
func phase(name string, n int, body func(w *worker, i int)) PhaseResult {
	ws := make([]worker, n)
	var wg sync.WaitGroup
	start := time.Now()
	for i := range ws {
		wg.Add(1)
		go func() {
			defer wg.Done()
			// The label tells the load generator's own CPU apart in a
			// profile of a process that also runs the cluster; the gRPC
			// client's goroutines started from here inherit it.
			pprof.Do(context.Background(), clientLabels, func(context.Context) { body(&ws[i], i) })
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)
	res := PhaseResult{Phase: name, Concurrency: n, ElapsedS: elapsed.Seconds()}
	var h Histogram
	for i := range ws {
		w := &ws[i]
		h.Merge(&w.h)
		res.Ops += w.ops
		res.Calls += w.calls
		res.Errors += w.errs
		res.Stale += w.stale
		if w.firstErr != nil && res.FirstError == "" {
			res.FirstError = w.firstErr.Error()
		}
	}
	if elapsed > 0 {
		res.OpsPerS = float64(res.Ops) / elapsed.Seconds()
	}
	ms := func(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
	res.P50Ms, res.P99Ms, res.P999Ms = ms(h.Quantile(0.50)), ms(h.Quantile(0.99)), ms(h.Quantile(0.999))
	return res
}

// update sends one batch and tallies it.
func (r *runner) update(ctx context.Context, w *worker, batch []Update) {
	cctx, cancel := context.WithTimeout(ctx, callTimeout)
	start := time.Now()
	rejected, err := r.t.Update(cctx, batch)
	d := time.Since(start)
	cancel()
	if err != nil && over(ctx) {
		return // the run was cancelled mid-call: not a target error
	}
	w.h.Record(d)
	w.calls++
	w.ops += int64(len(batch))
	switch {
	case err != nil && rejected > 0:
		w.fail(int64(rejected), err)
	case err != nil:
		w.fail(int64(len(batch)), err)
	}
}

// load reports every driver once, in batches pulled by the ingest workers;
// bounded by the fleet size and cfg.LoadTimeout.
func (r *runner) load(ctx context.Context) PhaseResult {
	ctx, cancel := context.WithTimeout(ctx, r.cfg.LoadTimeout)
	defer cancel()
	n := len(r.f.ids)
	batches := (n + r.cfg.Batch - 1) / r.cfg.Batch
	var next atomic.Int64
	ts := time.Now().UnixMilli()
	return phase("load", r.cfg.IngestConcurrency, func(w *worker, _ int) {
		buf := make([]Update, 0, r.cfg.Batch)
		for !over(ctx) {
			b := int(next.Add(1) - 1)
			if b >= batches {
				return
			}
			buf = buf[:0]
			for i := b * r.cfg.Batch; i < min((b+1)*r.cfg.Batch, n); i++ {
				buf = append(buf, Update{ID: r.f.ids[i], Lat: r.f.pos[i].lat, Lng: r.f.pos[i].lng, TimestampMs: ts})
			}
			r.update(ctx, w, buf)
		}
	})
}

// move is a random walk of about 50 m, kept inside the area.
func move(rng *rand.Rand, p point) point {
	return point{
		lat: math.Max(minLat, math.Min(maxLat, p.lat+(rng.Float64()-0.5)*0.0009)),
		lng: math.Max(minLng, math.Min(maxLng, p.lng+(rng.Float64()-0.5)*0.0012)),
	}
}

// ingestUnary re-reports the drivers with new positions and timestamps in
// batches for cfg.Duration. Worker i owns a slice of the fleet and sweeps
// it; every sweep's timestamp is later than the previous one, so no update
// is stale or a duplicate.
func (r *runner) ingestUnary(run context.Context) PhaseResult {
	ctx, cancel := context.WithTimeout(run, r.cfg.Duration)
	defer cancel()
	k := r.cfg.IngestConcurrency
	n := len(r.f.ids)
	return phase("ingest-unary", k, func(w *worker, wi int) {
		lo, hi := wi*n/k, (wi+1)*n/k
		if lo == hi {
			return
		}
		rng := rand.New(rand.NewPCG(r.cfg.Seed, uint64(wi)+1))
		buf := make([]Update, 0, r.cfg.Batch)
		var ts int64
		defer func() { r.noteTs(ts) }()
		i := lo
		for ops := 0; ops < MaxOpsPerWorker && (ops == 0 || !over(ctx)); ops += len(buf) {
			buf = buf[:0]
			if i == lo {
				ts = max(time.Now().UnixMilli(), ts+1)
			}
			for ; i < hi && len(buf) < r.cfg.Batch; i++ {
				p := move(rng, r.f.pos[i])
				r.f.pos[i] = p // worker wi alone owns [lo, hi)
				buf = append(buf, Update{ID: r.f.ids[i], Lat: p.lat, Lng: p.lng, TimestampMs: ts})
			}
			if i == hi {
				i = lo
			}
			r.update(run, w, buf)
		}
	})
}

// ingestStream opens one driver-app stream for each of the first
// cfg.StreamApps drivers; each sends its driver's positions as fast as the
// stream takes them for cfg.Duration. Latency is the time a Send took; the
// rejections the target reported count as errors.
func (r *runner) ingestStream(ctx context.Context) PhaseResult {
	apps := min(r.cfg.StreamApps, len(r.f.ids))
	sctx, cancel := context.WithCancel(ctx)
	defer cancel()
	streams := make([]Stream, apps)
	res := phase("ingest-stream", apps, func(w *worker, i int) {
		s, err := r.t.OpenStream(sctx, r.f.ids[i])
		if err != nil {
			w.fail(1, err)
			return
		}
		streams[i] = s
	})
	if res.Errors > 0 {
		for _, s := range streams {
			if s != nil {
				_, _, _ = s.Close()
			}
		}
		return res
	}
	deadline := time.Now().Add(r.cfg.Duration)
	res = phase("ingest-stream", apps, func(w *worker, i int) {
		s := streams[i]
		rng := rand.New(rand.NewPCG(r.cfg.Seed, uint64(i)+1<<32))
		p := r.f.pos[i]
		ts := r.maxTs.Load()
		for ops := 0; ops < MaxOpsPerWorker && !over(ctx); ops++ {
			now := time.Now()
			if now.After(deadline) {
				break
			}
			p = move(rng, p)
			ts = max(now.UnixMilli(), ts+1)
			err := s.Send(Update{ID: r.f.ids[i], Lat: p.lat, Lng: p.lng, TimestampMs: ts})
			w.h.Record(time.Since(now))
			w.calls++
			if err != nil {
				w.fail(1, err)
				break
			}
			w.ops++
		}
		rejected, stale, err := s.Close()
		w.stale += stale
		rejected -= stale
		switch {
		case err != nil && ctx.Err() == nil:
			w.fail(rejected, fmt.Errorf("stream of %s: %w", r.f.ids[i], err))
		case rejected > 0:
			w.fail(rejected, fmt.Errorf("stream of %s: %d updates rejected", r.f.ids[i], rejected))
		}
	})
	return res
}

// nearby runs c workers querying random positions of the distribution for
// cfg.Duration (and at least one query each).
func (r *runner) nearby(run context.Context, c int) PhaseResult {
	ctx, cancel := context.WithTimeout(run, r.cfg.Duration)
	defer cancel()
	return phase(fmt.Sprintf("nearby-%d", c), c, func(w *worker, wi int) {
		rng := rand.New(rand.NewPCG(r.cfg.Seed, uint64(wi)+2<<32))
		for ops := 0; ops < MaxOpsPerWorker && (ops == 0 || !over(ctx)); ops++ {
			p := sample(rng, r.cfg.Dist)
			// Calls run to their end under the run's context: the phase's
			// end only stops new ones, so no answer is cut short.
			cctx, ccancel := context.WithTimeout(run, callTimeout)
			start := time.Now()
			err := r.t.Nearby(cctx, p.lat, p.lng, r.cfg.RadiusM, r.cfg.Limit)
			d := time.Since(start)
			ccancel()
			if err != nil && over(run) {
				return // the run was cancelled mid-call: not a target error
			}
			w.h.Record(d)
			w.calls++
			w.ops++
			if err != nil {
				w.fail(1, err)
			}
		}
	})
}

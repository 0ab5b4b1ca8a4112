package loadgen

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"runtime/pprof"
	"sync"
	"sync/atomic"
	"time"

	geomatchv1 "github.com/geomatch/geomatch/proto/geomatch/v1"
)

// Bounds of a FenceConfig.
const (
	// MaxFences bounds the fences of a fenced run.
	MaxFences = 200_000
	// MaxFenceWriteRate bounds FenceConfig.WriteRate, in PutFence/s.
	MaxFenceWriteRate = 1_000_000
)

// FenceConfig describes the fence phases of RunFences. DefaultFenceConfig
// gives every field its default; Validate checks it.
type FenceConfig struct {
	// Fences is the number of fences put before the fenced phases,
	// 1..MaxFences; default 20,000.
	Fences int
	// Set is the fences' set, which the event subscription selects;
	// default "bench".
	Set string
	// Shapes is the fence mix; default DefaultFenceShapes(CityArea): half
	// polygons of 50..500 vertices and 0.3..2 km², half circles of
	// 100 m..2 km.
	Shapes FenceShapes
	// PutConcurrency is the number of PutFence workers of fence-put;
	// default 16 (a PutFence waits for every matcher to apply the fence,
	// so more calls in flight hide that wait).
	PutConcurrency int
	// PutTimeout bounds the fence-put phase; default 5 minutes.
	PutTimeout time.Duration
	// WriteRate is the PutFence/s the fence-writes phase aims at while
	// ingest-unary+fence-writes runs: a fence replaced by a new shape under
	// the same id; 0 puts as fast as the workers can. Default 5,000/s.
	WriteRate float64
	// WriteConcurrency is the number of PutFence workers of fence-writes;
	// default 16.
	WriteConcurrency int
	// Subscribe counts the events of the fenced phases with an
	// EventService.Subscribe stream on the fences' set; default true.
	Subscribe bool
}

// DefaultFenceConfig returns the documented defaults.
func DefaultFenceConfig() FenceConfig {
	return FenceConfig{Fences: 20_000, Set: "bench", Shapes: DefaultFenceShapes(CityArea),
		PutConcurrency: 16, PutTimeout: 5 * time.Minute, WriteRate: 5000, WriteConcurrency: 16, Subscribe: true}
}

// Validate reports every field out of its bounds.
func (fc FenceConfig) Validate() error {
	var errs []error
	if fc.Fences < 1 || fc.Fences > MaxFences {
		errs = append(errs, fmt.Errorf("fences: %d, want 1..%d", fc.Fences, MaxFences))
	}
	if fc.Set == "" || len(fc.Set) > 100 {
		errs = append(errs, fmt.Errorf("fence set: %q, want 1..100 bytes", fc.Set))
	}
	if err := fc.Shapes.Validate(); err != nil {
		errs = append(errs, fmt.Errorf("fence shapes: %w", err))
	}
	if fc.PutConcurrency < 1 || fc.PutConcurrency > MaxConcurrency {
		errs = append(errs, fmt.Errorf("fence put concurrency: %d, want 1..%d", fc.PutConcurrency, MaxConcurrency))
	}
	if fc.WriteConcurrency < 1 || fc.WriteConcurrency > MaxConcurrency {
		errs = append(errs, fmt.Errorf("fence write concurrency: %d, want 1..%d", fc.WriteConcurrency, MaxConcurrency))
	}
	if fc.PutTimeout <= 0 {
		errs = append(errs, fmt.Errorf("fence put timeout: %v, want > 0", fc.PutTimeout))
	}
	if fc.WriteRate < 0 || fc.WriteRate > MaxFenceWriteRate {
		errs = append(errs, fmt.Errorf("fence write rate: %v/s, want 0..%d", fc.WriteRate, MaxFenceWriteRate))
	}
	return errors.Join(errs...)
}

// fenceID names fence i of a fenced run.
func fenceID(i int) string { return fmt.Sprintf("bench-fence-%06d", i) }

// The phases of RunFences, in order (see doc.go).
const (
	phaseFencePut    = "fence-put"
	phaseUnaryFenced = "ingest-unary+fences"
	phaseStreamFence = "ingest-stream+fences"
	phaseUnaryWrites = "ingest-unary+fence-writes"
	phaseFenceWrites = "fence-writes"
)

// RunFences is Run with geofences: it loads the fleet and measures
// ingest-unary and ingest-stream without fences (the baseline), puts
// fc.Fences fences (fence-put), measures the same ingest phases again with
// them (ingest-unary+fences, ingest-stream+fences), then ingest-unary again
// while fence-writes replaces fences at fc.WriteRate
// (ingest-unary+fence-writes, fence-writes), then the nearby phases with
// the fences in place. A subscription on the fences' set counts the events
// of every fenced phase. The target must be a geomatch cluster with fences
// and events (geomatch dev has them in memory).
func RunFences(ctx context.Context, cfg Config, fc FenceConfig, t *GRPCTarget) (FenceReport, error) {
	rep := FenceReport{Report: Report{Target: t.Name(), Drivers: cfg.Drivers, Dist: cfg.Dist, Seed: cfg.Seed, Batch: cfg.Batch,
		DurationS: cfg.Duration.Seconds(), ProcessMeasured: cfg.MeasureProcess || cfg.ServerPID != 0, ServerPID: cfg.ServerPID}}
	rep.Fence = FenceSummary{Fences: fc.Fences, Set: fc.Set, Shapes: fc.Shapes, WriteRate: fc.WriteRate,
		PutConcurrency: fc.PutConcurrency, WriteConcurrency: fc.WriteConcurrency}
	if err := errors.Join(cfg.Validate(), fc.Validate()); err != nil {
		return rep, fmt.Errorf("load generator config: %w", err)
	}
	rng := rand.New(rand.NewPCG(cfg.Seed, 0x9e3779b97f4a7c15))
	f := &fleet{ids: make([]string, cfg.Drivers), pos: make([]point, cfg.Drivers)}
	for i := range f.ids {
		f.ids[i] = fmt.Sprintf("bench-%07d", i)
		f.pos[i] = sample(rng, cfg.Dist)
	}
	r := &fenceRunner{runner: &runner{cfg: cfg, t: t, f: f}, fc: fc,
		fences: geomatchv1.NewFenceServiceClient(t.conn), events: geomatchv1.NewEventServiceClient(t.conn)}

	type step struct {
		name   string
		skip   bool
		fenced bool // count the subscription's events
		run    func(context.Context) []PhaseResult
	}
	one := func(fn func(context.Context) PhaseResult) func(context.Context) []PhaseResult {
		return func(ctx context.Context) []PhaseResult { return []PhaseResult{fn(ctx)} }
	}
	steps := []step{
		{name: "load", run: one(r.load)},
		{name: "ingest-unary", skip: cfg.skips("ingest-unary"), run: one(func(ctx context.Context) PhaseResult { return r.ingestUnaryNamed(ctx, "ingest-unary", 1) })},
		{name: "ingest-stream", skip: cfg.skips("ingest-stream"), run: one(func(ctx context.Context) PhaseResult { return r.ingestStreamNamed(ctx, "ingest-stream", 1) })},
		{name: phaseFencePut, run: one(r.putFences)},
		{name: phaseUnaryFenced, skip: cfg.skips("ingest-unary"), fenced: true, run: one(func(ctx context.Context) PhaseResult { return r.ingestUnaryNamed(ctx, phaseUnaryFenced, 2) })},
		{name: phaseStreamFence, skip: cfg.skips("ingest-stream"), fenced: true, run: one(func(ctx context.Context) PhaseResult { return r.ingestStreamNamed(ctx, phaseStreamFence, 2) })},
		{name: phaseUnaryWrites, skip: cfg.skips("ingest-unary"), fenced: true, run: r.ingestWithFenceWrites},
	}
	for _, c := range cfg.Concurrency {
		name := fmt.Sprintf("nearby-%d", c)
		steps = append(steps, step{name: name, skip: cfg.skips(name), run: one(func(ctx context.Context) PhaseResult { return r.nearby(ctx, c) })})
	}

	server := newProcMeter(cfg)
	var sub *eventCounter
	defer func() {
		if sub != nil {
			sub.stop()
		}
	}()
	for _, st := range steps {
		if st.skip {
			continue
		}
		if st.fenced && sub == nil && fc.Subscribe {
			var err error
			if sub, err = r.subscribe(ctx); err != nil {
				return rep, err
			}
		}
		var end func()
		if cfg.PhaseHook != nil {
			end = cfg.PhaseHook(st.name)
		}
		meter := startPhase(cfg, server)
		ev0 := sub.count()
		res := st.run(ctx)
		if end != nil {
			end()
		}
		ev := sub.count() - ev0
		// The CPU of a step goes to its first row (the ingest of
		// ingest-unary+fence-writes, which ran the fence writes too).
		meter.finish(&res[0])
		if st.fenced && sub != nil {
			pe := PhaseEvents{Phase: st.name, Events: ev}
			if res[0].ElapsedS > 0 {
				pe.EventsPerS = float64(ev) / res[0].ElapsedS
			}
			rep.Fence.Events = append(rep.Fence.Events, pe)
		}
		rep.Phases = append(rep.Phases, res...)
		if err := ctx.Err(); err != nil {
			rep.Fence.derive(rep.Phases)
			return rep, err
		}
	}
	if sub != nil {
		if err := sub.stop(); err != nil {
			rep.Fence.SubscribeError = err.Error()
		}
		rep.Fence.EventsTotal = sub.count()
		sub = nil
	}
	rep.Fence.derive(rep.Phases)
	return rep, nil
}

// fenceRunner runs the phases of one RunFences.
type fenceRunner struct {
	*runner
	fc     FenceConfig
	fences geomatchv1.FenceServiceClient
	events geomatchv1.EventServiceClient
}

// ingestUnaryNamed is ingest-unary under another name: the same sweeps,
// except that timestamps start after every timestamp an earlier phase
// used (r.maxTs), so a phase after ingest-stream, whose timestamps may run
// ahead of the clock, sends no stale update. salt varies the walks of the
// workers between phases.
func (r *fenceRunner) ingestUnaryNamed(run context.Context, name string, salt uint64) PhaseResult {
	ctx, cancel := context.WithTimeout(run, r.cfg.Duration)
	defer cancel()
	k := r.cfg.IngestConcurrency
	n := len(r.f.ids)
	r.noteTs(time.Now().UnixMilli() - 1) // at least the load's timestamp
	floor := r.maxTs.Load()
	return phase(name, k, func(w *worker, wi int) {
		lo, hi := wi*n/k, (wi+1)*n/k
		if lo == hi {
			return
		}
		rng := rand.New(rand.NewPCG(r.cfg.Seed, uint64(wi)+1+salt<<40))
		buf := make([]Update, 0, r.cfg.Batch)
		ts := floor
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

// ingestStreamNamed is ingest-stream under another name, with timestamps
// after every earlier phase's (see ingestUnaryNamed); each stream notes
// its last timestamp and keeps its driver's last position.
func (r *fenceRunner) ingestStreamNamed(ctx context.Context, name string, salt uint64) PhaseResult {
	apps := min(r.cfg.StreamApps, len(r.f.ids))
	sctx, cancel := context.WithCancel(ctx)
	defer cancel()
	streams := make([]Stream, apps)
	res := phase(name, apps, func(w *worker, i int) {
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
	r.noteTs(time.Now().UnixMilli() - 1)
	floor := r.maxTs.Load()
	deadline := time.Now().Add(r.cfg.Duration)
	return phase(name, apps, func(w *worker, i int) {
		s := streams[i]
		rng := rand.New(rand.NewPCG(r.cfg.Seed, uint64(i)+1<<32+salt<<40))
		p := r.f.pos[i]
		ts := floor
		defer func() {
			r.f.pos[i] = p // stream i alone owns driver i during the phase
			r.noteTs(ts)
		}()
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
}

// putFence sends one PutFence and tallies it.
func (r *fenceRunner) putFence(ctx context.Context, w *worker, f *geomatchv1.Fence) {
	cctx, cancel := context.WithTimeout(ctx, callTimeout)
	start := time.Now()
	_, err := r.fences.PutFence(cctx, &geomatchv1.PutFenceRequest{Fence: f})
	d := time.Since(start)
	cancel()
	if err != nil && over(ctx) {
		return // the call's context ended mid-call: not a target error
	}
	w.h.Record(d)
	w.calls++
	w.ops++
	if err != nil {
		w.fail(1, fmt.Errorf("put fence %s: %w", f.GetFenceId(), err))
	}
}

// putFences puts fences 0..fc.Fences-1 with fc.PutConcurrency workers,
// bounded by the count and fc.PutTimeout. A fence is drawn just before its
// call (outside the measured latency).
func (r *fenceRunner) putFences(run context.Context) PhaseResult {
	ctx, cancel := context.WithTimeout(run, r.fc.PutTimeout)
	defer cancel()
	var next atomic.Int64
	return phase(phaseFencePut, r.fc.PutConcurrency, func(w *worker, _ int) {
		for !over(ctx) {
			i := int(next.Add(1) - 1)
			if i >= r.fc.Fences {
				return
			}
			r.putFence(ctx, w, GenFence(r.fc.Shapes, r.cfg.Seed, 0, i, fenceID(i), r.fc.Set))
		}
	})
}

// ingestWithFenceWrites runs ingest-unary+fence-writes and, beside it for
// the same duration, fence-writes: fc.WriteConcurrency workers replacing
// fences (the next id in turn, a new shape) at fc.WriteRate in all.
func (r *fenceRunner) ingestWithFenceWrites(run context.Context) []PhaseResult {
	var writes PhaseResult
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		ctx, cancel := context.WithTimeout(run, r.cfg.Duration)
		defer cancel()
		writes = r.writeFences(run, ctx)
	}()
	ingest := r.ingestUnaryNamed(run, phaseUnaryWrites, 3)
	wg.Wait()
	return []PhaseResult{ingest, writes}
}

// writeFences is the fence-writes phase under ctx (calls run to their end
// under run, the whole run's context; ctx's end only stops new ones). Call j is due at start +
// j/WriteRate; a worker behind schedule sends at once, so the achieved
// rate is what the target sustains up to WriteRate.
func (r *fenceRunner) writeFences(run, ctx context.Context) PhaseResult {
	var next atomic.Int64
	start := time.Now()
	return phase(phaseFenceWrites, r.fc.WriteConcurrency, func(w *worker, _ int) {
		for ops := 0; ops < MaxOpsPerWorker && (ops == 0 || !over(ctx)); ops++ {
			j := next.Add(1) - 1
			if r.fc.WriteRate > 0 {
				due := start.Add(time.Duration(float64(j) / r.fc.WriteRate * float64(time.Second)))
				if wait := time.Until(due); wait > 0 {
					t := time.NewTimer(wait)
					select {
					case <-t.C:
					case <-ctx.Done():
						t.Stop()
						return
					}
				}
			}
			i := int(j % int64(r.fc.Fences))
			variant := 1 + uint64(j/int64(r.fc.Fences))%255
			r.putFence(run, w, GenFence(r.fc.Shapes, r.cfg.Seed, variant, i, fenceID(i), r.fc.Set))
		}
	})
}

// eventCounter counts the events of one Subscribe stream. A nil
// *eventCounter counts nothing.
type eventCounter struct {
	n      atomic.Int64
	cancel context.CancelFunc
	done   chan struct{}
	err    error // set before done closes
}

// subscribe opens a Subscribe stream on the fences' set and counts its
// events until stop.
func (r *fenceRunner) subscribe(ctx context.Context) (*eventCounter, error) {
	sctx, cancel := context.WithCancel(ctx)
	st, err := r.events.Subscribe(sctx, &geomatchv1.SubscribeRequest{Sets: []string{r.fc.Set},
		Kinds: []geomatchv1.EventKind{geomatchv1.EventKind_EVENT_KIND_FENCE}})
	if err != nil {
		cancel()
		return nil, fmt.Errorf("subscribe to set %s: %w", r.fc.Set, err)
	}
	ec := &eventCounter{cancel: cancel, done: make(chan struct{})}
	go pprof.Do(sctx, clientLabels, func(context.Context) {
		defer close(ec.done)
		for {
			_, err := st.Recv()
			if err != nil {
				if sctx.Err() == nil && !errors.Is(err, io.EOF) {
					ec.err = fmt.Errorf("subscription to set %s: %w", r.fc.Set, err)
				}
				return
			}
			ec.n.Add(1)
		}
	})
	return ec, nil
}

func (ec *eventCounter) count() int64 {
	if ec == nil {
		return 0
	}
	return ec.n.Load()
}

// stop ends the subscription, waits for its goroutine and returns the
// error that ended it early, if any. It may be called more than once.
func (ec *eventCounter) stop() error {
	ec.cancel()
	<-ec.done
	return ec.err
}

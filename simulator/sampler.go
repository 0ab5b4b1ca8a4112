package simulator

import (
	"context"
	"sync"
	"sync/atomic"
	"time"

	"github.com/geomatch/geomatch/simulator/report"
)

// maxSeries bounds the samples of a run; long runs sample less often.
const maxSeries = 3600

// sampler takes the run's pulse every sample interval: the time series of
// the report, the drivers' time integrals for utilisation, and the
// progress callback.
type sampler struct {
	e         *engine
	every     time.Duration
	connected atomic.Int64

	mu        sync.Mutex
	t0        time.Time // zero while connecting
	stopped   bool
	series    []report.Sample
	prev      counters
	prevAt    time.Time
	prevSim   float64
	connStart time.Time
	// Driver-seconds (simulated) online, busy and with a rider aboard.
	onlineS, busyS, riderS, simS float64
}

func newSampler(e *engine) *sampler {
	every := e.cfg.SampleEvery
	if n := e.cfg.Duration / every; n > maxSeries {
		every = e.cfg.Duration / maxSeries
	}
	return &sampler{e: e, every: every, connStart: time.Now()}
}

// run samples until ctx is done.
func (s *sampler) run(ctx context.Context) {
	t := time.NewTicker(s.every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case now := <-t.C:
			s.tick(now)
		}
	}
}

// start begins the window at t0.
func (s *sampler) start(t0 time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.t0, s.prevAt, s.prev = t0, t0, s.e.m.counters()
}

// stopSeries takes the last sample of the window and stops the series.
func (s *sampler) stopSeries() {
	s.tick(time.Now())
	s.mu.Lock()
	s.stopped = true
	s.mu.Unlock()
}

func (s *sampler) tick(now time.Time) {
	m := s.e.m
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.stopped {
		if s.e.cfg.OnSample != nil {
			s.e.cfg.OnSample(Progress{Phase: "winding down", Elapsed: now.Sub(s.t0), Duration: s.e.cfg.Duration, Drivers: s.e.cfg.Drivers,
				Online: m.online.Load(), Busy: m.busy.Load(), Waiting: m.waiting.Load(), Requests: m.requests.Load(), Matched: m.matched.Load(), P99Ms: s.p99s()})
		}
		return
	}
	if s.t0.IsZero() {
		if s.e.cfg.OnSample != nil {
			s.e.cfg.OnSample(Progress{Phase: "connecting", Elapsed: now.Sub(s.connStart), Duration: s.e.cfg.Duration,
				Connected: int(s.connected.Load()), Drivers: s.e.cfg.Drivers})
		}
		return
	}
	dt := now.Sub(s.prevAt).Seconds()
	if dt <= 0 {
		return
	}
	sim := s.e.clock.sim(now)
	dsim := sim - s.prevSim
	online, busy, rider := m.online.Load(), m.busy.Load(), m.withRider.Load()
	s.onlineS += float64(online) * dsim
	s.busyS += float64(busy) * dsim
	s.riderS += float64(rider) * dsim
	s.simS += dsim
	c := m.counters()
	smp := report.Sample{
		T: now.Sub(s.t0).Seconds(), SimS: sim, Online: online, Busy: busy, Offered: m.offered.Load(), Waiting: m.waiting.Load(),
		UpdatesOfferedPerS: float64(c.offered-s.prev.offered) / dt,
		UpdatesSentPerS:    float64(c.sent-s.prev.sent) / dt,
		RejectedPerS:       float64(c.rejected-s.prev.rejected) / dt,
		RequestsPerS:       float64(c.requests-s.prev.requests) / dt,
		MatchesPerS:        float64(c.matched-s.prev.matched) / dt,
		P99Ms:              map[string]float64{},
	}
	for name, l := range m.lat {
		if p := l.takeWindow(); p >= 0 {
			smp.P99Ms[name] = p
		}
	}
	if len(s.series) < maxSeries+1 {
		s.series = append(s.series, smp)
	}
	s.prev, s.prevAt, s.prevSim = c, now, sim
	if s.e.cfg.OnSample != nil {
		s.e.cfg.OnSample(Progress{Phase: "running", Elapsed: now.Sub(s.t0), Duration: s.e.cfg.Duration, Drivers: s.e.cfg.Drivers,
			Online: online, Busy: busy, Waiting: smp.Waiting, UpdatesPerS: smp.UpdatesSentPerS, OfferedPerS: smp.UpdatesOfferedPerS,
			Requests: c.requests, Matched: c.matched, P99Ms: s.p99s()})
	}
}

// p99s are the run's p99 latencies so far, per method.
func (s *sampler) p99s() map[string]float64 {
	out := map[string]float64{}
	for name, l := range s.e.m.lat {
		if p := l.p99(); p > 0 {
			out[name] = p
		}
	}
	return out
}

// results returns the series and the driver-time integrals.
func (s *sampler) results() (series []report.Sample, onlineS, busyS, riderS, simS float64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.series, s.onlineS, s.busyS, s.riderS, s.simS
}

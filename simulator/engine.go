package simulator

import (
	"context"
	"fmt"
	"log/slog"
	"math"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/geomatch/geomatch/client"
	"github.com/geomatch/geomatch/loadgen"
	geomatchv1 "github.com/geomatch/geomatch/proto/geomatch/v1"
	"github.com/geomatch/geomatch/simulator/city"
	"github.com/geomatch/geomatch/simulator/demand"
	"github.com/geomatch/geomatch/simulator/report"
)

// clock maps wall time to simulated seconds since the window started.
type clock struct {
	t0      time.Time
	speedup float64
}

func (c clock) sim(t time.Time) float64 { return t.Sub(c.t0).Seconds() * c.speedup }

func (c clock) wall(sim float64) time.Time {
	return c.t0.Add(time.Duration(math.Round(sim / c.speedup * float64(time.Second))))
}

// engine is one run.
type engine struct {
	cfg    Config
	g      *city.Graph
	demand demand.Model
	runID  string
	log    *slog.Logger
	clock  clock
	m      *metrics
	ledger *ledger

	conns         []*client.Conn
	driverClients []geomatchv1.DriverServiceClient
	updates       geomatchv1.DriverServiceClient
	riders        geomatchv1.RiderServiceClient
	admin         geomatchv1.AdminServiceClient

	drivers []*driver
	workers []*worker

	// runCtx lives as long as the workers; streamsCtx as long as the
	// streams.
	runCtx     context.Context
	streamsCtx context.Context
	recvWG     sync.WaitGroup
	closing    atomic.Bool
	sampler    *sampler

	// stadium is the moving hot spot scenario (nil without one) and
	// events its demand.
	stadium *stadiumRun
	events  []demand.Event

	zonesOnce sync.Once
	zones     *zoneLocator
	// carriedLegs are the warm start's trips, for the distance driven.
	carriedLegs []report.Leg

	warnMu   sync.Mutex
	warned   map[string]bool
	warnings []string
}

// warnOnce logs a warning of a kind the first time it happens and keeps it
// for the report.
func (e *engine) warnOnce(kind, msg string, args ...any) {
	e.warnMu.Lock()
	defer e.warnMu.Unlock()
	if e.warned[kind] {
		return
	}
	e.warned[kind] = true
	e.log.Warn(msg, args...)
	var b strings.Builder
	b.WriteString(msg)
	for i := 0; i+1 < len(args); i += 2 {
		fmt.Fprintf(&b, " %v=%v", args[i], args[i+1])
	}
	e.warnings = append(e.warnings, b.String())
}

// Run runs one simulation against cfg.Target and returns its result. It
// returns early, with an error, when ctx is cancelled or the target cannot
// be reached; everything it started has stopped when it returns.
func Run(ctx context.Context, cfg Config) (*report.Result, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if err := loadgen.CheckLoopback(cfg.Target); err != nil {
		return nil, fmt.Errorf("simulator: %w", err)
	}
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	e := &engine{cfg: cfg, g: cfg.City, log: cfg.Log, m: newMetrics(cfg.Seed), ledger: newLedger(cfg.MaxTrips), warned: map[string]bool{}}
	e.demand = demandModel(&e.cfg)
	if err := e.demand.Validate(); err != nil {
		return nil, fmt.Errorf("simulator: %w", err)
	}
	e.runID = cfg.RunID
	if e.runID == "" {
		e.runID = strconv.FormatInt(time.Now().UnixMilli(), 36)
	}
	if err := e.dialAll(); err != nil {
		return nil, err
	}
	defer e.closeConns()
	e.placeDrivers()
	st, err := newStadiumRun(e, e.shardRes(ctx))
	if err != nil {
		return nil, err
	}
	e.stadium, e.events = st, st.events(cfg.Duration, cfg.Speedup)
	if zl := e.zoneLocator(); zl != nil {
		e.ledger.locate = zl.locate
	}
	return e.run(ctx)
}

// zoneLocator is the locator of the city's zones (built once), or nil
// when the run has none.
func (e *engine) zoneLocator() *zoneLocator {
	e.zonesOnce.Do(func() {
		zs := city.Zones(e.g)
		if len(zs) > city.MaxZones {
			zs = zs[:city.MaxZones]
		}
		l, err := newZoneLocator(zs)
		if err != nil {
			e.warnOnce("zone-shapes", "no zone KPIs: a zone's shape did not parse", "err", err)
			return
		}
		e.zones = l
	})
	return e.zones
}

// streamConns is how many connections carry the driver streams: at most
// StreamsPerConn streams each and, past one, a multiple of the workers, so
// each worker sends on connections of its own and its sends of one tick
// leave in few writes.
func (e *engine) streamConns() int {
	n := (e.cfg.Drivers + e.cfg.StreamsPerConn - 1) / e.cfg.StreamsPerConn
	if w := e.cfg.Workers; n > 1 {
		n = (n + w - 1) / w * w
	}
	return n
}

// connOf is the stream connection of driver i: one of its worker's.
func (e *engine) connOf(i int) int {
	n, w := len(e.driverClients), e.cfg.Workers
	if n < w {
		return 0
	}
	return i%w + w*((i/w)%(n/w))
}

// dialAll opens the stream connections and one for unary calls.
func (e *engine) dialAll() error {
	n := e.streamConns()
	for i := 0; i <= n; i++ {
		c, err := dial(e.cfg.Target, e.cfg.DialOptions)
		if err != nil {
			e.closeConns()
			return fmt.Errorf("simulator: %w", err)
		}
		e.conns = append(e.conns, c)
		if i < n {
			e.driverClients = append(e.driverClients, geomatchv1.NewDriverServiceClient(c))
		}
	}
	unary := e.conns[n]
	e.updates = geomatchv1.NewDriverServiceClient(unary)
	e.riders = geomatchv1.NewRiderServiceClient(unary)
	e.admin = geomatchv1.NewAdminServiceClient(unary)
	return nil
}

func (e *engine) closeConns() {
	for _, c := range e.conns {
		c.Close()
	}
	e.conns = nil
}

// driverClasses is the fleet's mix of vehicles.
var driverClasses = []struct {
	class string
	share float64
}{{"standard", 0.80}, {"xl", 0.15}, {"premium", 0.05}}

// placeDrivers draws every driver from its own random source: class,
// starting place, speed, shift; and deals them to the workers.
func (e *engine) placeDrivers() {
	for i := 0; i < e.cfg.Workers; i++ {
		e.workers = append(e.workers, newWorker(e, e.updates))
	}
	e.drivers = make([]*driver, e.cfg.Drivers)
	for i := range e.drivers {
		rng := entityRNG(e.cfg.Seed, streamDriver, i)
		d := &driver{idx: i, id: fmt.Sprintf("%s-d%06d", e.cfg.DriverPrefix, i), rng: rng}
		k := rng.Float64()
		for _, c := range driverClasses {
			d.class = c.class
			if k < c.share {
				break
			}
			k -= c.share
		}
		n := city.NodeID(rng.IntN(len(e.g.Nodes)))
		out := e.g.Nodes[n].Out
		edge := out[rng.IntN(len(out))]
		d.mv = city.NewMover(e.g, city.Loc{Edge: edge, Offset: rng.Float64() * e.g.Edges[edge].LengthM})
		d.mv.Factor = uniform(rng, 0.85, 1.15)
		d.online = rng.Float64() < e.cfg.OnShift
		mean := e.cfg.BreakMean
		if d.online {
			mean = e.cfg.ShiftMean
		}
		d.shiftChange = rng.ExpFloat64() * mean.Seconds()
		w := e.workers[i%len(e.workers)]
		d.w = w
		w.drivers = append(w.drivers, d)
		e.drivers[i] = d
	}
}

// run is the run's life: connect, measure, wind down, tally.
func (e *engine) run(ctx context.Context) (*report.Result, error) {
	res := &report.Result{Version: report.SchemaVersion, Latency: map[string]report.Latency{}}
	res.Run.StartedAt = time.Now().UTC().Format(time.RFC3339)
	streamsCtx, endStreams := context.WithCancel(context.WithoutCancel(ctx))
	e.streamsCtx = streamsCtx
	defer func() {
		endStreams()
		e.recvWG.Wait()
	}()

	// Sampler: progress while connecting and the series while running.
	sampler := newSampler(e)
	e.sampler = sampler
	samplerCtx, stopSampler := context.WithCancel(context.Background())
	samplerDone := make(chan struct{})
	go func() {
		defer close(samplerDone)
		sampler.run(samplerCtx)
	}()
	defer func() {
		stopSampler()
		<-samplerDone
	}()

	// The zones' fences come first, so the drivers' first reports find
	// them.
	zones := e.openZones(ctx)
	defer zones.close()

	connectStart := time.Now()
	if err := e.connectDrivers(ctx, &sampler.connected); err != nil {
		return nil, fmt.Errorf("simulator: %w", err)
	}
	res.Run.ConnectS = time.Since(connectStart).Seconds()

	// The window starts: workers run, drivers report at their phases.
	e.clock = clock{t0: time.Now(), speedup: e.cfg.Speedup}
	e.stadium.start(e.clock.t0, e.cfg.Duration)
	nodeLoad := newNodeLoadSampler(e)
	nodeLoadCtx, stopNodeLoad := context.WithCancel(context.WithoutCancel(ctx))
	nodeLoadDone := make(chan struct{})
	go func() { defer close(nodeLoadDone); nodeLoad.run(nodeLoadCtx, e.clock.t0) }()
	defer func() { stopNodeLoad(); <-nodeLoadDone }()
	e.ledger.now = func() (time.Time, float64) { now := time.Now(); return now, e.clock.sim(now) }
	e.m.fromSim, res.Run.WarmupNote = warmupFor(e.cfg.Warmup, e.cfg.Duration.Seconds()*e.cfg.Speedup)
	runCtx, stopWorkers := context.WithCancel(context.WithoutCancel(ctx))
	e.runCtx = runCtx
	var workersWG sync.WaitGroup
	online := int64(0)
	for _, d := range e.drivers {
		if !d.connected {
			continue
		}
		res.Drivers.Connected++
		if d.online {
			online++
		}
		phase := time.Duration(d.rng.Float64() * float64(e.cfg.UpdateInterval))
		d.w.schedule(timer{at: e.clock.t0.Add(phase), d: d, kind: tReport})
	}
	e.m.online.Store(online)
	res.Run.CarriedTrips = e.warmStart()
	for _, w := range e.workers {
		workersWG.Add(1)
		go func() {
			defer workersWG.Done()
			w.run(runCtx)
		}()
	}
	var stopOnce sync.Once
	stopAllWorkers := func() {
		stopOnce.Do(func() {
			stopWorkers()
			workersWG.Wait() // and their UpdateLocations calls
		})
	}
	defer stopAllWorkers()
	sampler.start(e.clock.t0)
	zones.startSampling(e.clock.t0, sampler.every)

	// Riders arrive once every driver has reported once.
	riderCtx, stopRiders := context.WithCancel(runCtx)
	var ridersWG sync.WaitGroup
	ridersWG.Add(1)
	go func() {
		defer ridersWG.Done()
		e.runArrivals(riderCtx, &ridersWG, e.clock.sim(e.clock.t0.Add(e.cfg.UpdateInterval)))
	}()
	window := time.NewTimer(e.cfg.Duration)
	interrupted := false
	select {
	case <-window.C:
	case <-ctx.Done():
		window.Stop()
		interrupted = true
	}
	end := time.Now()
	e.m.windowClosed.Store(true)
	counts := e.m.counters() // the window's updates
	res.Run.WallS = end.Sub(e.clock.t0).Seconds()
	res.Run.SimS = e.clock.sim(end)
	sampler.stopSeries()
	stopNodeLoad()
	<-nodeLoadDone
	res.NodeLoad = nodeLoad.result()
	zones.stopSampling()

	// Wind down: no new riders, no more reports (the drivers stay on the
	// map until the service's TTL, long enough to list their shards).
	windStart := time.Now()
	stopRiders()
	ridersWG.Wait()
	for _, w := range e.workers {
		w.ctrl <- ctrlDrain
	}
	res.Shards = e.listShards(ctx)
	e.windDown()
	stopAllWorkers()
	res.Run.WindDownS = time.Since(windStart).Seconds()
	res.Zones = zones.finish()

	e.fill(res, counts)
	e.measure(res, e.zoneLocator())
	if interrupted {
		return res, fmt.Errorf("simulator: interrupted after %v: %w", time.Duration(res.Run.WallS*float64(time.Second)).Round(time.Millisecond), ctx.Err())
	}
	return res, nil
}

// windDown ends the run's trips and streams, bounded by Config.WindDown;
// the workers are draining already.
func (e *engine) windDown() {
	deadline := time.Now().Add(e.cfg.WindDown)
	ctx, cancel := context.WithDeadline(context.Background(), deadline)
	defer cancel()
	m := e.m
	// Learn the trips of requests that never answered (asking again with
	// the same request id returns the trip the service created, if any).
	e.resolvePending(ctx)
	// Cancel what is not picked up; drivers with riders aboard finish.
	e.forEachOpen(ctx, func(ctx context.Context, o openTrip) {
		if o.state == geomatchv1.TripState_TRIP_STATE_PICKED_UP {
			return
		}
		t, err := e.cancelTrip(ctx, o.id, o.riderID, "simulation ended")
		if err == nil {
			e.ledger.ended(o.id, endCancelledAtEnd)
			e.ledger.observe(t)
		}
	})
	// Wait for the drivers to be free.
	for time.Now().Before(deadline) && (m.busy.Load() > 0 || m.offered.Load() > 0) {
		if !sleep(ctx, 50*time.Millisecond) {
			break
		}
	}
	// Close the streams' send sides; the service answers what is pending
	// (rejections) and ends each stream.
	e.closing.Store(true)
	for _, w := range e.workers {
		w.ctrl <- ctrlCloseSend
	}
	done := make(chan struct{})
	go func() {
		e.recvWG.Wait()
		close(done)
	}()
	select {
	case <-done:
	case <-ctx.Done():
		e.warnOnce("close", "driver streams did not end in time; closing them")
	}
	// Read back the final state of every trip still open.
	e.forEachOpen(context.Background(), func(ctx context.Context, o openTrip) {
		if t, err := e.getTrip(ctx, o.id); err == nil {
			e.ledger.observe(t)
		}
	})
}

// resolvePending asks again for every request that did not answer, so the
// run knows every trip the service created for it.
func (e *engine) resolvePending(ctx context.Context) {
	inParallel(ctx, e.ledger.unanswered(), func(ctx context.Context, req *geomatchv1.RequestRideRequest) {
		cctx, cancel := context.WithTimeout(ctx, callTimeout)
		defer cancel()
		req.WaitMs = 0
		start := time.Now()
		t, err := e.riders.RequestRide(cctx, req)
		e.m.lat[mRequestRide].record(time.Since(start), err)
		if err != nil {
			e.warnOnce("pending", "could not learn the trip of an unanswered request", "request", req.GetRequestId(), "err", err)
			return
		}
		e.ledger.add(t, req.GetRequestId(), req.GetRiderId(), report.Pickup{Lat: req.GetPickup().GetLat(), Lng: req.GetPickup().GetLng()})
	})
}

// forEachOpen runs fn on every open trip, 32 at a time.
func (e *engine) forEachOpen(ctx context.Context, fn func(context.Context, openTrip)) {
	inParallel(ctx, e.ledger.open(), fn)
}

// inParallel runs fn on every item, at most 32 at once, and returns when
// all have returned; once ctx is done it starts no more.
func inParallel[T any](ctx context.Context, items []T, fn func(context.Context, T)) {
	sem := make(chan struct{}, 32)
	var wg sync.WaitGroup
	for _, it := range items {
		if ctx.Err() != nil {
			break
		}
		sem <- struct{}{}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			fn(ctx, it)
		}()
	}
	wg.Wait()
}

// listShards reads the shard owners for the map.
func (e *engine) listShards(ctx context.Context) []report.Shard {
	cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), callTimeout)
	defer cancel()
	resp, err := e.admin.ListShards(cctx, &geomatchv1.ListShardsRequest{Limit: 100000})
	if err != nil {
		e.warnOnce("shards", "could not list the shards for the map", "err", err)
		return nil
	}
	out := make([]report.Shard, 0, len(resp.GetShards()))
	for _, s := range resp.GetShards() {
		out = append(out, report.Shard{Cell: s.GetCell(), Owner: s.GetOwner(), Drivers: s.GetDrivers(), Lat: s.GetCenter().GetLat(), Lng: s.GetCenter().GetLng()})
	}
	slices.SortFunc(out, func(a, b report.Shard) int {
		if a.Cell < b.Cell {
			return -1
		}
		if a.Cell > b.Cell {
			return 1
		}
		return 0
	})
	return out
}

// fill writes the tallies into res.
func (e *engine) fill(res *report.Result, window counters) {
	cfg := &e.cfg
	res.Scenario = report.Scenario{
		City: e.g.Name, Drivers: cfg.Drivers, DurationS: cfg.Duration.Seconds(), UpdateIntervalS: cfg.UpdateInterval.Seconds(),
		Speedup: cfg.Speedup, Seed: cfg.Seed, RunID: e.runID, Transport: string(cfg.Transport), MatchMode: cfg.MatchMode,
		Target: cfg.Target, DemandPerMinute: cfg.demandPerMinute(), StartHour: cfg.StartHour, AcceptProbability: cfg.AcceptProbability,
		ThinkMinS: cfg.ThinkMin.Seconds(), ThinkMaxS: cfg.ThinkMax.Seconds(), WarmStart: cfg.WarmStart, WarmupS: cfg.Warmup.Seconds(),
	}
	m := e.m
	res.Trips = e.ledger.tally()
	res.Trips.RequestErrors = m.requestErrors.Load()
	res.Trips.DroppedArrivals = m.droppedArrivals.Load()
	res.TimeToMatchMs = m.timeToMatch.dist()
	res.PickupDistanceM = m.pickupDist.dist()
	res.PickupRouteM = m.pickupRoute.dist()
	res.PickupETAS = m.pickupETA.dist()
	res.PickupTimeS = m.pickupTime.dist()
	res.TripTimeS = m.tripTime.dist()
	res.Pickups = e.ledger.pickups(5000)

	d := &res.Drivers
	d.Fleet = cfg.Drivers
	d.Offers, d.Accepted, d.Declined = m.offers.Load(), m.accepts.Load(), m.declines.Load()
	d.AcceptsClosed, d.StreamErrors = m.acceptsClosed.Load(), m.streamErrors.Load()
	var onlineS, busyS, riderS, simS float64
	res.Series, onlineS, busyS, riderS, simS = e.sampler.results()
	if simS > 0 {
		d.OnlineAvg = onlineS / simS
	}
	if onlineS > 0 {
		d.Utilisation = busyS / onlineS
		d.WithRider = riderS / onlineS
	}

	u := &res.Updates
	u.Offered, u.Sent, u.Rejected = m.updOffered.Load(), m.updSent.Load(), m.updRejected.Load()
	u.Failed, u.Skipped, u.Late = m.updFailed.Load(), m.updSkipped.Load(), m.updLate.Load()
	if cfg.Transport == Batch {
		u.Accepted = m.updAccepted.Load()
	} else {
		u.Accepted = u.Sent - u.Rejected
	}
	u.Loss = u.Offered - u.Accepted
	for r := range m.rejectedBy {
		if n := m.rejectedBy[r].Load(); n > 0 {
			if u.ByReason == nil {
				u.ByReason = map[string]int64{}
			}
			u.ByReason[geomatchv1.RejectReason(r).String()] = n
		}
	}
	if res.Run.WallS > 0 {
		u.OfferedPerS = float64(window.offered) / res.Run.WallS
		accepted := window.sent - window.rejected
		if cfg.Transport == Batch {
			accepted = u.Accepted
		}
		u.AchievedPerS = float64(accepted) / res.Run.WallS
	}
	for name, l := range m.lat {
		if s := l.summary(); s.Count > 0 || s.Errors > 0 {
			res.Latency[name] = s
		}
	}
	e.warnMu.Lock()
	res.Run.Warnings = append(res.Run.Warnings, e.warnings...)
	e.warnMu.Unlock()
}

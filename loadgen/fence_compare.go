package loadgen

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/geomatch/geomatch/fence"
	"github.com/geomatch/geomatch/fence/fencev1"
	"github.com/geomatch/geomatch/internal/geo"
	geomatchv1 "github.com/geomatch/geomatch/proto/geomatch/v1"
)

// Tile38CircleMode is the Tile38 command a circle fence becomes.
type Tile38CircleMode string

// The circle modes.
const (
	// Tile38CircleWithin sends SETCHAN … WITHIN key FENCE … CIRCLE lat lon
	// m: for a point Tile38 (tidwall/geojson Circle.Contains) tests the
	// haversine distance, exactly, with an Earth radius of 6,371,000 m.
	Tile38CircleWithin Tile38CircleMode = "within"
	// Tile38CircleNearby sends SETCHAN … NEARBY key FENCE … POINT lat lon
	// m: Tile38 intersects the point with the circle's 64-step polygon
	// (Circle.Intersects has no point case for the SimplePoint a SET …
	// POINT stores), so points near the edge may differ.
	Tile38CircleNearby Tile38CircleMode = "nearby"
)

// Bounds of a CompareConfig.
const (
	// MaxCompareFences bounds the fences of a comparison (Tile38 holds one
	// channel per fence).
	MaxCompareFences = 10_000
	// compareSettleQuiet is how long no event may arrive before a side's
	// events count as complete after its replay.
	compareSettleQuiet = 2 * time.Second
)

// CompareConfig describes one CompareFences run. DefaultCompareConfig gives
// every field its default; Validate checks it.
type CompareConfig struct {
	// Seed draws the fences and the trace; default 1.
	Seed uint64
	// Drivers and Steps size the trace; defaults 10,000 and 100 (1M
	// updates), at most MaxTracePoints together.
	Drivers, Steps int
	// StepM is the largest move of a step along each axis; default 150 m,
	// so a driver crosses a fence's edge every few dozen steps.
	StepM float64
	// Circles and Polygons are the fence counts; defaults 200 and 200.
	Circles, Polygons int
	// Shapes draws the fences and Shapes.Area the trace; default
	// DefaultFenceShapes(MidtownArea) with a hole in every 4th polygon.
	Shapes FenceShapes
	// Batch is the updates per UpdateLocations call or Tile38 pipeline;
	// Concurrency the calls in flight within a step; defaults 1,000 and 8.
	Batch, Concurrency int
	// Tile38Addr, when set, is a Tile38 server on loopback to replay the
	// trace against too; Tile38PID its process, for its CPU.
	Tile38Addr string
	Tile38PID  int
	// Tile38Circles is how circles are sent to Tile38; default within.
	Tile38Circles Tile38CircleMode
	// ServerPID is the geomatch server's process, for its CPU (0: not
	// measured).
	ServerPID int
	// Timeout bounds the whole comparison; default 15 minutes.
	Timeout time.Duration
	// SettleTimeout bounds the wait for a side's last events after its
	// replay; default 60 s.
	SettleTimeout time.Duration
}

// DefaultCompareConfig returns the documented defaults.
func DefaultCompareConfig() CompareConfig {
	sh := DefaultFenceShapes(MidtownArea)
	sh.HoleEvery = 4
	return CompareConfig{Seed: 1, Drivers: 10_000, Steps: 100, StepM: 150, Circles: 200, Polygons: 200, Shapes: sh,
		Batch: 1000, Concurrency: 8, Tile38Circles: Tile38CircleWithin, Timeout: 15 * time.Minute, SettleTimeout: time.Minute}
}

// Validate reports every field out of its bounds.
func (c CompareConfig) Validate() error {
	var errs []error
	if c.Drivers < 1 || c.Steps < 1 || c.Drivers*c.Steps > MaxTracePoints {
		errs = append(errs, fmt.Errorf("trace: %d drivers × %d steps, want both >= 1 and at most %d updates", c.Drivers, c.Steps, MaxTracePoints))
	}
	if !(c.StepM > 0 && c.StepM < 10_000) {
		errs = append(errs, fmt.Errorf("step: %v m, want (0, 10 km)", c.StepM))
	}
	if c.Circles < 0 || c.Polygons < 0 || c.Circles+c.Polygons < 1 || c.Circles+c.Polygons > MaxCompareFences {
		errs = append(errs, fmt.Errorf("fences: %d circles + %d polygons, want 1..%d in all", c.Circles, c.Polygons, MaxCompareFences))
	}
	if err := c.Shapes.Validate(); err != nil {
		errs = append(errs, fmt.Errorf("shapes: %w", err))
	}
	if c.Batch < 1 || c.Batch > MaxBatch {
		errs = append(errs, fmt.Errorf("batch: %d, want 1..%d", c.Batch, MaxBatch))
	}
	if c.Concurrency < 1 || c.Concurrency > MaxConcurrency {
		errs = append(errs, fmt.Errorf("concurrency: %d, want 1..%d", c.Concurrency, MaxConcurrency))
	}
	if c.Tile38Circles != Tile38CircleWithin && c.Tile38Circles != Tile38CircleNearby {
		errs = append(errs, fmt.Errorf("tile38 circles: %q, want %s or %s", c.Tile38Circles, Tile38CircleWithin, Tile38CircleNearby))
	}
	if c.Timeout <= 0 || c.SettleTimeout <= 0 {
		errs = append(errs, fmt.Errorf("timeouts: %v and %v, want > 0", c.Timeout, c.SettleTimeout))
	}
	return errors.Join(errs...)
}

// fenceEvent is one enter or exit: driver d relative to fence f at step s.
type fenceEvent struct {
	step, driver, fence int32
	detect              fence.Transition
}

func compareEvents(a, b fenceEvent) int {
	return cmp.Or(cmp.Compare(a.step, b.step), cmp.Compare(a.driver, b.driver), cmp.Compare(a.fence, b.fence), cmp.Compare(a.detect, b.detect))
}

// cmpFence is one fence of a comparison: its message, its decoded shape
// (the oracle's) and what classifying a difference needs.
type cmpFence struct {
	pb     *geomatchv1.Fence
	f      *fence.Fence
	bound  fence.Rect
	circle *geomatchv1.Circle // nil for a polygon
	rings  [][][2]float64     // GeoJSON rings of a polygon
}

// CompareSide is one system's replay of the trace.
type CompareSide struct {
	Target string `json:"target"`
	// SetupS is the time the fences took to put (PutFence in parallel,
	// or SETCHAN one by one).
	SetupS float64 `json:"setup_s"`
	// Replay is the replay's figures: ops are updates, calls batches,
	// latency per batch, elapsed the replay's wall clock.
	Replay PhaseResult `json:"replay"`
	// ServerCPUSeconds is the server's CPU during the replay, when its
	// process was given.
	ServerCPUSeconds float64 `json:"server_cpu_s,omitempty"`
	// Enter, Exit and Other count the events received (Other: any other
	// detect, never expected). Unplaced counts events that could not be
	// put on a step of the trace, Duplicates events received twice.
	Enter      int64 `json:"enter"`
	Exit       int64 `json:"exit"`
	Other      int64 `json:"other,omitempty"`
	Unplaced   int64 `json:"unplaced,omitempty"`
	Duplicates int64 `json:"duplicates,omitempty"`
	// SettleS is how long the last events took to arrive after the
	// replay (until none came for 2 s, that wait included).
	SettleS float64 `json:"settle_s"`

	events []fenceEvent
}

// DiffExample is one event only one side reported.
type DiffExample struct {
	Only    string `json:"only"`
	Step    int32  `json:"step"`
	Driver  string `json:"driver"`
	Fence   string `json:"fence"`
	Detect  string `json:"detect"`
	Class   string `json:"class"`
	MarginM string `json:"margin_m"`
}

// CompareDiff is the difference between two sides' event sets.
type CompareDiff struct {
	A, B     string           `json:"-"`
	Name     string           `json:"name"`
	Same     int64            `json:"same"`
	OnlyA    int64            `json:"only_a"`
	OnlyB    int64            `json:"only_b"`
	Classes  map[string]int64 `json:"classes,omitempty"`
	Examples []DiffExample    `json:"examples,omitempty"`
}

// The classes of a difference (see classify).
const (
	classEarthRadius = "circle edge: Earth radius (Tile38 6,371,000 m, geomatch 6,371,008.8 m)"
	classCircle64    = "circle edge: Tile38's 64-step polygon"
	classBoundary    = "on a polygon's boundary (within 1 mm)"
	classUnexplained = "unexplained"
)

// CompareReport is the outcome of CompareFences.
type CompareReport struct {
	Seed          uint64           `json:"seed"`
	Drivers       int              `json:"drivers"`
	Steps         int              `json:"steps"`
	StepM         float64          `json:"step_m"`
	Circles       int              `json:"circles"`
	Polygons      int              `json:"polygons"`
	Holes         int              `json:"holes"`
	Shapes        FenceShapes      `json:"shapes"`
	Tile38Circles Tile38CircleMode `json:"tile38_circles"`
	// Oracle is package fence's brute-force evaluation of the trace
	// (fence.Fence.Eval on every update and fence).
	Oracle   CompareSide  `json:"oracle"`
	Geomatch *CompareSide `json:"geomatch,omitempty"`
	Tile38   *CompareSide `json:"tile38,omitempty"`
	// Diffs: geomatch vs oracle, Tile38 vs oracle, geomatch vs Tile38.
	Diffs []CompareDiff `json:"diffs"`
	// Ratio is geomatch's replay updates/s over Tile38's.
	Ratio float64 `json:"throughput_ratio,omitempty"`
}

// CompareFences replays one deterministic trace against geomatch (t) and,
// with cc.Tile38Addr, Tile38, and compares the enter/exit events of each
// with a brute-force oracle and with each other, step by step. The fences
// (cc.Circles circles, cc.Polygons polygons, with holes) are put on both
// with detect enter,exit; the trace's drivers move one step at a time (all
// of a step's updates acknowledged before the next step starts). Its ids
// (fences, set, drivers) carry a run id, so a geomatch server that ran
// other workloads is fine; its fences are deleted at the end.
func CompareFences(ctx context.Context, cc CompareConfig, t *GRPCTarget) (CompareReport, error) {
	rep := CompareReport{Seed: cc.Seed, Drivers: cc.Drivers, Steps: cc.Steps, StepM: cc.StepM, Circles: cc.Circles,
		Polygons: cc.Polygons, Shapes: cc.Shapes, Tile38Circles: cc.Tile38Circles}
	if err := cc.Validate(); err != nil {
		return rep, fmt.Errorf("fence comparison config: %w", err)
	}
	ctx, cancel := context.WithTimeout(ctx, cc.Timeout)
	defer cancel()
	run := strconv.FormatInt(time.Now().UnixNano()/1e6%(36*36*36*36*36), 36)
	prefix := Tile38ChannelPrefix + run + "-"
	fences, err := compareFences(cc, prefix)
	if err != nil {
		return rep, err
	}
	for _, f := range fences {
		if f.circle == nil && len(f.rings) > 1 {
			rep.Holes++
		}
	}
	tr, err := GenTrace(cc.Shapes.Area, cc.Seed, cc.Drivers, cc.Steps, cc.StepM, prefix+"d")
	if err != nil {
		return rep, err
	}
	rep.Oracle = oracle(tr, fences)

	gm, err := replayGeomatch(ctx, cc, t, tr, fences, prefix)
	rep.Geomatch = gm
	if err != nil {
		return rep, fmt.Errorf("geomatch replay: %w", err)
	}
	rep.Diffs = append(rep.Diffs, diffSides("geomatch vs oracle", "geomatch", "oracle", gm.events, rep.Oracle.events, tr, fences, cc.Tile38Circles))
	if cc.Tile38Addr != "" {
		t38, err := replayTile38(ctx, cc, tr, fences)
		rep.Tile38 = t38
		if err != nil {
			return rep, fmt.Errorf("tile38 replay: %w", err)
		}
		rep.Diffs = append(rep.Diffs,
			diffSides("tile38 vs oracle", "tile38", "oracle", t38.events, rep.Oracle.events, tr, fences, cc.Tile38Circles),
			diffSides("geomatch vs tile38", "geomatch", "tile38", gm.events, t38.events, tr, fences, cc.Tile38Circles))
		if t38.Replay.OpsPerS > 0 {
			rep.Ratio = gm.Replay.OpsPerS / t38.Replay.OpsPerS
		}
	}
	return rep, nil
}

// compareFences draws the comparison's fences and decodes them as a
// router would (fencev1.Decode).
func compareFences(cc CompareConfig, prefix string) ([]cmpFence, error) {
	var out []cmpFence
	add := func(i int, id string) error {
		pb := GenFence(cc.Shapes, cc.Seed, 0, i, id, prefix+"set")
		f, err := fencev1.Decode(pb)
		if err != nil {
			return fmt.Errorf("generated fence %s: %w", id, err)
		}
		cf := cmpFence{pb: pb, f: f, bound: f.Shape.Bound(), circle: pb.GetCircle()}
		if cf.circle == nil {
			var g struct {
				Coordinates [][][2]float64 `json:"coordinates"`
			}
			if err := json.Unmarshal([]byte(pb.GetGeojson()), &g); err != nil {
				return fmt.Errorf("generated fence %s: %w", id, err)
			}
			cf.rings = g.Coordinates
		}
		out = append(out, cf)
		return nil
	}
	for k := range cc.Polygons {
		if err := add(2*k, fmt.Sprintf("%sp%04d", prefix, k)); err != nil {
			return nil, err
		}
	}
	for k := range cc.Circles {
		if err := add(2*k+1, fmt.Sprintf("%sc%04d", prefix, k)); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// oracle evaluates every update of tr against every fence with
// fence.Fence.Eval (a box test first), on every core.
func oracle(tr *Trace, fences []cmpFence) CompareSide {
	side := CompareSide{Target: "oracle: package fence, brute force"}
	n := len(tr.IDs)
	k := max(1, min(runtime.GOMAXPROCS(0), n))
	parts := make([][]fenceEvent, k)
	var wg sync.WaitGroup
	for w := range k {
		wg.Add(1)
		go func() {
			defer wg.Done()
			lo, hi := w*n/k, (w+1)*n/k
			var out []fenceEvent
			for s := range tr.Steps {
				for d := lo; d < hi; d++ {
					cur := tr.Steps[s][d]
					var prev *geo.LatLng
					if s > 0 {
						p := tr.Steps[s-1][d]
						prev = &geo.LatLng{Lat: p.lat, Lng: p.lng}
					}
					c := geo.LatLng{Lat: cur.lat, Lng: cur.lng}
					for fi := range fences {
						b := fences[fi].bound
						if !inRect(b, c) && (prev == nil || !inRect(b, *prev)) {
							continue // neither position inside: no enter or exit
						}
						if tt, ok := fences[fi].f.Eval(prev, c, ""); ok {
							out = append(out, fenceEvent{step: int32(s), driver: int32(d), fence: int32(fi), detect: tt})
						}
					}
				}
			}
			parts[w] = out
		}()
	}
	wg.Wait()
	for _, p := range parts {
		side.events = append(side.events, p...)
	}
	side.count()
	return side
}

func inRect(r fence.Rect, p geo.LatLng) bool {
	return p.Lat >= r.MinLat && p.Lat <= r.MaxLat && p.Lng >= r.MinLng && p.Lng <= r.MaxLng
}

// count sorts the side's events, drops duplicates (counting them) and
// counts enters and exits.
func (s *CompareSide) count() {
	slices.SortFunc(s.events, compareEvents)
	n := len(s.events)
	s.events = slices.Compact(s.events)
	s.Duplicates += int64(n - len(s.events))
	for _, e := range s.events {
		switch e.detect {
		case fence.Enter:
			s.Enter++
		case fence.Exit:
			s.Exit++
		default:
			s.Other++
		}
	}
}

// replayTrace sends the trace one step at a time: step s's updates in
// batches of cc.Batch, cc.Concurrency calls in flight, all acknowledged
// before step s+1 starts (so each driver's updates arrive in order).
// tsOf gives step s's timestamp. The result's elapsed time is the
// replay's wall clock, its latencies per batch.
func replayTrace(ctx context.Context, cc CompareConfig, tr *Trace, name string, tsOf func(int) int64,
	send func(context.Context, []Update) (int, error)) PhaseResult {
	n := len(tr.IDs)
	batches := (n + cc.Batch - 1) / cc.Batch
	ws := make([]worker, cc.Concurrency)
	bufs := make([][]Update, cc.Concurrency)
	for i := range bufs {
		bufs[i] = make([]Update, 0, cc.Batch)
	}
	start := time.Now()
	for s := range tr.Steps {
		if ctx.Err() != nil {
			break
		}
		ts := tsOf(s)
		var next atomic.Int64
		var wg sync.WaitGroup
		for wi := range ws {
			wg.Add(1)
			go func() {
				defer wg.Done()
				w := &ws[wi]
				for ctx.Err() == nil {
					b := int(next.Add(1) - 1)
					if b >= batches {
						return
					}
					buf := bufs[wi][:0]
					for d := b * cc.Batch; d < min((b+1)*cc.Batch, n); d++ {
						p := tr.Steps[s][d]
						buf = append(buf, Update{ID: tr.IDs[d], Lat: p.lat, Lng: p.lng, TimestampMs: ts})
					}
					cctx, cancel := context.WithTimeout(ctx, callTimeout)
					t0 := time.Now()
					rejected, err := send(cctx, buf)
					w.h.Record(time.Since(t0))
					cancel()
					w.calls++
					w.ops += int64(len(buf))
					switch {
					case err != nil && rejected > 0:
						w.fail(int64(rejected), err)
					case err != nil:
						w.fail(int64(len(buf)), err)
					}
				}
			}()
		}
		wg.Wait()
	}
	elapsed := time.Since(start)
	res := PhaseResult{Phase: name, Concurrency: cc.Concurrency, ElapsedS: elapsed.Seconds()}
	var h Histogram
	for i := range ws {
		h.Merge(&ws[i].h)
		res.Ops += ws[i].ops
		res.Calls += ws[i].calls
		res.Errors += ws[i].errs
		if ws[i].firstErr != nil && res.FirstError == "" {
			res.FirstError = ws[i].firstErr.Error()
		}
	}
	if elapsed > 0 {
		res.OpsPerS = float64(res.Ops) / elapsed.Seconds()
	}
	ms := func(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
	res.P50Ms, res.P99Ms, res.P999Ms = ms(h.Quantile(0.50)), ms(h.Quantile(0.99)), ms(h.Quantile(0.999))
	return res
}

// settle waits until count has not changed for compareSettleQuiet, or
// timeout, and returns how long it waited.
func settle(ctx context.Context, count func() int64, timeout time.Duration) time.Duration {
	start := time.Now()
	deadline := start.Add(timeout)
	last, since := count(), time.Now()
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for time.Now().Before(deadline) {
		select {
		case <-ctx.Done():
			return time.Since(start)
		case <-tick.C:
		}
		if c := count(); c != last {
			last, since = c, time.Now()
		} else if time.Since(since) >= compareSettleQuiet {
			break
		}
	}
	return time.Since(start)
}

// replayGeomatch puts the fences on geomatch, subscribes to their set,
// replays the trace with UpdateLocations (step s has timestamp base+s ms)
// and collects the events, then deletes the fences.
func replayGeomatch(ctx context.Context, cc CompareConfig, t *GRPCTarget, tr *Trace, fences []cmpFence, prefix string) (*CompareSide, error) {
	side := &CompareSide{Target: t.Name()}
	fc := geomatchv1.NewFenceServiceClient(t.conn)
	ec := geomatchv1.NewEventServiceClient(t.conn)
	set := prefix + "set"
	fenceIdx := make(map[string]int32, len(fences))
	for i, f := range fences {
		fenceIdx[f.pb.GetFenceId()] = int32(i)
	}
	// The probe: a 50 m circle 5 km south of the area, in the same set,
	// and a driver going in and out of it until its events arrive, so the
	// subscription is known to be live before the replay starts.
	probeAt := point{cc.Shapes.Area.MinLat - 5000.0/metersPerDeg, (cc.Shapes.Area.MinLng + cc.Shapes.Area.MaxLng) / 2}
	probe := &geomatchv1.Fence{FenceId: prefix + "probe", Set: set, Shape: &geomatchv1.Fence_Circle{Circle: &geomatchv1.Circle{
		Center: &geomatchv1.LatLng{Lat: probeAt.lat, Lng: probeAt.lng}, RadiusM: 50}}}
	all := make([]*geomatchv1.Fence, 0, len(fences)+1)
	for _, f := range fences {
		all = append(all, f.pb)
	}
	all = append(all, probe)
	defer func() { // bounded cleanup, on a context of its own
		dctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		var next atomic.Int64
		var wg sync.WaitGroup
		for range cc.Concurrency {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := int(next.Add(1) - 1); i < len(all) && dctx.Err() == nil; i = int(next.Add(1) - 1) {
					_, _ = fc.DeleteFence(dctx, &geomatchv1.DeleteFenceRequest{FenceId: all[i].GetFenceId()})
				}
			}()
		}
		wg.Wait()
	}()
	setupStart := time.Now()
	var next atomic.Int64
	var putErr atomic.Pointer[error]
	var wg sync.WaitGroup
	for range cc.Concurrency {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := int(next.Add(1) - 1); i < len(all) && ctx.Err() == nil && putErr.Load() == nil; i = int(next.Add(1) - 1) {
				cctx, cancel := context.WithTimeout(ctx, callTimeout)
				_, err := fc.PutFence(cctx, &geomatchv1.PutFenceRequest{Fence: all[i]})
				cancel()
				if err != nil {
					err = fmt.Errorf("put fence %s: %w", all[i].GetFenceId(), err)
					putErr.CompareAndSwap(nil, &err)
				}
			}
		}()
	}
	wg.Wait()
	side.SetupS = time.Since(setupStart).Seconds()
	if p := putErr.Load(); p != nil {
		return side, *p
	}

	probeID := prefix + "probe-driver"
	sctx, stopSub := context.WithCancel(ctx)
	defer stopSub()
	st, err := ec.Subscribe(sctx, &geomatchv1.SubscribeRequest{Sets: []string{set}, Kinds: []geomatchv1.EventKind{geomatchv1.EventKind_EVENT_KIND_FENCE}})
	if err != nil {
		return side, fmt.Errorf("subscribe: %w", err)
	}
	var mu sync.Mutex
	var got []*geomatchv1.FenceEvent
	var received, probed atomic.Int64
	var subErr error
	subDone := make(chan struct{})
	go func() {
		defer close(subDone)
		for {
			ev, err := st.Recv()
			if err != nil {
				if sctx.Err() == nil && !errors.Is(err, io.EOF) {
					subErr = err
				}
				return
			}
			fe := ev.GetFence()
			if fe == nil {
				continue
			}
			if fe.GetDriverId() == probeID {
				if fe.GetFenceId() == probe.GetFenceId() {
					probed.Add(1)
				}
				continue
			}
			mu.Lock()
			got = append(got, fe)
			mu.Unlock()
			received.Add(1)
		}
	}()
	var probeTs int64
	for i := 0; probed.Load() == 0; i++ {
		if i == 100 || ctx.Err() != nil {
			return side, fmt.Errorf("subscription: no probe event in 10 s (%v)", subErr)
		}
		p := probeAt
		if i%2 == 1 {
			p.lat += 200.0 / metersPerDeg
		}
		probeTs = max(time.Now().UnixMilli(), probeTs+1)
		cctx, cancel := context.WithTimeout(ctx, callTimeout)
		_, err := t.Update(cctx, []Update{{ID: probeID, Lat: p.lat, Lng: p.lng, TimestampMs: probeTs}})
		cancel()
		if err != nil {
			return side, fmt.Errorf("probe update: %w", err)
		}
		timer := time.NewTimer(100 * time.Millisecond)
		select {
		case <-timer.C:
		case <-subDone:
			timer.Stop()
			return side, fmt.Errorf("subscription ended: %v", subErr)
		}
	}

	base := time.Now().UnixMilli()
	cpu0 := procCPUOr0(cc.ServerPID)
	side.Replay = replayTrace(ctx, cc, tr, "replay", func(s int) int64 { return base + int64(s) }, t.Update)
	if cc.ServerPID != 0 {
		side.ServerCPUSeconds = (procCPUOr0(cc.ServerPID) - cpu0).Seconds()
	}
	side.SettleS = settle(ctx, received.Load, cc.SettleTimeout).Seconds()
	stopSub()
	<-subDone
	if subErr != nil {
		return side, fmt.Errorf("subscription: %w", subErr)
	}
	driverIdx := driverIndex(tr)
	for _, fe := range got {
		d, okD := driverIdx(fe.GetDriverId())
		f, okF := fenceIdx[fe.GetFenceId()]
		s := fe.GetTimestampMs() - base
		if !okD || !okF || s < 0 || s >= int64(len(tr.Steps)) {
			side.Unplaced++
			continue
		}
		side.events = append(side.events, fenceEvent{step: int32(s), driver: d, fence: f, detect: fence.Transition(fe.GetDetect())})
	}
	side.count()
	return side, nil
}

// procCPUOr0 is process pid's CPU time so far, 0 when pid is 0 or unknown.
func procCPUOr0(pid int) time.Duration {
	if pid == 0 {
		return 0
	}
	d, err := procCPU(pid)
	if err != nil {
		return 0
	}
	return d
}

// driverIndex returns the lookup of a trace driver's index by id.
func driverIndex(tr *Trace) func(string) (int32, bool) {
	return func(id string) (int32, bool) {
		rest, ok := strings.CutPrefix(id, tr.Prefix)
		if !ok {
			return 0, false
		}
		d, err := strconv.Atoi(rest)
		if err != nil || d < 0 || d >= len(tr.IDs) || tr.IDs[d] != id {
			return 0, false
		}
		return int32(d), true
	}
}

// maxDiffExamples bounds the examples a CompareDiff keeps.
const maxDiffExamples = 10

// diffSides compares two sorted, compacted event sets and classifies each
// event only one side has.
func diffSides(name, aName, bName string, a, b []fenceEvent, tr *Trace, fences []cmpFence, mode Tile38CircleMode) CompareDiff {
	d := CompareDiff{Name: name, A: aName, B: bName, Classes: map[string]int64{}}
	note := func(e fenceEvent, only string) {
		class, margin := classify(e, tr, fences, mode)
		d.Classes[class]++
		if len(d.Examples) < maxDiffExamples {
			d.Examples = append(d.Examples, DiffExample{Only: only, Step: e.step, Driver: tr.IDs[e.driver],
				Fence: fences[e.fence].pb.GetFenceId(), Detect: e.detect.String(), Class: class,
				MarginM: strconv.FormatFloat(margin, 'g', 3, 64)})
		}
	}
	i, j := 0, 0
	for i < len(a) || j < len(b) {
		switch {
		case j == len(b) || i < len(a) && compareEvents(a[i], b[j]) < 0:
			d.OnlyA++
			note(a[i], aName)
			i++
		case i == len(a) || compareEvents(a[i], b[j]) > 0:
			d.OnlyB++
			note(b[j], bName)
			j++
		default:
			d.Same++
			i++
			j++
		}
	}
	if len(d.Classes) == 0 {
		d.Classes = nil
	}
	return d
}

// classify explains an event one side alone reported by the rule that
// decides it: an event turns on whether the update's previous and current
// positions are inside the fence, so the smallest distance of either to
// the fence's edge (margin, meters) says whether a documented edge rule
// can account for it:
//
//   - circle, Tile38 within: Tile38 tests the haversine distance against
//     an Earth radius of 6,371,000 m, geomatch of 6,371,008.8 m, so its
//     circle is larger by a factor 1.0000014 (2.8 mm on 2 km);
//   - circle, Tile38 nearby: Tile38 tests its 64-step polygon, which is
//     inside the circle by up to r·(1−cos(π/64)) (2.4 m on 2 km);
//   - polygon: a position within 1 mm of an edge (both test edges in
//     lat/lng; points on the boundary count as inside in geomatch);
//
// anything else is unexplained.
func classify(e fenceEvent, tr *Trace, fences []cmpFence, mode Tile38CircleMode) (string, float64) {
	cf := fences[e.fence]
	ps := []point{tr.Steps[e.step][e.driver]}
	if e.step > 0 {
		ps = append(ps, tr.Steps[e.step-1][e.driver])
	}
	margin := math.Inf(1)
	if c := cf.circle; c != nil {
		o := geo.LatLng{Lat: c.GetCenter().GetLat(), Lng: c.GetCenter().GetLng()}
		for _, p := range ps {
			margin = math.Min(margin, math.Abs(geo.DistanceM(o, geo.LatLng{Lat: p.lat, Lng: p.lng})-c.GetRadiusM()))
		}
		r := c.GetRadiusM()
		if mode == Tile38CircleNearby && margin <= r*(1-math.Cos(math.Pi/64))*1.05+0.01 {
			return classCircle64, margin
		}
		if margin <= r*(geo.EarthRadiusM/6371000-1)*1.05+1e-3 {
			return classEarthRadius, margin
		}
		return classUnexplained, margin
	}
	for _, p := range ps {
		margin = math.Min(margin, ringsDistanceM(cf.rings, p))
	}
	if margin <= 1e-3 {
		return classBoundary, margin
	}
	return classUnexplained, margin
}

// ringsDistanceM is the distance from p to the nearest edge of rings, in
// meters, on a local plane (good to well under a millimeter at a fence's
// few kilometers).
func ringsDistanceM(rings [][][2]float64, p point) float64 {
	kx := metersPerDeg * math.Cos(p.lat*math.Pi/180)
	best := math.Inf(1)
	for _, ring := range rings {
		for k := 0; k+1 < len(ring); k++ {
			ax, ay := (ring[k][0]-p.lng)*kx, (ring[k][1]-p.lat)*metersPerDeg
			bx, by := (ring[k+1][0]-p.lng)*kx, (ring[k+1][1]-p.lat)*metersPerDeg
			dx, dy := bx-ax, by-ay
			t := 0.0
			if l2 := dx*dx + dy*dy; l2 > 0 {
				t = math.Max(0, math.Min(1, -(ax*dx+ay*dy)/l2))
			}
			best = math.Min(best, math.Hypot(ax+t*dx, ay+t*dy))
		}
	}
	return best
}

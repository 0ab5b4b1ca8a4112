package simulator

import (
	"context"
	"sync"
	"sync/atomic"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/geomatch/geomatch/fence/fencev1"
	geomatchv1 "github.com/geomatch/geomatch/proto/geomatch/v1"
	"github.com/geomatch/geomatch/simulator/city"
	"github.com/geomatch/geomatch/simulator/report"
)

// Zone watching bounds.
const (
	// zoneSettleQuiet and zoneSettleMax: before the last count, the
	// subscription gets up to zoneSettleMax to deliver the last reports'
	// events, done once it has been quiet for zoneSettleQuiet.
	zoneSettleQuiet = 300 * time.Millisecond
	zoneSettleMax   = 2 * time.Second
	// zoneResubscribeAfter is the pause before a broken subscription is
	// opened again (after the last event's cursor).
	zoneResubscribeAfter = time.Second
)

// zoneFenceID is the fence id of a zone: the set, a slash, the zone's id,
// so the simulator's fences never replace anyone else's.
func zoneFenceID(set string, z city.Zone) string { return set + "/" + z.ID }

// zoneFence is the fence of a zone: enter and exit events, labelled with
// the zone's kind, name and id and the city's name.
func zoneFence(set, cityName string, z city.Zone) *geomatchv1.Fence {
	label := func(s string) string {
		if len(s) > fencev1.MaxLabelBytes {
			return s[:fencev1.MaxLabelBytes]
		}
		return s
	}
	f := &geomatchv1.Fence{
		FenceId: zoneFenceID(set, z), Set: set,
		Detect: []geomatchv1.FenceDetect{geomatchv1.FenceDetect_FENCE_DETECT_ENTER, geomatchv1.FenceDetect_FENCE_DETECT_EXIT},
		Labels: map[string]string{"kind": z.Kind, "name": label(z.Name), "zone": z.ID, "city": label(cityName), "source": "geomatch-sim"},
	}
	if z.IsCircle() {
		f.Shape = &geomatchv1.Fence_Circle{Circle: &geomatchv1.Circle{
			Center: &geomatchv1.LatLng{Lat: z.Center.Lat, Lng: z.Center.Lng}, RadiusM: z.RadiusM}}
	} else {
		f.Shape = &geomatchv1.Fence_Geojson{Geojson: z.GeoJSON()}
	}
	return f
}

// zoneWatch keeps the run's zones: it puts them as fences at the start,
// counts their fence events from a subscription (counters only: no event
// is kept), reads the drivers inside each zone (GetFenceCounts) every
// sample interval of the window and once more after the wind-down.
//
// Its goroutines (the subscription, the sampling) end by close, which
// waits for them; every method is a no-op on a nil zoneWatch (a run
// without zones).
type zoneWatch struct {
	e      *engine
	set    string
	zones  []city.Zone
	ids    []string       // fence ids, in zones order
	index  map[string]int // fence id to zone; read-only once built
	fences geomatchv1.FenceServiceClient
	events geomatchv1.EventServiceClient

	// Event counters, per zone.
	enters, exits []atomic.Int64
	other         atomic.Int64
	lastEvent     atomic.Int64 // UnixNano of the last event received

	stopSubscription context.CancelFunc
	subscriptionDone chan struct{}
	stopSamplingFn   context.CancelFunc
	samplingDone     chan struct{}

	mu          sync.Mutex // guards what follows
	t0          time.Time
	series      []report.ZoneSample
	prevAt      time.Time
	prevEnters  int64
	prevExits   int64
	countErrors int64
}

// openZones puts the city's zones and subscribes to their events. It
// returns nil, having warned, when the run has no zones: switched off, or
// the target has no fences (FAILED_PRECONDITION without a durable store,
// UNIMPLEMENTED on an older server) or refuses them.
func (e *engine) openZones(ctx context.Context) *zoneWatch {
	if !e.cfg.Zones {
		return nil
	}
	unary := e.conns[len(e.conns)-1]
	z := &zoneWatch{e: e, set: e.cfg.ZoneSet, zones: city.Zones(e.g), index: map[string]int{},
		fences: geomatchv1.NewFenceServiceClient(unary), events: geomatchv1.NewEventServiceClient(unary)}
	if len(z.zones) > city.MaxZones {
		z.zones = z.zones[:city.MaxZones]
	}
	z.enters = make([]atomic.Int64, len(z.zones))
	z.exits = make([]atomic.Int64, len(z.zones))
	for i, zn := range z.zones {
		id := zoneFenceID(z.set, zn)
		z.ids = append(z.ids, id)
		z.index[id] = i
		cctx, cancel := context.WithTimeout(ctx, callTimeout)
		_, err := z.fences.PutFence(cctx, &geomatchv1.PutFenceRequest{Fence: zoneFence(z.set, e.g.Name, zn)})
		cancel()
		if err != nil {
			switch status.Code(err) {
			case codes.FailedPrecondition, codes.Unimplemented:
				e.warnOnce("zones", "the target has no fences; running without zones", "err", err)
			default:
				e.warnOnce("zones", "could not put the zones' fences; running without zones", "zone", zn.ID, "err", err)
			}
			return nil
		}
	}
	sctx, stop := context.WithCancel(context.Background())
	z.stopSubscription, z.subscriptionDone = stop, make(chan struct{})
	go func() {
		defer close(z.subscriptionDone)
		z.subscribe(sctx)
	}()
	return z
}

// subscribe counts the set's fence events until ctx is done, opening the
// subscription again (after the last cursor) when it breaks.
func (z *zoneWatch) subscribe(ctx context.Context) {
	cursor := ""
	for {
		err := z.follow(ctx, &cursor)
		if ctx.Err() != nil {
			return
		}
		switch status.Code(err) {
		case codes.FailedPrecondition, codes.Unimplemented, codes.PermissionDenied, codes.Unauthenticated, codes.InvalidArgument:
			z.e.warnOnce("zone-events", "no fence events for the zones: the target refused the subscription", "err", err)
			return
		case codes.OutOfRange:
			cursor = "" // behind the log's retention: follow from the newest
		}
		z.e.warnOnce("zone-events-retry", "the zones' event subscription broke; subscribing again", "err", err)
		if !sleep(ctx, zoneResubscribeAfter) {
			return
		}
	}
}

// follow reads one subscription until it fails, keeping the last cursor.
func (z *zoneWatch) follow(ctx context.Context, cursor *string) error {
	stream, err := z.events.Subscribe(ctx, &geomatchv1.SubscribeRequest{
		Sets: []string{z.set}, Kinds: []geomatchv1.EventKind{geomatchv1.EventKind_EVENT_KIND_FENCE}, AfterCursor: *cursor})
	if err != nil {
		return err
	}
	for {
		ev, err := stream.Recv()
		if err != nil {
			return err
		}
		*cursor = ev.GetCursor()
		z.count(ev.GetFence())
	}
}

// count tallies one fence event.
func (z *zoneWatch) count(fe *geomatchv1.FenceEvent) {
	if fe == nil {
		return
	}
	z.lastEvent.Store(time.Now().UnixNano())
	i, ok := z.index[fe.GetFenceId()]
	if !ok {
		z.other.Add(1)
		return
	}
	switch fe.GetDetect() {
	case geomatchv1.FenceDetect_FENCE_DETECT_ENTER:
		z.enters[i].Add(1)
	case geomatchv1.FenceDetect_FENCE_DETECT_EXIT:
		z.exits[i].Add(1)
	}
}

// totals are the zones' enter and exit events so far.
func (z *zoneWatch) totals() (enters, exits int64) {
	for i := range z.zones {
		enters += z.enters[i].Load()
		exits += z.exits[i].Load()
	}
	return enters, exits
}

// counts asks the service for the drivers inside each zone.
func (z *zoneWatch) counts(ctx context.Context, timeout time.Duration) (inside, available []int64, err error) {
	cctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	resp, err := z.fences.GetFenceCounts(cctx, &geomatchv1.GetFenceCountsRequest{Set: z.set, FenceIds: z.ids})
	if err != nil {
		return nil, nil, err
	}
	inside, available = make([]int64, len(z.zones)), make([]int64, len(z.zones))
	for _, c := range resp.GetCounts() {
		if i, ok := z.index[c.GetFenceId()]; ok {
			inside[i], available[i] = c.GetInside(), c.GetAvailable()
		}
	}
	return inside, available, nil
}

// startSampling samples the zones every interval from t0, the start of
// the window, until stopSampling.
func (z *zoneWatch) startSampling(t0 time.Time, every time.Duration) {
	if z == nil {
		return
	}
	z.mu.Lock()
	z.t0, z.prevAt = t0, t0
	z.prevEnters, z.prevExits = z.totals()
	z.mu.Unlock()
	ctx, stop := context.WithCancel(context.Background())
	z.stopSamplingFn, z.samplingDone = stop, make(chan struct{})
	go func() {
		defer close(z.samplingDone)
		t := time.NewTicker(every)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case now := <-t.C:
				z.sample(ctx, now, max(every, time.Second))
			}
		}
	}()
}

// stopSampling ends the sampling and takes the window's last sample.
func (z *zoneWatch) stopSampling() {
	if z == nil || z.stopSamplingFn == nil {
		return
	}
	z.stopSamplingFn()
	<-z.samplingDone
	z.stopSamplingFn = nil
	z.sample(context.Background(), time.Now(), callTimeout)
}

// sample records the zones' counts and the event rates at now. The count
// is a call to the service, made without holding the lock.
func (z *zoneWatch) sample(ctx context.Context, now time.Time, timeout time.Duration) {
	inside, available, err := z.counts(ctx, timeout)
	if err != nil && ctx.Err() != nil {
		return // stopping
	}
	enters, exits := z.totals()
	z.mu.Lock()
	defer z.mu.Unlock()
	dt := now.Sub(z.prevAt).Seconds()
	if dt <= 0 {
		return
	}
	if err != nil {
		z.countErrors++
		z.e.warnOnce("zone-counts", "could not count the drivers in the zones", "err", err)
	}
	if len(z.series) < maxSeries+1 {
		z.series = append(z.series, report.ZoneSample{
			T: now.Sub(z.t0).Seconds(), Inside: inside, Available: available,
			EntersPerS: float64(enters-z.prevEnters) / dt, ExitsPerS: float64(exits-z.prevExits) / dt,
		})
	}
	z.prevAt, z.prevEnters, z.prevExits = now, enters, exits
}

// finish waits for the last events, counts the drivers in the zones once
// more, ends the subscription and returns the zones' report.
func (z *zoneWatch) finish() *report.Zones {
	if z == nil {
		return nil
	}
	z.stopSampling()
	deadline := time.Now().Add(zoneSettleMax)
	for time.Now().Before(deadline) && time.Since(time.Unix(0, z.lastEvent.Load())) < zoneSettleQuiet {
		time.Sleep(zoneSettleQuiet / 4)
	}
	inside, available, err := z.counts(context.Background(), callTimeout)
	z.close()

	z.mu.Lock()
	defer z.mu.Unlock()
	out := &report.Zones{Set: z.set, Series: z.series, OtherEvents: z.other.Load(), CountErrors: z.countErrors}
	if err != nil {
		out.CountErrors++
		z.e.warnOnce("zone-counts-end", "could not count the drivers in the zones at the end", "err", err)
	}
	for i, zn := range z.zones {
		r := report.Zone{ID: z.ids[i], Name: zn.Name, Kind: zn.Kind, Shape: "polygon", Enters: z.enters[i].Load(), Exits: z.exits[i].Load()}
		if zn.IsCircle() {
			r.Shape = "circle"
		}
		if err == nil {
			r.EndInside, r.EndAvailable = inside[i], available[i]
		}
		out.Events += r.Enters + r.Exits
		out.Zones = append(out.Zones, r)
	}
	out.Events += out.OtherEvents
	out.Summarise()
	return out
}

// close ends the sampling and the subscription and waits for them.
func (z *zoneWatch) close() {
	if z == nil {
		return
	}
	if z.stopSamplingFn != nil {
		z.stopSamplingFn()
		<-z.samplingDone
		z.stopSamplingFn = nil
	}
	if z.stopSubscription != nil {
		z.stopSubscription()
		<-z.subscriptionDone
		z.stopSubscription = nil
	}
}

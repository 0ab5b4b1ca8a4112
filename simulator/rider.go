package simulator

import (
	"context"
	"fmt"
	"math"
	"strconv"
	"strings"
	"sync"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/geomatch/geomatch/internal/geo"
	geomatchv1 "github.com/geomatch/geomatch/proto/geomatch/v1"
	"github.com/geomatch/geomatch/simulator/city"
	"github.com/geomatch/geomatch/simulator/demand"
	"github.com/geomatch/geomatch/simulator/report"
)

// rider is one ride request of the scenario.
type rider struct {
	idx       int
	id        string
	requestID string
	at        float64 // simulated arrival
	pickup    geo.LatLng
	dropoff   geo.LatLng
	class     string
	patience  float64 // simulated seconds
}

// Calls' time bounds.
const (
	callTimeout = 10 * time.Second
	// maxLongPoll is the longest wait one RequestRide asks for (the API
	// allows 60 s).
	maxLongPoll = 55 * time.Second
)

// riderClasses are what riders ask for: most any car.
var riderClasses = []struct {
	class string
	share float64
}{{"", 0.85}, {"xl", 0.10}, {"premium", 0.05}}

// newRider draws rider n, arriving at simulated second at, from its own
// random source.
func (e *engine) newRider(n int, at float64) rider {
	rng := entityRNG(e.cfg.Seed, streamRider, n)
	px, py, dx, dy := e.demand.TripAt(rng, at, e.events, e.cfg.MinTripM)
	// Riders wait at intersections: pickups and drop-offs are nodes.
	pn, dn := e.g.Nearest(px, py), e.g.Nearest(dx, dy)
	if pn == dn {
		dn = city.NodeID((int(pn) + len(e.g.Nodes)/2) % len(e.g.Nodes))
	}
	class := ""
	k := rng.Float64()
	for _, c := range riderClasses {
		if k < c.share {
			class = c.class
			break
		}
		k -= c.share
	}
	return rider{
		idx: n, id: fmt.Sprintf("%s-rider%07d", e.cfg.DriverPrefix, n),
		requestID: fmt.Sprintf("%s-%s-r%07d", e.cfg.DriverPrefix, e.runID, n),
		at:        at, pickup: e.g.Nodes[pn].Pos, dropoff: e.g.Nodes[dn].Pos, class: class,
		patience: uniform(rng, e.cfg.PatienceMin.Seconds(), e.cfg.PatienceMax.Seconds()),
	}
}

// runArrivals starts riders on the demand's schedule until ctx is done;
// rider goroutines are tracked by wg and bounded by the semaphore.
func (e *engine) runArrivals(ctx context.Context, wg *sync.WaitGroup, start float64) {
	rng := entityRNG(e.cfg.Seed, streamArrivals, 0)
	sem := make(chan struct{}, e.cfg.MaxWaitingRiders)
	t := time.NewTimer(time.Hour)
	defer t.Stop()
	at := start
	for n := 0; ; n++ {
		at = e.demand.NextArrival(rng, at)
		if math.IsInf(at, 1) {
			return
		}
		t.Reset(time.Until(e.clock.wall(at)))
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if e.ledger.full() {
			e.m.droppedArrivals.Add(1)
			e.warnOnce("trips", "the run tracks as many trips as it may; later riders are dropped", "max", e.cfg.MaxTrips)
			continue
		}
		select {
		case sem <- struct{}{}:
		default:
			e.m.droppedArrivals.Add(1)
			e.warnOnce("riders", "too many riders waiting at once; arrivals dropped", "max", e.cfg.MaxWaitingRiders)
			continue
		}
		r := e.newRider(n, at)
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			e.ride(ctx, r)
		}()
	}
}

// ride is one rider: look, request, wait up to its patience, give up.
func (e *engine) ride(ctx context.Context, r rider) {
	pickup := &geomatchv1.LatLng{Lat: r.pickup.Lat, Lng: r.pickup.Lng}
	if e.cfg.Nearby {
		cctx, cancel := context.WithTimeout(ctx, callTimeout)
		start := time.Now()
		_, err := e.api().Nearby(cctx, &geomatchv1.NearbyDriversRequest{Position: pickup, Limit: 10, RadiusM: 2000, VehicleClass: r.class})
		cancel()
		if ctx.Err() != nil {
			return
		}
		e.m.lat[mNearby].record(time.Since(start), err)
	}
	req := &geomatchv1.RequestRideRequest{
		RequestId: r.requestID, RiderId: r.id, Pickup: pickup,
		Dropoff: &geomatchv1.LatLng{Lat: r.dropoff.Lat, Lng: r.dropoff.Lng}, VehicleClass: r.class,
	}
	requested := time.Now()
	e.m.waiting.Add(1)
	defer e.m.waiting.Add(-1)
	// Until the call answers, the request is pending: the service may
	// create the trip even if the answer never comes (the wind-down asks
	// again with the same request id, which is idempotent).
	e.ledger.request(req)
	cctx, cancel := context.WithTimeout(ctx, callTimeout)
	t, err := e.api().RequestRide(cctx, req)
	cancel()
	if ctx.Err() != nil && err != nil {
		return // the run is over; the wind-down settles the request
	}
	e.m.lat[mRequestRide].record(time.Since(requested), err)
	if err != nil {
		e.m.requestErrors.Add(1)
		e.warnOnce("request", "a RequestRide call failed", "rider", r.id, "err", err)
		return
	}
	e.m.requests.Add(1)
	e.ledger.add(t, req.GetRequestId(), r.id, report.Pickup{Lat: r.pickup.Lat, Lng: r.pickup.Lng})
	deadline := requested.Add(e.secondsToDuration(r.patience))
	for !settled(t) {
		left := time.Until(deadline)
		if left <= 0 {
			break
		}
		req.WaitMs = int32(min(left, maxLongPoll) / time.Millisecond)
		cctx, cancel := context.WithTimeout(ctx, time.Duration(req.WaitMs)*time.Millisecond+callTimeout)
		next, err := e.api().RequestRide(cctx, req)
		cancel()
		if ctx.Err() != nil {
			return // the wind-down settles the trip
		}
		if err != nil {
			e.warnOnce("poll", "waiting for a ride failed", "rider", r.id, "err", err)
			if !sleep(ctx, 200*time.Millisecond) {
				return
			}
			continue
		}
		t = next
	}
	switch {
	case wasAssigned(t):
		e.riderMatched(t, requested)
	case isFinal(t.GetState()):
		e.ledger.observe(t)
	default:
		// Patience ran out: cancel. The trip may have been assigned just
		// before; the cancellation then shows its driver.
		ct, err := e.cancelTrip(ctx, t.GetTripId(), r.id, "rider gave up")
		if err != nil {
			return
		}
		e.ledger.ended(t.GetTripId(), endGaveUp)
		if wasAssigned(ct) {
			e.riderMatched(ct, requested)
		} else {
			e.ledger.observe(ct)
		}
	}
}

// riderMatched records what a rider learned of its trip's assignment.
func (e *engine) riderMatched(t *geomatchv1.Trip, requested time.Time) {
	e.m.timeToMatch.add(ms(time.Since(requested)))
	e.ledger.matched(t.GetTripId(), ms(time.Since(requested)))
	e.m.pickupDist.add(t.GetPickupDistanceM())
	if e.ledger.observe(t) {
		e.m.matched.Add(1)
		// The driver's own event has not arrived (or was lost): tell it.
		if d := e.driverByID(t.GetDriverId()); d != nil {
			d.w.post(e.runCtx, inEvent{d: d, assigned: t})
		}
	}
}

// settled reports whether a waiting rider has its answer.
func settled(t *geomatchv1.Trip) bool { return isFinal(t.GetState()) || wasAssigned(t) }

// cancelTrip cancels a trip for its rider.
func (e *engine) cancelTrip(ctx context.Context, tripID, riderID, reason string) (*geomatchv1.Trip, error) {
	cctx, cancel := context.WithTimeout(ctx, callTimeout)
	defer cancel()
	start := time.Now()
	t, err := e.api().CancelTrip(cctx, tripID, riderID, reason)
	if status.Code(err) == codes.FailedPrecondition {
		// Too late to cancel (the rider is aboard): not an API failure.
		e.m.lat[mCancelTrip].record(time.Since(start), nil)
		return nil, err
	}
	e.m.lat[mCancelTrip].record(time.Since(start), err)
	if err != nil {
		return nil, fmt.Errorf("cancel trip %s: %w", tripID, err)
	}
	return t, nil
}

// getTrip reads a trip.
func (e *engine) getTrip(ctx context.Context, tripID string) (*geomatchv1.Trip, error) {
	cctx, cancel := context.WithTimeout(ctx, callTimeout)
	defer cancel()
	start := time.Now()
	t, err := e.api().GetTrip(cctx, tripID)
	e.m.lat[mGetTrip].record(time.Since(start), err)
	if err != nil {
		return nil, fmt.Errorf("get trip %s: %w", tripID, err)
	}
	return t, nil
}

// driverByID finds one of the run's drivers by id.
func (e *engine) driverByID(id string) *driver {
	rest, ok := strings.CutPrefix(id, e.cfg.DriverPrefix+"-d")
	if !ok {
		return nil
	}
	n, err := strconv.Atoi(rest)
	if err != nil || n < 0 || n >= len(e.drivers) || e.drivers[n].id != id {
		return nil
	}
	return e.drivers[n]
}

// sleep waits d or until ctx is done; it reports whether the wait ran out.
func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}

// demandModel builds the riders' demand in the city's frame.
func demandModel(cfg *Config) demand.Model {
	g := cfg.City
	m := demand.Model{
		PerMinute: cfg.demandPerMinute(), Profile: cfg.Profile, StartHour: cfg.StartHour,
		MinX: g.MinX, MinY: g.MinY, MaxX: g.MaxX, MaxY: g.MaxY,
	}
	total := 0.0
	for _, p := range cfg.Places {
		x, y := g.Frame.XY(p.Pos)
		m.Spots = append(m.Spots, demand.Spot{X: x, Y: y, SigmaM: p.SigmaM, Weight: p.Weight})
		total += p.Weight
	}
	m.Background = cfg.BackgroundDemand
	if m.Background < 0 {
		m.Background = total
	}
	if total == 0 && m.Background == 0 {
		m.Background = 1
	}
	return m
}

package dispatch

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"go.opentelemetry.io/otel/trace"

	"github.com/geomatch/geomatch/internal/geo"
	"github.com/geomatch/geomatch/internal/metrics"
	"github.com/geomatch/geomatch/internal/tracing"
	"github.com/geomatch/geomatch/store"
	"github.com/geomatch/geomatch/trip"
)

// Candidate is an available driver near a pickup.
type Candidate struct {
	DriverID  string
	DistanceM float64
}

// Searcher finds available drivers: an exact nearby search across the
// cluster (the router's scatter/gather), nearest first.
type Searcher interface {
	Available(ctx context.Context, q geo.LatLng, radiusM float64, k int, vehicleClass string) ([]Candidate, error)
}

// Placement tells a coordinator which pickups it is responsible for.
type Placement interface {
	// Owns reports whether this node owns the shard of p now.
	Owns(p geo.LatLng) bool
	// Shard returns the shard of p (batches are per shard).
	Shard(p geo.LatLng) uint64
}

// Request is a validated ride request.
type Request struct {
	RequestID, RiderID, VehicleClass string
	Pickup, Dropoff                  geo.LatLng
}

// Coordinator drives the trips whose pickup shard its node owns. Create it
// with NewCoordinator and run Run; RequestRide may be called concurrently.
type Coordinator struct {
	*Ops
	search Searcher
	place  Placement

	conflicts atomic.Uint64 // reservations refused because the driver was taken

	mu      sync.Mutex
	ctx     context.Context // Run's context; nil before Run
	running map[string]chan struct{}
	waiters map[string][]chan struct{}
	batches map[uint64]*batch
	wg      sync.WaitGroup
}

// NewCoordinator returns a coordinator over st.
func NewCoordinator(cfg Config, st Store, search Searcher, place Placement, log *slog.Logger) (*Coordinator, error) {
	ops, err := NewOps(st, cfg, log)
	if err != nil {
		return nil, err
	}
	return &Coordinator{
		Ops: ops, search: search, place: place,
		running: make(map[string]chan struct{}),
		waiters: make(map[string][]chan struct{}),
		batches: make(map[uint64]*batch),
	}, nil
}

// Run resumes unfinished trips of the node's shards, follows trip changes
// on the event bus, and adopts orphaned trips periodically, until ctx is
// done; then it waits for every trip it drives to stop.
func (c *Coordinator) Run(ctx context.Context) error {
	events, err := c.st.Subscribe(ctx)
	if err != nil {
		if ctx.Err() != nil {
			return nil // stopped while starting
		}
		return fmt.Errorf("dispatch: subscribe to trip events: %w", err)
	}
	c.mu.Lock()
	c.ctx = ctx
	c.mu.Unlock()
	defer c.wg.Wait()
	c.recover(ctx)
	tick := time.NewTicker(c.cfg.RecoverEvery)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case ev, ok := <-events:
			if !ok {
				if ctx.Err() != nil {
					return nil
				}
				return errors.New("dispatch: the trip event subscription ended")
			}
			if ev.Kind == store.EventTrip {
				c.wake(ev.TripID)
			}
		case <-tick.C:
			c.recover(ctx)
		}
	}
}

// recover starts driving the unfinished trips of this node's shards that
// nobody drives here.
func (c *Coordinator) recover(ctx context.Context) {
	recs, err := c.st.ActiveTrips(ctx, c.cfg.MaxActive)
	if err != nil {
		c.log.Warn("list active trips", "err", err)
		return
	}
	n := 0
	for _, rec := range recs {
		t, err := decode(rec)
		if err != nil || t.State.Final() || !c.place.Owns(geo.LatLng(t.Pickup)) {
			continue
		}
		if c.start(t.ID, trace.SpanContext{}) == nil {
			n++
		}
	}
	if n > 0 {
		c.log.Info("resumed unfinished trips", "count", n)
	}
}

// wake tells the trip's driver loop and waiters that the trip changed.
func (c *Coordinator) wake(id string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if ch, ok := c.running[id]; ok {
		select {
		case ch <- struct{}{}:
		default:
		}
	}
	for _, w := range c.waiters[id] {
		close(w)
	}
	delete(c.waiters, id)
}

// start drives trip id in a goroutine unless it is driven already. It
// returns nil when a new loop was started. A valid parent is the span of
// the request that created the trip: the loop's spans continue its trace.
func (c *Coordinator) start(id string, parent trace.SpanContext) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.ctx == nil {
		return errors.New("dispatch: coordinator is not running")
	}
	if _, ok := c.running[id]; ok {
		return errAlreadyRunning
	}
	if len(c.running) >= c.cfg.MaxActive {
		return ErrBusy
	}
	wake := make(chan struct{}, 1)
	c.running[id] = wake
	ctx := c.ctx
	c.wg.Add(1)
	go func() {
		defer c.wg.Done()
		defer func() {
			c.mu.Lock()
			delete(c.running, id)
			c.mu.Unlock()
		}()
		ctx, span := startSpan(withParent(ctx, parent), "dispatch.drive", id)
		err := c.drive(ctx, id, wake)
		tracing.End(span, err)
		if err != nil && ctx.Err() == nil {
			c.log.Warn("trip coordination stopped", "trip", id, "err", err)
		}
	}()
	return nil
}

var errAlreadyRunning = errors.New("already running")

// RequestRide creates the trip for req (or finds the one an earlier call
// with the same request id created), makes sure it is being driven, and
// waits up to wait for it to be assigned or to end.
func (c *Coordinator) RequestRide(ctx context.Context, req Request, wait time.Duration) (trip.Trip, bool, error) {
	id := TripID(req.RequestID)
	now := c.cfg.Now()
	t := trip.New(id, req.RequestID, req.RiderID, req.VehicleClass, trip.LatLng(req.Pickup), trip.LatLng(req.Dropoff), now)
	data, err := t.Marshal()
	if err != nil {
		return t, false, fmt.Errorf("encode trip %s: %w", id, err)
	}
	rec, created, err := c.st.CreateTrip(ctx, store.TripRecord{ID: id, Data: data})
	if err != nil {
		return t, false, fmt.Errorf("create trip %s: %w", id, err)
	}
	if t, err = decode(rec); err != nil {
		return t, false, err
	}
	if t.RiderID != req.RiderID {
		return trip.Trip{}, false, fmt.Errorf("request %q: %w", req.RequestID, ErrRequestReused)
	}
	if created {
		metrics.CountTrip(trip.StateRequested.String())
		c.publishTrip(ctx, t, rec.Data)
	}
	if !t.State.Final() && t.State < trip.StateAssigned {
		if err := c.start(id, trace.SpanContextFromContext(ctx)); err != nil && !errors.Is(err, errAlreadyRunning) {
			if created {
				// Nobody will drive it: end it now rather than leave it hanging.
				if t2, err2 := c.change(ctx, id, func(trip.Trip) (trip.Event, error) {
					return trip.Event{Kind: trip.EventGiveUp, Reason: "dispatch overloaded"}, nil
				}); err2 == nil {
					t = t2
				}
			}
			return t, created, err
		}
	}
	t, err = c.wait(ctx, id, min(wait, c.cfg.MaxWait))
	return t, created, err
}

// settled reports whether a waiting caller can be answered.
func settled(t trip.Trip) bool { return t.State.Final() || t.State >= trip.StateAssigned }

// wait returns the trip once it is assigned or ended, or as it stands when
// d or ctx runs out.
func (c *Coordinator) wait(ctx context.Context, id string, d time.Duration) (trip.Trip, error) {
	deadline := time.NewTimer(d)
	defer deadline.Stop()
	for {
		ch := make(chan struct{})
		c.mu.Lock()
		c.waiters[id] = append(c.waiters[id], ch)
		c.mu.Unlock()
		t, err := c.Get(ctx, id)
		if err != nil || settled(t) || d <= 0 {
			c.dropWaiter(id, ch)
			return t, err
		}
		// Events are best effort: poll as a fallback.
		poll := time.NewTimer(500 * time.Millisecond)
		select {
		case <-ch:
		case <-poll.C:
		case <-deadline.C:
			poll.Stop()
			c.dropWaiter(id, ch)
			return c.Get(ctx, id)
		case <-ctx.Done():
			poll.Stop()
			c.dropWaiter(id, ch)
			return c.Get(context.WithoutCancel(ctx), id)
		}
		poll.Stop()
		c.dropWaiter(id, ch)
	}
}

func (c *Coordinator) dropWaiter(id string, ch chan struct{}) {
	c.mu.Lock()
	defer c.mu.Unlock()
	ws := c.waiters[id]
	if i := slices.Index(ws, ch); i >= 0 {
		ws = slices.Delete(ws, i, i+1)
	}
	if len(ws) == 0 {
		delete(c.waiters, id)
	} else {
		c.waiters[id] = ws
	}
}

// drive moves one trip forward until it is assigned or ended, or this node
// stops owning its pickup, or ctx is done.
func (c *Coordinator) drive(ctx context.Context, id string, wake <-chan struct{}) error {
	for ctx.Err() == nil {
		t, err := c.Get(ctx, id)
		if err != nil {
			return err
		}
		if settled(t) {
			return nil
		}
		if !c.place.Owns(geo.LatLng(t.Pickup)) {
			c.log.Info("stopped driving a trip whose pickup shard moved away", "trip", id)
			return nil
		}
		switch t.State {
		case trip.StateRequested:
			if err := c.offerNext(ctx, t); err != nil {
				return err
			}
		case trip.StateOffered:
			left := t.OfferExpiresAt.Sub(c.cfg.Now())
			if left > 0 {
				timer := time.NewTimer(min(left, c.cfg.RecoverEvery))
				select {
				case <-ctx.Done():
				case <-wake:
				case <-timer.C:
				}
				timer.Stop()
				continue
			}
			ectx, span := startSpan(ctx, "dispatch.expire", id)
			_, err := c.expire(ectx, t)
			tracing.End(span, err)
			if err != nil {
				return err
			}
		}
	}
	return nil
}

// noDriverReason says why a trip ends without a driver: every offer it
// may make was made (radiusM 0), or no other driver could be reserved
// within radiusM; and how its offers ended.
func noDriverReason(t trip.Trip, radiusM float64) string {
	var why string
	switch {
	case radiusM == 0:
		why = fmt.Sprintf("no driver accepted after %d offers", t.Attempts)
	case t.Attempts == 0:
		return fmt.Sprintf("no available driver connected within %.0f m (only drivers holding a Connect stream are offered rides)", radiusM)
	default:
		why = fmt.Sprintf("no other available driver within %.0f m after %d offers", radiusM, t.Attempts)
	}
	why += fmt.Sprintf(" (%d declined, %d unanswered", t.Declined, t.Expired)
	if t.Expired > 0 {
		why += ": a driver sees offers only on its Connect stream"
	}
	return why + ")"
}

// offerNext reserves the best candidate for a requested trip and offers it
// the trip, or ends the trip as no_driver.
func (c *Coordinator) offerNext(ctx context.Context, t trip.Trip) (err error) {
	ctx, span := startSpan(ctx, "dispatch.offer", t.ID)
	defer func() { tracing.End(span, err) }()
	if t.Attempts >= c.cfg.MaxOffers {
		_, err := c.change(ctx, t.ID, func(cur trip.Trip) (trip.Event, error) {
			if cur.State != trip.StateRequested {
				return trip.Event{}, nil
			}
			return trip.Event{Kind: trip.EventGiveUp, Reason: noDriverReason(cur, 0)}, nil
		})
		return err
	}
	cand, ok, err := c.reserve(ctx, t)
	if err != nil {
		return err
	}
	if !ok {
		_, err := c.change(ctx, t.ID, func(cur trip.Trip) (trip.Event, error) {
			if cur.State != trip.StateRequested {
				return trip.Event{}, nil
			}
			return trip.Event{Kind: trip.EventGiveUp, Reason: noDriverReason(cur, c.cfg.SearchRadiusM)}, nil
		})
		return err
	}
	now := c.cfg.Now()
	offerID := fmt.Sprintf("%s-o%d", t.ID, t.Attempts+1)
	expires := now.Add(c.cfg.OfferTimeout)
	next, err := c.change(ctx, t.ID, func(cur trip.Trip) (trip.Event, error) {
		if cur.State != trip.StateRequested || cur.Attempts != t.Attempts {
			return trip.Event{}, errRaced
		}
		return trip.Event{Kind: trip.EventOffer, Driver: cand.DriverID, OfferID: offerID, ExpiresAt: expires, PickupDistanceM: cand.DistanceM, At: now}, nil
	})
	if err != nil || next.State != trip.StateOffered || next.OfferID != offerID {
		// Another coordinator moved the trip first: give the driver back.
		if ferr := c.freeDriver(ctx, cand.DriverID, t.ID); ferr != nil {
			return ferr
		}
		if errors.Is(err, errRaced) {
			return nil
		}
		return err
	}
	tripData, err := next.Marshal()
	if err != nil {
		return fmt.Errorf("encode trip %s: %w", t.ID, err)
	}
	off := store.Offer{ID: offerID, TripID: t.ID, ExpiresAt: expires, PickupDistanceM: cand.DistanceM, Trip: tripData}
	if _, err := c.st.SetOffer(ctx, cand.DriverID, off, expires.Add(c.cfg.LeaseGrace)); err != nil {
		c.log.Warn("record offer on driver", "driver", cand.DriverID, "trip", t.ID, "err", err)
	}
	// The trace context travels with the offer to the router that holds
	// the driver's stream (OfferContext).
	payload, err := json.Marshal(offerMessage{Offer: off, Traceparent: tracing.Traceparent(ctx)})
	if err != nil {
		return fmt.Errorf("encode offer: %w", err)
	}
	if err := c.st.Publish(ctx, store.Event{Kind: store.EventOffer, DriverID: cand.DriverID, TripID: t.ID, Data: payload}); err != nil {
		c.log.Warn("publish offer", "driver", cand.DriverID, "trip", t.ID, "err", err)
	}
	return nil
}

var errRaced = errors.New("trip changed concurrently")

// ReservationConflicts returns how many reservations the store refused
// because another trip held the driver (races between coordinators, or a
// driver taken between search and reserve).
func (c *Coordinator) ReservationConflicts() uint64 { return c.conflicts.Load() }

// reserve finds candidates for t (batch proposal first in batch mode) and
// reserves the first one the store grants.
func (c *Coordinator) reserve(ctx context.Context, t trip.Trip) (Candidate, bool, error) {
	lease := c.cfg.OfferTimeout + c.cfg.LeaseGrace
	if c.cfg.Mode == Batch && t.Attempts == 0 {
		if cand, ok := c.joinBatch(ctx, t); ok {
			return cand, true, nil
		}
	}
	sctx, span := startSpan(ctx, "dispatch.search", t.ID)
	cands, err := c.search.Available(sctx, geo.LatLng(t.Pickup), c.cfg.SearchRadiusM, c.cfg.Candidates+len(t.Tried), t.VehicleClass)
	tracing.End(span, err)
	if err != nil {
		return Candidate{}, false, fmt.Errorf("search drivers for trip %s: %w", t.ID, err)
	}
	for _, cand := range cands {
		if slices.Contains(t.Tried, cand.DriverID) {
			continue
		}
		_, err := c.st.Reserve(ctx, cand.DriverID, t.ID, lease, c.cfg.Now())
		if errors.Is(err, store.ErrConflict) {
			c.conflicts.Add(1)
			continue
		}
		if err != nil {
			return Candidate{}, false, fmt.Errorf("reserve driver %s for trip %s: %w", cand.DriverID, t.ID, err)
		}
		return cand, true, nil
	}
	return Candidate{}, false, nil
}

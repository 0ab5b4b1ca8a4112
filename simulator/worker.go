package simulator

import (
	"container/heap"
	"context"
	"math"
	"sync"
	"time"

	"google.golang.org/grpc"

	"github.com/geomatch/geomatch/internal/geo"
	"github.com/geomatch/geomatch/loadgen"
	geomatchv1 "github.com/geomatch/geomatch/proto/geomatch/v1"
	"github.com/geomatch/geomatch/simulator/city"
	"github.com/geomatch/geomatch/simulator/report"
)

// Kinds of driver timers.
type tkind uint8

const (
	tReport        tkind = iota // the periodic location report
	tAnswer                     // answer the pending offer
	tAcceptTimeout              // give up waiting for an assignment
	tArrive                     // reach the pickup or the drop-off
	tCarriedEnd                 // a warm start's carried-over trip ends
)

// acceptTimeout is how long a driver who accepted waits for the
// assignment (or a refusal) before it goes back to work.
const acceptTimeout = 30 * time.Second

type timer struct {
	at   time.Time
	d    *driver
	kind tkind
	gen  uint32
}

// timerHeap is a min-heap of timers by time. At most one report timer per
// driver plus one per pending offer or trip stage, so its size is bounded
// by a few times the worker's drivers.
type timerHeap []timer

func (h timerHeap) Len() int           { return len(h) }
func (h timerHeap) Less(i, j int) bool { return h[i].at.Before(h[j].at) }
func (h timerHeap) Swap(i, j int)      { h[i], h[j] = h[j], h[i] }
func (h *timerHeap) Push(x any)        { *h = append(*h, x.(timer)) }
func (h *timerHeap) Pop() any {
	old := *h
	x := old[len(old)-1]
	*h = old[:len(old)-1]
	return x
}

// inEvent is something that happened to a driver, for its worker: an
// event from its stream, an assignment the rider side learned of, or the
// end of its stream.
type inEvent struct {
	d        *driver
	ev       *geomatchv1.DriverEvent
	assigned *geomatchv1.Trip
	recvErr  error
}

// Control messages to a worker.
type ctrl uint8

const (
	// ctrlDrain: stop reporting, decline offers, finish trips with a rider
	// aboard at once.
	ctrlDrain ctrl = iota + 1
	// ctrlCloseSend: close the send side of every stream.
	ctrlCloseSend
)

// inboxLen bounds each worker's queue of driver events; a full queue makes
// the receiving streams wait.
const inboxLen = 4096

// batchMaxDelay bounds how long a location waits in a partial batch.
const batchMaxDelay = 250 * time.Millisecond

// minWake is the shortest sleep of a worker: timers fire up to this late.
const minWake = 5 * time.Millisecond

// maxBatchCalls bounds a worker's UpdateLocations calls in flight.
const maxBatchCalls = 8

// worker owns a share of the drivers: their state, their timers and the
// send side of their streams. Run is its only goroutine (plus its
// UpdateLocations calls in batch mode, which it waits for).
type worker struct {
	e       *engine
	drivers []*driver
	inbox   chan inEvent
	ctrl    chan ctrl
	timers  timerHeap

	draining bool

	// Batch transport.
	updates  geomatchv1.DriverServiceClient
	batch    []*geomatchv1.LocationUpdate
	batchAt  time.Time
	calls    chan struct{}
	callsWG  sync.WaitGroup
	sendHist loadgen.Histogram // Connect.Send, merged into the metrics by the worker
}

func newWorker(e *engine, updates geomatchv1.DriverServiceClient) *worker {
	return &worker{e: e, inbox: make(chan inEvent, inboxLen), ctrl: make(chan ctrl, 4), updates: updates, calls: make(chan struct{}, maxBatchCalls)}
}

func (w *worker) schedule(t timer) { heap.Push(&w.timers, t) }

// post hands an event to the worker, waiting while its inbox is full.
func (w *worker) post(ctx context.Context, ev inEvent) bool {
	select {
	case w.inbox <- ev:
		return true
	case <-ctx.Done():
		return false
	}
}

// run is the worker's loop: fire due timers, take events and control
// messages, flush batches, until ctx is done; then wait for its batch
// calls.
func (w *worker) run(ctx context.Context) {
	defer w.callsWG.Wait()
	t := time.NewTimer(time.Hour)
	defer t.Stop()
	flushSend := time.NewTicker(time.Second)
	defer flushSend.Stop()
	for {
		now := time.Now()
		for n := 0; w.timers.Len() > 0 && !w.timers[0].at.After(now); n++ {
			w.fire(ctx, heap.Pop(&w.timers).(timer), now)
			if n%256 == 255 {
				now = time.Now()
			}
		}
		w.flush(ctx, now, false)
		wait := time.Hour
		if w.timers.Len() > 0 {
			wait = w.timers[0].at.Sub(now)
		}
		if len(w.batch) > 0 {
			wait = min(wait, w.batchAt.Add(batchMaxDelay).Sub(now))
		}
		// Timers fire in ticks of at least minWake: the sends of a tick
		// leave together (fewer writes and wake-ups on both sides).
		t.Reset(max(wait, minWake))
		select {
		case <-ctx.Done():
			w.mergeSendHist()
			return
		case ev := <-w.inbox:
			w.handle(ctx, ev, time.Now())
			for i := 0; i < 256; i++ { // take what else is queued
				select {
				case ev := <-w.inbox:
					w.handle(ctx, ev, time.Now())
					continue
				default:
				}
				break
			}
		case c := <-w.ctrl:
			w.control(ctx, c)
		case <-flushSend.C:
			w.mergeSendHist()
		case <-t.C:
		}
	}
}

func (w *worker) mergeSendHist() {
	if w.sendHist.Count() == 0 {
		return
	}
	l := w.e.m.lat[mSend]
	l.mu.Lock()
	l.total.Merge(&w.sendHist)
	l.window.Merge(&w.sendHist)
	l.mu.Unlock()
	w.sendHist = loadgen.Histogram{}
}

func (w *worker) control(ctx context.Context, c ctrl) {
	now := time.Now()
	switch c {
	case ctrlDrain:
		w.draining = true
		w.flush(ctx, now, true)
		for _, d := range w.drivers {
			switch d.state {
			case thinking:
				w.answer(d, false, now)
			case toDropoff:
				if d.trip.carried {
					d.gen++
					w.setState(d, idle)
					continue
				}
				w.finishAtEnd(d, now)
			}
		}
	case ctrlCloseSend:
		for _, d := range w.drivers {
			if d.connected && !d.broken {
				d.broken = true // nothing more goes out on it
				// CloseSend only marks the stream half-closed; how the
				// stream ends shows in its Recv.
				d.sess.CloseSend()
			}
		}
	}
}

// fire runs one due timer.
func (w *worker) fire(ctx context.Context, t timer, now time.Time) {
	d := t.d
	switch t.kind {
	case tReport:
		w.report(ctx, d, t.at, now)
	case tAnswer:
		if d.gen == t.gen && d.state == thinking {
			w.answer(d, d.accept, now)
		}
	case tAcceptTimeout:
		if d.gen == t.gen && d.state == accepting {
			w.e.log.Debug("no assignment after accepting; back to work", "driver", d.id, "trip", d.offerTrip)
			w.setState(d, idle)
			d.gen++
		}
	case tArrive:
		if d.gen == t.gen && (d.state == toPickup || d.state == toDropoff) {
			w.arrive(d, now)
		}
	case tCarriedEnd:
		if d.gen == t.gen && d.trip != nil && d.trip.carried {
			w.e.m.count(&w.e.m.winCarriedDropOffs, w.e.clock.sim(now))
			d.gen++
			w.setState(d, idle)
		}
	}
}

// report is a driver's periodic location report (and shift changes).
func (w *worker) report(ctx context.Context, d *driver, due, now time.Time) {
	iv := w.e.cfg.UpdateInterval
	next := due.Add(iv)
	if late := now.Sub(due); late >= iv {
		// Fell behind by whole intervals: those reports are lost.
		missed := int64(late / iv)
		w.e.m.updSkipped.Add(missed)
		w.e.m.updOffered.Add(missed)
		next = due.Add(time.Duration(missed+1) * iv)
	} else if late > iv/4 {
		w.e.m.updLate.Add(1)
	}
	w.schedule(timer{at: next, d: d, kind: tReport})
	if w.draining || !d.connected || d.broken {
		return
	}
	sim := w.e.clock.sim(now)
	d.advance(sim)
	w.e.stadium.steer(w.e.g, d, now)
	switch {
	case d.online && sim >= d.shiftChange && d.state == idle:
		d.online = false
		w.e.m.online.Add(-1)
		d.shiftChange = sim + d.rng.ExpFloat64()*w.e.cfg.BreakMean.Seconds()
	case !d.online && sim >= d.shiftChange:
		d.online = true
		w.e.m.online.Add(1)
		d.shiftChange = sim + d.rng.ExpFloat64()*w.e.cfg.ShiftMean.Seconds()
	case !d.online:
		return // off shift: the app is quiet
	}
	w.e.m.updOffered.Add(1)
	w.sendLocation(ctx, d, now)
}

// sendLocation sends the driver's position and status.
func (w *worker) sendLocation(ctx context.Context, d *driver, now time.Time) {
	p := w.e.g.LatLng(d.mv.Loc())
	u := &geomatchv1.LocationUpdate{Position: &geomatchv1.LatLng{Lat: p.Lat, Lng: p.Lng}, TimestampMs: d.timestamp(now), Status: d.status()}
	if w.e.cfg.Transport == Batch {
		u.DriverId, u.VehicleClass = d.id, d.class
		if len(w.batch) == 0 {
			w.batchAt = now
		}
		w.batch = append(w.batch, u)
		w.flush(ctx, now, false)
		return
	}
	start := time.Now()
	err := d.sess.Send(&geomatchv1.DriverMessage{Msg: &geomatchv1.DriverMessage_Location{Location: u}})
	w.sendHist.Record(time.Since(start))
	if err != nil {
		w.streamBroke(d, err)
		w.e.m.updFailed.Add(1)
		return
	}
	w.e.m.updSent.Add(1)
}

// flush sends the pending batch when it is full or old enough (or force).
func (w *worker) flush(ctx context.Context, now time.Time, force bool) {
	if len(w.batch) == 0 || (!force && len(w.batch) < w.e.cfg.BatchSize && now.Sub(w.batchAt) < batchMaxDelay) {
		return
	}
	req := &geomatchv1.UpdateLocationsRequest{Updates: w.batch}
	w.batch = nil
	select {
	case w.calls <- struct{}{}:
	case <-ctx.Done():
		w.e.m.updFailed.Add(int64(len(req.Updates)))
		return
	}
	w.callsWG.Add(1)
	go func() {
		defer w.callsWG.Done()
		defer func() { <-w.calls }()
		w.e.updateLocations(ctx, req)
	}()
}

// send sends a message other than a location on the driver's stream.
func (w *worker) send(d *driver, msg *geomatchv1.DriverMessage) bool {
	if !d.connected || d.broken {
		return false
	}
	if err := d.sess.Send(msg); err != nil {
		w.streamBroke(d, err)
		return false
	}
	return true
}

func (w *worker) streamBroke(d *driver, err error) {
	if d.broken {
		return
	}
	d.broken = true
	w.e.m.streamErrors.Add(1)
	w.e.warnOnce("stream", "a driver stream broke", "driver", d.id, "err", err)
}

// setState moves a driver to s, keeping the gauges.
func (w *worker) setState(d *driver, s dstate) {
	m := w.e.m
	if d.state.busy() != s.busy() {
		if s.busy() {
			m.busy.Add(1)
		} else {
			m.busy.Add(-1)
		}
	}
	if (d.state == thinking) != (s == thinking) {
		if s == thinking {
			m.offered.Add(1)
		} else {
			m.offered.Add(-1)
		}
	}
	if (d.state == toDropoff) != (s == toDropoff) {
		if s == toDropoff {
			m.withRider.Add(1)
		} else {
			m.withRider.Add(-1)
		}
	}
	d.state = s
	if s == idle {
		d.trip = nil
		d.mv.Roam()
	}
}

// handle applies one event to its driver.
func (w *worker) handle(ctx context.Context, ev inEvent, now time.Time) {
	d := ev.d
	switch {
	case ev.recvErr != nil:
		if !w.e.closing.Load() {
			w.streamBroke(d, ev.recvErr)
		}
	case ev.assigned != nil:
		w.assigned(d, ev.assigned, now)
	case ev.ev != nil:
		switch x := ev.ev.GetEvent().(type) {
		case *geomatchv1.DriverEvent_Rejected:
			w.e.m.rejected(x.Rejected.GetReason())
			w.e.warnOnce("rejected", "a location update was rejected", "driver", d.id, "reason", x.Rejected.GetReason(), "message", x.Rejected.GetMessage())
		case *geomatchv1.DriverEvent_Offer:
			w.offer(d, x.Offer, now)
		case *geomatchv1.DriverEvent_Trip:
			w.tripEvent(d, x.Trip, now)
		case *geomatchv1.DriverEvent_OfferClosed:
			w.offerClosed(d, x.OfferClosed)
		}
	}
}

// offer: a ride offer arrived; think, then answer.
func (w *worker) offer(d *driver, off *geomatchv1.RideOffer, now time.Time) {
	m := w.e.m
	m.offers.Add(1)
	m.count(&m.winOffers, w.e.clock.sim(now))
	w.e.ledger.offered(off.GetTrip().GetTripId(), now)
	if w.draining || !d.online || d.state != idle {
		// Busy or leaving: decline at once.
		w.send(d, answerMsg(off.GetOfferId(), off.GetTrip().GetTripId(), false))
		m.declines.Add(1)
		return
	}
	rng := offerRNG(w.e.cfg.Seed, d.idx, off.GetOfferId())
	d.offerID, d.offerTrip, d.offeredAt = off.GetOfferId(), off.GetTrip().GetTripId(), now
	d.accept = rng.Float64() < w.e.cfg.AcceptProbability
	think := uniform(rng, w.e.cfg.ThinkMin.Seconds(), w.e.cfg.ThinkMax.Seconds()) / w.e.cfg.Speedup
	d.gen++
	w.setState(d, thinking)
	w.schedule(timer{at: now.Add(time.Duration(think * float64(time.Second))), d: d, kind: tAnswer, gen: d.gen})
}

func answerMsg(offerID, tripID string, accept bool) *geomatchv1.DriverMessage {
	return &geomatchv1.DriverMessage{Msg: &geomatchv1.DriverMessage_OfferAnswer{OfferAnswer: &geomatchv1.OfferAnswer{OfferId: offerID, TripId: tripID, Accept: accept}}}
}

// answer sends the driver's answer to its pending offer.
func (w *worker) answer(d *driver, accept bool, now time.Time) {
	d.gen++
	if !w.draining {
		w.thought(d, accept, now)
	}
	if !w.send(d, answerMsg(d.offerID, d.offerTrip, accept)) {
		w.setState(d, idle)
		return
	}
	if !accept {
		w.e.m.declines.Add(1)
		w.setState(d, idle)
		return
	}
	w.e.m.accepts.Add(1)
	d.answeredAt = now
	w.setState(d, accepting)
	w.schedule(timer{at: now.Add(acceptTimeout), d: d, kind: tAcceptTimeout, gen: d.gen})
}

// thought records the think time of the offer the driver answers.
func (w *worker) thought(d *driver, accept bool, now time.Time) {
	m, sim := w.e.m, w.e.clock.sim(now)
	if accept {
		m.count(&m.winAccepts, sim)
	}
	if m.inWindow(sim) {
		m.thinkS.add(sim - w.e.clock.sim(d.offeredAt))
	}
	w.e.ledger.thought(d.offerTrip, now.Sub(d.offeredAt))
}

// tripEvent: the service tells the driver about its trip.
func (w *worker) tripEvent(d *driver, t *geomatchv1.Trip, now time.Time) {
	if t.GetDriverId() != d.id {
		return
	}
	switch t.GetState() {
	case geomatchv1.TripState_TRIP_STATE_ASSIGNED:
		if d.state == accepting && d.offerTrip == t.GetTripId() && !d.answeredAt.IsZero() {
			w.e.m.lat[mOfferAnswer].record(now.Sub(d.answeredAt), nil)
			d.answeredAt = time.Time{}
		}
		w.assigned(d, t, now)
	case geomatchv1.TripState_TRIP_STATE_PICKED_UP, geomatchv1.TripState_TRIP_STATE_COMPLETED:
		if d.progressTrip == t.GetTripId() && d.progressState == t.GetState() && !d.progressAt.IsZero() {
			w.e.m.lat[mTripProgress].record(now.Sub(d.progressAt), nil)
			d.progressAt = time.Time{}
		}
		w.e.ledger.observe(t)
	case geomatchv1.TripState_TRIP_STATE_CANCELLED:
		w.e.ledger.observe(t)
		if (d.trip != nil && d.trip.id == t.GetTripId()) || (d.state == accepting && d.offerTrip == t.GetTripId()) {
			d.gen++
			w.setState(d, idle)
		}
	}
}

// offerClosed: the service refused an answer or a progress report.
func (w *worker) offerClosed(d *driver, oc *geomatchv1.OfferClosed) {
	switch {
	case d.state == accepting && d.offerTrip == oc.GetTripId():
		w.e.m.acceptsClosed.Add(1)
		d.gen++
		w.setState(d, idle)
	case d.trip != nil && d.trip.id == oc.GetTripId():
		// A progress report was refused: the trip was cancelled meanwhile.
		d.gen++
		w.setState(d, idle)
	}
}

// assigned: the trip is the driver's; drive to the pickup.
func (w *worker) assigned(d *driver, t *geomatchv1.Trip, now time.Time) {
	if d.trip != nil && d.trip.id == t.GetTripId() {
		return // heard of it already
	}
	if d.state != accepting || d.offerTrip != t.GetTripId() {
		if d.state.busy() || w.draining {
			return // cannot take a second trip; the rider side cancels at the end
		}
	}
	if w.e.ledger.observe(t) {
		w.e.m.matched.Add(1)
	}
	sim := w.e.clock.sim(now)
	d.advance(sim)
	g := w.e.g
	pickup := nodeOf(g, t.GetPickup())
	dropoff := nodeOf(g, t.GetDropoff())
	r, ok := g.Route(d.mv.Loc(), pickup)
	if !ok {
		w.e.warnOnce("route", "no route to a pickup", "trip", t.GetTripId())
		return
	}
	d.gen++
	d.trip = &driving{id: t.GetTripId(), pickup: pickup, dropoff: dropoff, assignedAt: sim}
	w.setState(d, toPickup)
	d.mv.Follow(r)
	w.e.m.pickupETA.add(r.Seconds)
	w.e.m.pickupRoute.add(r.Meters)
	w.e.ledger.routed(t.GetTripId(), r.Seconds, report.Leg{FromSimS: sim, ToSimS: sim + r.Seconds/d.mv.Factor, Meters: r.Meters})
	w.scheduleArrival(d, sim, r.Seconds)
}

func nodeOf(g *city.Graph, p *geomatchv1.LatLng) city.NodeID {
	x, y := g.Frame.XY(latLng(p))
	return g.Nearest(x, y)
}

// scheduleArrival sets the arrival timer of a route of secs simulated
// seconds at nominal speed, started at simulated second sim.
func (w *worker) scheduleArrival(d *driver, sim, secs float64) {
	at := w.e.clock.wall(sim + secs/d.mv.Factor)
	w.schedule(timer{at: at, d: d, kind: tArrive, gen: d.gen})
}

// arrive: the driver reached the pickup (report it, drive on) or the
// drop-off (report it, back to work).
func (w *worker) arrive(d *driver, now time.Time) {
	sim := w.e.clock.sim(now)
	if !d.advance(sim + 1e-6) {
		// Rounding left it a hair short: check again shortly.
		w.schedule(timer{at: now.Add(10 * time.Millisecond), d: d, kind: tArrive, gen: d.gen})
		return
	}
	tr := d.trip
	switch d.state {
	case toPickup:
		if !w.progress(d, geomatchv1.TripState_TRIP_STATE_PICKED_UP, now) {
			return
		}
		tr.pickedAt = sim
		w.e.m.pickupTime.add(sim - tr.assignedAt)
		if w.draining {
			w.finishAtEnd(d, now)
			return
		}
		r, ok := w.e.g.Route(d.mv.Loc(), tr.dropoff)
		if !ok {
			w.e.warnOnce("route", "no route to a drop-off", "trip", tr.id)
			return
		}
		w.e.ledger.pickedUp(tr.id, sim, report.Leg{FromSimS: sim, ToSimS: sim + r.Seconds/d.mv.Factor, Meters: r.Meters})
		w.setState(d, toDropoff)
		d.mv.Follow(r)
		w.scheduleArrival(d, sim, r.Seconds)
	case toDropoff:
		if !w.progress(d, geomatchv1.TripState_TRIP_STATE_COMPLETED, now) {
			return
		}
		w.e.m.tripTime.add(sim - tr.pickedAt)
		w.e.m.count(&w.e.m.winDropOffs, sim)
		w.e.ledger.droppedOff(tr.id, sim)
		d.gen++
		w.setState(d, idle)
	}
}

// finishAtEnd completes a trip with the rider aboard when the run ends.
func (w *worker) finishAtEnd(d *driver, now time.Time) {
	id := d.trip.id
	if w.progress(d, geomatchv1.TripState_TRIP_STATE_COMPLETED, now) {
		w.e.ledger.ended(id, endCompletedAtEnd)
	}
	d.gen++
	w.setState(d, idle)
}

// progress reports pickup or drop-off on the driver's stream.
func (w *worker) progress(d *driver, s geomatchv1.TripState, now time.Time) bool {
	msg := &geomatchv1.DriverMessage{Msg: &geomatchv1.DriverMessage_TripProgress{TripProgress: &geomatchv1.TripProgress{TripId: d.trip.id, State: s}}}
	if !w.send(d, msg) {
		d.gen++
		w.setState(d, idle)
		return false
	}
	d.progressTrip, d.progressState, d.progressAt = d.trip.id, s, now
	return true
}

// updateLocations sends one batch and counts the outcome.
func (e *engine) updateLocations(ctx context.Context, req *geomatchv1.UpdateLocationsRequest) {
	n := int64(len(req.GetUpdates()))
	cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	start := time.Now()
	resp, err := e.updates.UpdateLocations(cctx, req, grpc.WaitForReady(false))
	e.m.lat[mUpdate].record(time.Since(start), err)
	if err != nil {
		e.m.updFailed.Add(n)
		e.warnOnce("batch", "an UpdateLocations call failed", "updates", n, "err", err)
		return
	}
	e.m.updSent.Add(n)
	e.m.updAccepted.Add(int64(resp.GetAccepted()))
	for _, rj := range resp.GetRejected() {
		e.m.rejected(rj.GetReason())
		e.warnOnce("rejected", "a location update was rejected", "driver", rj.GetDriverId(), "reason", rj.GetReason(), "message", rj.GetMessage())
	}
}

// secondsToDuration converts simulated seconds to a wall duration at the
// run's speedup.
func (e *engine) secondsToDuration(simS float64) time.Duration {
	return time.Duration(math.Round(simS / e.cfg.Speedup * float64(time.Second)))
}

func latLng(p *geomatchv1.LatLng) geo.LatLng { return geo.LatLng{Lat: p.GetLat(), Lng: p.GetLng()} }

package simulator

import (
	"math"
	"sync"
	"time"

	geomatchv1 "github.com/geomatch/geomatch/proto/geomatch/v1"
	"github.com/geomatch/geomatch/simulator/report"
)

// How a trip ended by the simulator's own hand.
type endKind uint8

const (
	endNone           endKind = iota
	endGaveUp                 // the rider's patience ran out
	endCancelledAtEnd         // still open when the run ended
	endCompletedAtEnd         // finished at once when the run ended
)

// tripRec is what the run knows of one trip it created.
type tripRec struct {
	riderID string
	// state is the latest state seen; final once it is a final state.
	state    geomatchv1.TripState
	assigned bool
	ended    endKind
	pickup   report.Pickup
	// zone and place index the run's zones (-1: none).
	zone, place int

	// When the ride was requested (wall, and simulated seconds), when the
	// first offer reached a driver, and the think time of its answered
	// offers (wall).
	requestedAt  time.Time
	requestedSim float64
	firstOfferAt time.Time
	thinkWall    time.Duration
	// matchMs is request to assignment as the rider saw it; NaN before.
	matchMs float64
	// etaS is the pickup route's time at assignment; pickedSim the
	// simulated second of the pickup (NaN: not yet).
	etaS, pickedSim float64
	// The legs driven: to the pickup and with the rider.
	pickupLeg, rideLeg report.Leg
}

// pendingReq is a request sent whose RequestRide has not answered.
type pendingReq struct {
	req *geomatchv1.RequestRideRequest
	at  time.Time
	sim float64
}

// maxEarlyOffers bounds the offers remembered for trips the run does not
// know yet (the offer beat the RequestRide answer).
const maxEarlyOffers = 10000

func isFinal(s geomatchv1.TripState) bool {
	switch s {
	case geomatchv1.TripState_TRIP_STATE_COMPLETED, geomatchv1.TripState_TRIP_STATE_CANCELLED, geomatchv1.TripState_TRIP_STATE_NO_DRIVER:
		return true
	}
	return false
}

// wasAssigned reports whether t shows that a driver was assigned (a
// cancelled trip keeps its driver only if one had been assigned).
func wasAssigned(t *geomatchv1.Trip) bool {
	switch t.GetState() {
	case geomatchv1.TripState_TRIP_STATE_ASSIGNED, geomatchv1.TripState_TRIP_STATE_PICKED_UP, geomatchv1.TripState_TRIP_STATE_COMPLETED:
		return true
	case geomatchv1.TripState_TRIP_STATE_CANCELLED:
		return t.GetDriverId() != ""
	}
	return false
}

// ledger holds every trip the run created, bounded by Config.MaxTrips; safe
// for concurrent use.
type ledger struct {
	mu    sync.Mutex
	trips map[string]*tripRec
	// pending are requests whose RequestRide has not answered (yet): the
	// service may have created their trips all the same.
	pending map[string]pendingReq
	// earlyOffers are first offers of trips not known yet.
	earlyOffers map[string]time.Time
	max         int

	// now, when set, is the wall and simulated time (for the request
	// times); locate, when set, the zone and place of a pickup. Both are
	// set before the run's goroutines start.
	now    func() (time.Time, float64)
	locate func(lat, lng float64) (zone, place int)
}

func newLedger(max int) *ledger {
	return &ledger{trips: map[string]*tripRec{}, pending: map[string]pendingReq{}, earlyOffers: map[string]time.Time{}, max: max}
}

// full reports whether the ledger holds as many trips as it may.
func (l *ledger) full() bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.trips)+len(l.pending) >= l.max
}

// request records a ride request about to be sent.
func (l *ledger) request(req *geomatchv1.RequestRideRequest) {
	p := pendingReq{req: req, sim: math.NaN()}
	if l.now != nil {
		p.at, p.sim = l.now()
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	l.pending[req.GetRequestId()] = p
}

// unanswered lists the requests whose trips the run does not know.
func (l *ledger) unanswered() []*geomatchv1.RequestRideRequest {
	l.mu.Lock()
	defer l.mu.Unlock()
	out := make([]*geomatchv1.RequestRideRequest, 0, len(l.pending))
	for _, r := range l.pending {
		out = append(out, r.req)
	}
	return out
}

// add records a trip the run created (or finds the one it already has);
// requestID's request is answered.
func (l *ledger) add(t *geomatchv1.Trip, requestID, riderID string, pickup report.Pickup) {
	zone, place := -1, -1
	if l.locate != nil {
		zone, place = l.locate(pickup.Lat, pickup.Lng)
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	p, wasPending := l.pending[requestID]
	delete(l.pending, requestID)
	id := t.GetTripId()
	if _, ok := l.trips[id]; !ok {
		nan := math.NaN()
		r := &tripRec{riderID: riderID, pickup: pickup, zone: zone, place: place, requestedSim: nan,
			matchMs: nan, etaS: nan, pickedSim: nan}
		if wasPending {
			r.requestedAt, r.requestedSim = p.at, p.sim
		}
		if at, ok := l.earlyOffers[id]; ok {
			r.firstOfferAt = at
			delete(l.earlyOffers, id)
		}
		l.trips[id] = r
	}
	l.observeLocked(t)
}

// offered records an offer of the trip reaching a driver at now.
func (l *ledger) offered(tripID string, now time.Time) {
	l.mu.Lock()
	defer l.mu.Unlock()
	r := l.trips[tripID]
	if r == nil {
		if _, ok := l.earlyOffers[tripID]; !ok && len(l.earlyOffers) < maxEarlyOffers {
			l.earlyOffers[tripID] = now
		}
		return
	}
	if r.firstOfferAt.IsZero() {
		r.firstOfferAt = now
	}
}

// thought adds the think time of an answered offer of the trip.
func (l *ledger) thought(tripID string, d time.Duration) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if r := l.trips[tripID]; r != nil {
		r.thinkWall += d
	}
}

// matched records the rider's time to match (the first time only).
func (l *ledger) matched(tripID string, ms float64) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if r := l.trips[tripID]; r != nil && math.IsNaN(r.matchMs) {
		r.matchMs = ms
	}
}

// routed records the pickup leg of the trip's assigned driver: its ETA at
// the streets' speeds, and the leg starting at simulated second sim,
// planned to end at arrive.
func (l *ledger) routed(tripID string, etaS float64, leg report.Leg) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if r := l.trips[tripID]; r != nil {
		r.etaS, r.pickupLeg = etaS, leg
	}
}

// pickedUp records the pickup at simulated second sim and the ride's leg.
func (l *ledger) pickedUp(tripID string, sim float64, ride report.Leg) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if r := l.trips[tripID]; r != nil {
		r.pickedSim, r.rideLeg = sim, ride
		r.pickupLeg.ToSimS = sim
	}
}

// droppedOff records the drop-off at simulated second sim (not the
// wind-down's).
func (l *ledger) droppedOff(tripID string, sim float64) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if r := l.trips[tripID]; r != nil {
		r.rideLeg.ToSimS = sim
	}
}

// observe merges what t shows into the trip's record and reports whether
// this is the first sign of an assignment.
func (l *ledger) observe(t *geomatchv1.Trip) (newlyAssigned bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.observeLocked(t)
}

func (l *ledger) observeLocked(t *geomatchv1.Trip) bool {
	r := l.trips[t.GetTripId()]
	if r == nil {
		return false
	}
	newly := false
	if wasAssigned(t) && !r.assigned {
		r.assigned, newly = true, true
	}
	if !isFinal(r.state) {
		r.state = t.GetState()
	}
	return newly
}

// ended records that the simulator ended the trip itself.
func (l *ledger) ended(tripID string, k endKind) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if r := l.trips[tripID]; r != nil && r.ended == endNone {
		r.ended = k
	}
}

// openTrip is a trip that is not final yet.
type openTrip struct {
	id, riderID string
	state       geomatchv1.TripState
}

// open lists the trips not known to be final.
func (l *ledger) open() []openTrip {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []openTrip
	for id, r := range l.trips {
		if !isFinal(r.state) {
			out = append(out, openTrip{id: id, riderID: r.riderID, state: r.state})
		}
	}
	return out
}

// tally counts the trips by outcome and returns the pickups of the sampled
// requests with their outcomes.
func (l *ledger) tally() report.Trips {
	l.mu.Lock()
	defer l.mu.Unlock()
	var t report.Trips
	for _, r := range l.trips {
		t.Requests++
		if r.assigned {
			t.Assigned++
		}
		switch r.state {
		case geomatchv1.TripState_TRIP_STATE_COMPLETED:
			if r.ended == endCompletedAtEnd {
				t.CompletedAtEnd++
			} else {
				t.Completed++
			}
		case geomatchv1.TripState_TRIP_STATE_NO_DRIVER:
			t.NoDriver++
		case geomatchv1.TripState_TRIP_STATE_CANCELLED:
			switch {
			case r.ended == endCancelledAtEnd:
				t.CancelledAtEnd++
				if !r.assigned {
					t.WaitingAtEnd++
				}
			case r.assigned:
				t.CancelledAfterMatch++
			default:
				t.RiderGaveUp++
			}
		default:
			t.Open++
		}
	}
	if answered := t.Requests - t.WaitingAtEnd; answered > 0 {
		t.MatchRate = float64(t.Assigned) / float64(answered)
	}
	return t
}

// facts returns what the run knows of each trip, for the window's KPIs.
func (l *ledger) facts() []report.TripFact {
	l.mu.Lock()
	defer l.mu.Unlock()
	out := make([]report.TripFact, 0, len(l.trips))
	for _, r := range l.trips {
		out = append(out, factOf(r))
	}
	return out
}

// factOf is one trip's facts.
func factOf(r *tripRec) report.TripFact {
	nan := math.NaN()
	f := report.TripFact{
		RequestedSimS: r.requestedSim, Zone: r.zone, Place: r.place, Assigned: r.assigned,
		WaitingAtEnd: !r.assigned && r.ended == endCancelledAtEnd,
		MatchMs:      r.matchMs, ServiceMs: nan, FirstOfferMs: nan, ETAS: r.etaS, WaitS: nan,
		Pickup: r.pickupLeg, Ride: r.rideLeg,
	}
	f.Unmatched = !r.assigned && (r.state == geomatchv1.TripState_TRIP_STATE_NO_DRIVER ||
		(r.state == geomatchv1.TripState_TRIP_STATE_CANCELLED && r.ended == endGaveUp))
	if !math.IsNaN(r.matchMs) {
		f.ServiceMs = max(r.matchMs-ms(r.thinkWall), 0)
	}
	if !r.firstOfferAt.IsZero() && !r.requestedAt.IsZero() {
		f.FirstOfferMs = ms(r.firstOfferAt.Sub(r.requestedAt))
	}
	if !math.IsNaN(r.pickedSim) && !math.IsNaN(r.requestedSim) {
		f.WaitS = r.pickedSim - r.requestedSim
	}
	return f
}

// pickups returns up to max pickups with their outcomes, for the map.
func (l *ledger) pickups(max int) []report.Pickup {
	l.mu.Lock()
	defer l.mu.Unlock()
	out := make([]report.Pickup, 0, min(max, len(l.trips)))
	for _, r := range l.trips { // map order: a random sample
		if len(out) == max {
			break
		}
		p := r.pickup
		p.Outcome = outcome(r)
		out = append(out, p)
	}
	return out
}

// outcome names how a trip ended, for the map.
func outcome(r *tripRec) string {
	switch {
	case r.assigned:
		return "assigned"
	case r.state == geomatchv1.TripState_TRIP_STATE_NO_DRIVER:
		return "no_driver"
	case r.state == geomatchv1.TripState_TRIP_STATE_CANCELLED && r.ended == endGaveUp:
		return "gave_up"
	}
	return "other"
}

package simulator

import (
	"sync"

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
}

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
	pending map[string]*geomatchv1.RequestRideRequest
	max     int
}

func newLedger(max int) *ledger {
	return &ledger{trips: map[string]*tripRec{}, pending: map[string]*geomatchv1.RequestRideRequest{}, max: max}
}

// full reports whether the ledger holds as many trips as it may.
func (l *ledger) full() bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.trips)+len(l.pending) >= l.max
}

// request records a ride request about to be sent.
func (l *ledger) request(req *geomatchv1.RequestRideRequest) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.pending[req.GetRequestId()] = req
}

// unanswered lists the requests whose trips the run does not know.
func (l *ledger) unanswered() []*geomatchv1.RequestRideRequest {
	l.mu.Lock()
	defer l.mu.Unlock()
	out := make([]*geomatchv1.RequestRideRequest, 0, len(l.pending))
	for _, r := range l.pending {
		out = append(out, r)
	}
	return out
}

// add records a trip the run created (or finds the one it already has);
// requestID's request is answered.
func (l *ledger) add(t *geomatchv1.Trip, requestID, riderID string, pickup report.Pickup) {
	l.mu.Lock()
	defer l.mu.Unlock()
	delete(l.pending, requestID)
	if _, ok := l.trips[t.GetTripId()]; !ok {
		l.trips[t.GetTripId()] = &tripRec{riderID: riderID, pickup: pickup}
	}
	l.observeLocked(t)
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

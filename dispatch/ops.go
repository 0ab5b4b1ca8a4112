package dispatch

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/geomatch/geomatch/events"
	"github.com/geomatch/geomatch/internal/metrics"
	geomatchv1 "github.com/geomatch/geomatch/proto/geomatch/v1"
	"github.com/geomatch/geomatch/store"
	"github.com/geomatch/geomatch/trip"
)

// Errors callers branch on (mapped to gRPC codes by Status).
var (
	// ErrNotFound: no such trip.
	ErrNotFound = errors.New("trip not found")
	// ErrForbidden: the trip belongs to another rider or driver.
	ErrForbidden = errors.New("not your trip")
	// ErrOfferClosed: the offer was withdrawn, answered or expired.
	ErrOfferClosed = errors.New("offer is no longer open")
	// ErrRequestReused: a request id was reused by another rider.
	ErrRequestReused = errors.New("request_id already used by another rider")
	// ErrBusy: the coordinator drives as many trips as it may.
	ErrBusy = errors.New("too many active trips on this node")
)

// maxCASRetries bounds the compare-and-set loop of one trip change.
const maxCASRetries = 16

// TripID derives the trip id from the caller's request id, which makes
// trip creation idempotent: the same request id always names the same trip.
func TripID(requestID string) string {
	sum := sha256.Sum256([]byte(requestID))
	return "trp_" + hex.EncodeToString(sum[:12])
}

// Ops are the stateless trip operations; any router or matcher may run them
// against the shared store.
type Ops struct {
	st  Store
	cfg Config
	log *slog.Logger
}

// NewOps returns the operations over st.
func NewOps(st Store, cfg Config, log *slog.Logger) (*Ops, error) {
	if err := cfg.fill(); err != nil {
		return nil, err
	}
	return &Ops{st: st, cfg: cfg, log: log}, nil
}

// Store returns the store the operations run against (its bus carries
// offers and trip changes to the routers holding the streams).
func (o *Ops) Store() Store { return o.st }

func decode(rec store.TripRecord) (trip.Trip, error) {
	t, err := trip.Unmarshal(rec.Data)
	if err != nil {
		return trip.Trip{}, fmt.Errorf("decode trip %s: %w", rec.ID, err)
	}
	return t, nil
}

// Get returns a trip.
func (o *Ops) Get(ctx context.Context, id string) (trip.Trip, error) {
	t, _, err := o.load(ctx, id)
	return t, err
}

func (o *Ops) load(ctx context.Context, id string) (trip.Trip, store.TripRecord, error) {
	rec, err := o.st.Trip(ctx, id)
	if errors.Is(err, store.ErrNotFound) {
		return trip.Trip{}, rec, fmt.Errorf("trip %s: %w", id, ErrNotFound)
	}
	if err != nil {
		return trip.Trip{}, rec, fmt.Errorf("load trip %s: %w", id, err)
	}
	t, err := decode(rec)
	return t, rec, err
}

// change applies the event decide returns to the trip, as a compare-and-set
// retried on concurrent changes; decide sees the freshest trip each time
// and may return (zero Event, nil) to leave it as it is. The new trip is
// published on the event bus.
func (o *Ops) change(ctx context.Context, id string, decide func(trip.Trip) (trip.Event, error)) (trip.Trip, error) {
	for i := 0; i < maxCASRetries; i++ {
		t, rec, err := o.load(ctx, id)
		if err != nil {
			return trip.Trip{}, err
		}
		ev, err := decide(t)
		if err != nil || ev.Kind == 0 {
			return t, err
		}
		if ev.At.IsZero() {
			ev.At = o.cfg.Now()
		}
		next, err := t.Step(ev)
		if err != nil {
			return t, fmt.Errorf("trip %s: %w", id, err)
		}
		data, err := next.Marshal()
		if err != nil {
			return t, fmt.Errorf("encode trip %s: %w", id, err)
		}
		_, err = o.st.UpdateTrip(ctx, store.TripRecord{ID: id, Version: rec.Version, Final: next.State.Final(), Data: data})
		if errors.Is(err, store.ErrConflict) {
			continue
		}
		if err != nil {
			return t, fmt.Errorf("save trip %s: %w", id, err)
		}
		countStep(t, ev, next)
		o.publishTrip(ctx, next, data)
		return next, nil
	}
	return trip.Trip{}, fmt.Errorf("trip %s kept changing: %w", id, store.ErrConflict)
}

// countStep counts a stored trip step in the dispatch metrics.
func countStep(prev trip.Trip, ev trip.Event, next trip.Trip) {
	switch ev.Kind {
	case trip.EventOffer:
		metrics.CountOffer("sent")
	case trip.EventAccept:
		metrics.CountOffer("accepted")
	case trip.EventDecline:
		metrics.CountOffer("declined")
	case trip.EventOfferExpired:
		metrics.CountOffer("expired")
	}
	if next.State == prev.State || next.State == trip.StateOffered || next.State == trip.StateRequested {
		return
	}
	metrics.CountTrip(next.State.String())
	if next.State == trip.StateAssigned {
		metrics.ObserveTimeToMatch(next.UpdatedAt.Sub(next.CreatedAt))
	}
}

func (o *Ops) publishTrip(ctx context.Context, t trip.Trip, data []byte) {
	if o.cfg.Events != nil {
		if err := o.cfg.Events.Append(ctx, []events.Record{TripRecord(t)}); err != nil {
			o.log.Warn("log trip event", "trip", t.ID, "state", t.State, "err", err)
		}
	}
	if err := o.st.Publish(ctx, store.Event{Kind: store.EventTrip, TripID: t.ID, DriverID: t.Driver, Data: data}); err != nil {
		o.log.Warn("publish trip change", "trip", t.ID, "err", err)
	}
}

// TripRecord is the event log record of a trip's step: a TripEvent keyed
// by the trip, with an id made of the trip, its state, driver and time of
// change (the same step always has the same id).
func TripRecord(t trip.Trip) events.Record {
	pb := ToProto(t)
	tr := tripTransitions[t.State]
	id := events.EventID("trip", t.ID, tr.String(), t.Driver, strconv.FormatInt(pb.GetUpdatedAtMs(), 10))
	now := time.Now().UnixMilli()
	ev := &geomatchv1.Event{EventId: id, TimeMs: now, Payload: &geomatchv1.Event_Trip{Trip: &geomatchv1.TripEvent{Trip: pb, Transition: tr}}}
	data, _ := proto.Marshal(ev) // known fields always encode
	return events.Record{ID: id, Key: t.ID, Kind: events.KindTrip, TimeMs: now, Payload: data}
}

// tripTransitions names the step that led to each state.
var tripTransitions = map[trip.State]geomatchv1.TripTransition{
	trip.StateRequested: geomatchv1.TripTransition_TRIP_TRANSITION_REQUESTED,
	trip.StateOffered:   geomatchv1.TripTransition_TRIP_TRANSITION_OFFERED,
	trip.StateAssigned:  geomatchv1.TripTransition_TRIP_TRANSITION_ASSIGNED,
	trip.StatePickedUp:  geomatchv1.TripTransition_TRIP_TRANSITION_PICKED_UP,
	trip.StateCompleted: geomatchv1.TripTransition_TRIP_TRANSITION_COMPLETED,
	trip.StateCancelled: geomatchv1.TripTransition_TRIP_TRANSITION_CANCELLED,
	trip.StateNoDriver:  geomatchv1.TripTransition_TRIP_TRANSITION_EXPIRED,
}

// freeDriver returns a driver held by tripID to available, whichever way it
// is held (reserved or on the trip). A driver held by something else is
// left alone.
func (o *Ops) freeDriver(ctx context.Context, driverID, tripID string) error {
	if driverID == "" {
		return nil
	}
	d, err := o.st.Driver(ctx, driverID)
	if err != nil {
		return fmt.Errorf("free driver %s of trip %s: %w", driverID, tripID, err)
	}
	if d.TripID != tripID {
		return nil
	}
	switch d.Status {
	case store.StatusReserved:
		_, err = o.st.Release(ctx, driverID, tripID)
	case store.StatusOnTrip:
		_, err = o.st.EndTrip(ctx, driverID, tripID)
	}
	if err != nil && !errors.Is(err, store.ErrConflict) {
		return fmt.Errorf("free driver %s of trip %s: %w", driverID, tripID, err)
	}
	return nil
}

// Cancel cancels a trip for its rider before pickup and frees its driver.
// Cancelling a cancelled trip returns it unchanged.
func (o *Ops) Cancel(ctx context.Context, id, riderID, reason string) (trip.Trip, error) {
	var held string
	t, err := o.change(ctx, id, func(t trip.Trip) (trip.Event, error) {
		if t.RiderID != riderID {
			return trip.Event{}, fmt.Errorf("cancel trip %s: %w", id, ErrForbidden)
		}
		held = t.HeldDriver()
		if t.State == trip.StateCancelled {
			return trip.Event{}, nil
		}
		return trip.Event{Kind: trip.EventCancel, Reason: reason}, nil
	})
	if err != nil {
		return t, err
	}
	// The trip is cancelled first (the rider's intent is never lost), then
	// whatever driver it held goes back to available.
	if err := o.freeDriver(ctx, held, t.ID); err != nil {
		return t, err
	}
	return t, nil
}

// Answer records a driver's answer to an offer. An acceptance first moves
// the driver reserved → on_trip in the store (the arbiter), then assigns
// the trip; a decline releases the driver, then reopens the trip for the
// next candidate.
func (o *Ops) Answer(ctx context.Context, driverID, tripID, offerID string, accept bool) (trip.Trip, error) {
	t, _, err := o.load(ctx, tripID)
	if err != nil {
		return t, err
	}
	if t.State != trip.StateOffered || t.OfferID != offerID || t.Driver != driverID {
		if accept && t.Driver == driverID && (t.State == trip.StateAssigned || t.State == trip.StatePickedUp) {
			return t, nil // a repeated acceptance
		}
		return t, fmt.Errorf("answer to offer %s of trip %s (trip is %s): %w", offerID, tripID, t.State, ErrOfferClosed)
	}
	now := o.cfg.Now()
	if !accept {
		if _, err := o.st.Release(ctx, driverID, tripID); err != nil && !errors.Is(err, store.ErrConflict) {
			return t, fmt.Errorf("release driver %s: %w", driverID, err)
		}
		return o.settle(ctx, tripID, offerID, trip.EventDecline)
	}
	if now.After(t.OfferExpiresAt) {
		return t, fmt.Errorf("accept offer %s of trip %s: expired at %s: %w", offerID, tripID, t.OfferExpiresAt.Format(time.RFC3339Nano), ErrOfferClosed)
	}
	if _, err := o.st.StartTrip(ctx, driverID, tripID, now); err != nil {
		if errors.Is(err, store.ErrConflict) {
			return t, fmt.Errorf("accept offer %s of trip %s: %w: %w", offerID, tripID, ErrOfferClosed, err)
		}
		return t, fmt.Errorf("start trip %s for driver %s: %w", tripID, driverID, err)
	}
	next, err := o.settle(ctx, tripID, offerID, trip.EventOfferExpired)
	if err != nil {
		return next, err
	}
	if next.State != trip.StateAssigned || next.Driver != driverID {
		// The trip moved on (cancelled) while the driver accepted: undo.
		if err := o.freeDriver(ctx, driverID, tripID); err != nil {
			return next, err
		}
		return next, fmt.Errorf("accept offer %s of trip %s (trip is %s): %w", offerID, tripID, next.State, ErrOfferClosed)
	}
	return next, nil
}

// settle moves an offered trip on according to its driver's store record,
// the arbiter of the offer: a driver on the trip means it was accepted
// (assign); otherwise the offer is closed with ifNotAccepted (decline or
// expiry). Trips no longer at offerID are returned unchanged.
func (o *Ops) settle(ctx context.Context, tripID, offerID string, ifNotAccepted trip.EventKind) (trip.Trip, error) {
	return o.change(ctx, tripID, func(t trip.Trip) (trip.Event, error) {
		if t.State != trip.StateOffered || t.OfferID != offerID {
			return trip.Event{}, nil
		}
		d, err := o.st.Driver(ctx, t.Driver)
		if err != nil {
			return trip.Event{}, fmt.Errorf("read driver %s: %w", t.Driver, err)
		}
		if d.Status == store.StatusOnTrip && d.TripID == t.ID {
			return trip.Event{Kind: trip.EventAccept, Driver: t.Driver, OfferID: offerID}, nil
		}
		return trip.Event{Kind: ifNotAccepted, Driver: t.Driver, OfferID: offerID}, nil
	})
}

// expire closes an offer whose time ran out: release the reservation (the
// store refuses if the driver accepted in time), then settle the trip by
// what the driver record says.
func (o *Ops) expire(ctx context.Context, t trip.Trip) (trip.Trip, error) {
	if _, err := o.st.Release(ctx, t.Driver, t.ID); err != nil && !errors.Is(err, store.ErrConflict) {
		return t, fmt.Errorf("release driver %s: %w", t.Driver, err)
	}
	return o.settle(ctx, t.ID, t.OfferID, trip.EventOfferExpired)
}

// Progress records pickup (trip.StatePickedUp) or drop-off
// (trip.StateCompleted) reported by the trip's driver; completion returns
// the driver to available.
func (o *Ops) Progress(ctx context.Context, driverID, tripID string, state trip.State) (trip.Trip, error) {
	var kind trip.EventKind
	switch state {
	case trip.StatePickedUp:
		kind = trip.EventPickUp
	case trip.StateCompleted:
		kind = trip.EventComplete
	default:
		return trip.Trip{}, fmt.Errorf("trip progress: state must be picked_up or completed, got %s: %w", state, trip.ErrTransition)
	}
	t, err := o.change(ctx, tripID, func(t trip.Trip) (trip.Event, error) {
		if t.Driver != driverID || t.State < trip.StateAssigned {
			return trip.Event{}, fmt.Errorf("progress of trip %s: %w", tripID, ErrForbidden)
		}
		if t.State == state {
			return trip.Event{}, nil // a repeated report
		}
		return trip.Event{Kind: kind, Driver: driverID}, nil
	})
	if err != nil {
		return t, err
	}
	if t.State == trip.StateCompleted {
		if err := o.freeDriver(ctx, driverID, tripID); err != nil {
			return t, err
		}
	}
	return t, nil
}

// Repair frees a driver whose store record still holds a trip that has
// ended (a crash between the trip's change and the driver's); routers call
// it when a driver connects.
func (o *Ops) Repair(ctx context.Context, driverID string) error {
	d, err := o.st.Driver(ctx, driverID)
	if err != nil || d.TripID == "" || d.Status != store.StatusOnTrip {
		return err
	}
	t, _, err := o.load(ctx, d.TripID)
	if errors.Is(err, ErrNotFound) || (err == nil && (t.State.Final() || t.Driver != driverID)) {
		o.log.Info("freeing a driver held by an ended trip", "driver", driverID, "trip", d.TripID)
		return o.freeDriver(ctx, driverID, d.TripID)
	}
	return err
}

// PendingOffer returns the driver's open offer, if any (for a driver app
// that reconnects).
func (o *Ops) PendingOffer(ctx context.Context, driverID string) (*store.Offer, error) {
	d, err := o.st.Driver(ctx, driverID)
	if err != nil {
		return nil, fmt.Errorf("read driver %s: %w", driverID, err)
	}
	if d.Status != store.StatusReserved || d.Offer == nil || o.cfg.Now().After(d.Offer.ExpiresAt) {
		return nil, nil
	}
	return d.Offer, nil
}

// DecodeOffer decodes the payload of an EventOffer.
func DecodeOffer(data []byte) (store.Offer, trip.Trip, error) {
	var off store.Offer
	if err := json.Unmarshal(data, &off); err != nil {
		return off, trip.Trip{}, fmt.Errorf("decode offer: %w", err)
	}
	t, err := trip.Unmarshal(off.Trip)
	if err != nil {
		return off, t, fmt.Errorf("decode offered trip: %w", err)
	}
	return off, t, nil
}

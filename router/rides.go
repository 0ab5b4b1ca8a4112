package router

import (
	"context"
	"errors"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/geomatch/geomatch/auth"
	"github.com/geomatch/geomatch/dispatch"
	"github.com/geomatch/geomatch/internal/tracing"
	geomatchv1 "github.com/geomatch/geomatch/proto/geomatch/v1"
	"github.com/geomatch/geomatch/store"
	"github.com/geomatch/geomatch/trip"
)

func (r *Router) rides() (*dispatch.Ops, error) {
	if r.cfg.Rides == nil {
		return nil, status.Error(codes.Unimplemented, "ride matching is not enabled on this router")
	}
	return r.cfg.Rides, nil
}

// RequestRide implements RiderServiceServer: the owner of the pickup's
// shard coordinates the ride.
func (s *riderService) RequestRide(ctx context.Context, req *geomatchv1.RequestRideRequest) (*geomatchv1.Trip, error) {
	if _, err := s.r.rides(); err != nil {
		return nil, err
	}
	if err := dispatch.ValidateRequestRide(req); err != nil {
		return nil, status.Error(codes.InvalidArgument, err.Error())
	}
	// The ride gets the wait asked for plus RideTimeout, but ends a little
	// before the caller's own deadline: a store or an owner that does not
	// answer in time is reported as UNAVAILABLE with a reason, not left to
	// the caller's DEADLINE_EXCEEDED.
	budget := time.Duration(req.GetWaitMs())*time.Millisecond + s.r.cfg.RideTimeout
	if d, ok := ctx.Deadline(); ok {
		left := time.Until(d)
		budget = min(budget, left-answerReserve(left))
	}
	rctx, cancel := context.WithTimeout(ctx, budget)
	defer cancel()
	t, err := s.r.fleet.RequestRide(rctx, req)
	// The ride's own budget ran out (the caller's has not): noticed here,
	// or first by the owner, whose handler ends at the propagated deadline
	// and answers DEADLINE_EXCEEDED a moment before rctx's timer fires.
	if err != nil && ctx.Err() == nil && (errors.Is(rctx.Err(), context.DeadlineExceeded) || status.Code(err) == codes.DeadlineExceeded) {
		return nil, status.Errorf(codes.Unavailable, "request ride: no outcome within %s (the trip store or the pickup's owner is slow): retry with the same request_id, which never makes a second trip: %s",
			budget.Round(time.Millisecond), status.Convert(err).Message())
	}
	return t, err
}

// GetTrip implements RiderServiceServer.
func (s *riderService) GetTrip(ctx context.Context, req *geomatchv1.GetTripRequest) (*geomatchv1.Trip, error) {
	ops, err := s.r.rides()
	if err != nil {
		return nil, err
	}
	if err := dispatch.ValidateGetTrip(req); err != nil {
		return nil, status.Error(codes.InvalidArgument, err.Error())
	}
	ctx, cancel := context.WithTimeout(ctx, s.r.cfg.TripTimeout)
	defer cancel()
	t, err := ops.Get(ctx, req.GetTripId())
	if err != nil {
		return nil, dispatch.Status(err)
	}
	if c := callerFrom(ctx); !c.actsFor(t.RiderID) && !(c.claims.Role == auth.RoleDriver && t.Driver == c.claims.Subject) {
		return nil, status.Errorf(codes.PermissionDenied, "trip_id: trip %s is not a trip of %q", req.GetTripId(), c.claims.Subject)
	}
	return dispatch.ToProto(t), nil
}

// CancelTrip implements RiderServiceServer.
func (s *riderService) CancelTrip(ctx context.Context, req *geomatchv1.CancelTripRequest) (*geomatchv1.Trip, error) {
	ops, err := s.r.rides()
	if err != nil {
		return nil, err
	}
	if err := dispatch.ValidateCancelTrip(req); err != nil {
		return nil, status.Error(codes.InvalidArgument, err.Error())
	}
	// The interceptors made sure rider_id is the caller's own; Cancel
	// refuses a trip of another rider.
	ctx, cancel := context.WithTimeout(ctx, s.r.cfg.TripTimeout)
	defer cancel()
	t, err := ops.Cancel(ctx, req.GetTripId(), req.GetRiderId(), req.GetReason())
	if err != nil {
		return nil, dispatch.Status(err)
	}
	return dispatch.ToProto(t), nil
}

// deliver forwards a bus event to the driver stream it concerns, if that
// stream is on this router.
func (r *Router) deliver(ev store.Event) {
	s := r.session(ev.DriverID)
	if s == nil {
		return
	}
	switch ev.Kind {
	case store.EventOffer:
		off, t, err := dispatch.DecodeOffer(ev.Data)
		if err != nil {
			r.log.Warn("undecodable offer event", "driver", ev.DriverID, "err", err)
			return
		}
		// The delivery continues the ride's trace, and the driver's answer
		// continues the delivery's (onDriverMessage).
		_, span := tracing.Start(dispatch.OfferContext(context.Background(), ev.Data), "router.offer.deliver")
		if sc := span.SpanContext(); sc.IsValid() {
			s.lastOffer.Store(&offerSpan{offerID: off.ID, span: sc})
		}
		if !s.push(&geomatchv1.DriverEvent{Event: &geomatchv1.DriverEvent_Offer{Offer: dispatch.OfferToProto(off, t)}}, true) {
			r.log.Warn("driver stream too slow for an offer, ended it (the driver gets the offer on reconnect)", "driver", ev.DriverID, "trip", ev.TripID)
		}
		span.End()
	case store.EventTrip:
		t, err := trip.Unmarshal(ev.Data)
		if err != nil {
			r.log.Warn("undecodable trip event", "trip", ev.TripID, "err", err)
			return
		}
		if t.Driver != ev.DriverID || t.State < trip.StateAssigned {
			return
		}
		s.push(&geomatchv1.DriverEvent{Event: &geomatchv1.DriverEvent_Trip{Trip: dispatch.ToProto(t)}}, true)
	}
}

// onConnect prepares a driver's new stream: frees the driver from a trip
// that ended while it was away and re-sends its pending offer.
func (r *Router) onConnect(ctx context.Context, driverID string, s *driverSession) {
	ops := r.cfg.Rides
	if ops == nil {
		return
	}
	ctx, cancel := context.WithTimeout(ctx, r.cfg.TripTimeout)
	defer cancel()
	if err := ops.Repair(ctx, driverID); err != nil {
		r.log.Warn("repair driver state", "driver", driverID, "err", err)
	}
	off, err := ops.PendingOffer(ctx, driverID)
	if err != nil || off == nil {
		return
	}
	t, err := trip.Unmarshal(off.Trip)
	if err != nil {
		return
	}
	s.push(&geomatchv1.DriverEvent{Event: &geomatchv1.DriverEvent_Offer{Offer: dispatch.OfferToProto(*off, t)}}, true)
}

// onAnswer applies an offer answer or a trip progress report from a driver
// stream and tells the app the outcome.
func (r *Router) onDriverMessage(ctx context.Context, driverID string, s *driverSession, msg *geomatchv1.DriverMessage) error {
	ops, err := r.rides()
	if err != nil {
		return err
	}
	streamCtx := ctx
	ctx, cancel := context.WithTimeout(ctx, r.cfg.TripTimeout)
	defer cancel()
	var (
		t               trip.Trip
		offerID, tripID string
	)
	switch m := msg.GetMsg().(type) {
	case *geomatchv1.DriverMessage_OfferAnswer:
		offerID, tripID = m.OfferAnswer.GetOfferId(), m.OfferAnswer.GetTripId()
		if err := validateAnswer(m.OfferAnswer); err != nil {
			return status.Error(codes.InvalidArgument, err.Error())
		}
		actx, span := tracing.Start(s.offerContext(ctx, offerID), "router.offer.answer")
		t, err = ops.Answer(actx, driverID, tripID, offerID, m.OfferAnswer.GetAccept())
		tracing.End(span, err)
	case *geomatchv1.DriverMessage_TripProgress:
		tripID = m.TripProgress.GetTripId()
		if err := validateProgress(m.TripProgress); err != nil {
			return status.Error(codes.InvalidArgument, err.Error())
		}
		t, err = ops.Progress(ctx, driverID, tripID, trip.State(m.TripProgress.GetState()))
	default:
		return status.Error(codes.InvalidArgument, "msg: unknown message type")
	}
	if err != nil {
		st, _ := status.FromError(dispatch.Status(err))
		transient := st.Code() == codes.Unavailable || st.Code() == codes.Canceled || st.Code() == codes.DeadlineExceeded
		if transient && streamCtx.Err() != nil {
			return st.Err() // the stream itself ends
		}
		// A store that did not answer in time ends nothing: the driver
		// hears that its message was not applied and may send it again
		// (answers and progress reports are idempotent).
		s.push(&geomatchv1.DriverEvent{Event: &geomatchv1.DriverEvent_OfferClosed{OfferClosed: &geomatchv1.OfferClosed{
			OfferId: offerID, TripId: tripID, Reason: st.Message(), Retryable: transient}}}, true)
		return nil
	}
	if t.Driver == driverID && t.State >= trip.StateAssigned {
		s.push(&geomatchv1.DriverEvent{Event: &geomatchv1.DriverEvent_Trip{Trip: dispatch.ToProto(t)}}, true)
	}
	return nil
}

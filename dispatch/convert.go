package dispatch

import (
	"context"
	"errors"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	geomatchv1 "github.com/geomatch/geomatch/proto/geomatch/v1"
	"github.com/geomatch/geomatch/store"
	"github.com/geomatch/geomatch/trip"
)

// ToProto converts a trip to its public form.
func ToProto(t trip.Trip) *geomatchv1.Trip {
	p := &geomatchv1.Trip{
		TripId: t.ID, RequestId: t.RequestID, RiderId: t.RiderID, DriverId: t.Driver,
		State:           geomatchv1.TripState(t.State),
		Pickup:          &geomatchv1.LatLng{Lat: t.Pickup.Lat, Lng: t.Pickup.Lng},
		Dropoff:         &geomatchv1.LatLng{Lat: t.Dropoff.Lat, Lng: t.Dropoff.Lng},
		VehicleClass:    t.VehicleClass,
		CreatedAtMs:     t.CreatedAt.UnixMilli(),
		UpdatedAtMs:     t.UpdatedAt.UnixMilli(),
		PickupDistanceM: t.PickupDistanceM,
		Reason:          t.Reason,
	}
	if t.State == trip.StateRequested {
		p.DriverId = "" // the last declined driver is not the trip's
	}
	return p
}

// OfferToProto converts an offer to its public form.
func OfferToProto(off store.Offer, t trip.Trip) *geomatchv1.RideOffer {
	return &geomatchv1.RideOffer{OfferId: off.ID, Trip: ToProto(t), ExpiresAtMs: off.ExpiresAt.UnixMilli(), PickupDistanceM: off.PickupDistanceM}
}

// Status maps dispatch errors to gRPC statuses, in one place.
func Status(err error) error {
	if err == nil {
		return nil
	}
	if _, ok := status.FromError(err); ok {
		return err
	}
	var code codes.Code
	switch {
	case errors.Is(err, ErrNotFound):
		code = codes.NotFound
	case errors.Is(err, ErrForbidden):
		code = codes.PermissionDenied
	case errors.Is(err, ErrRequestReused):
		code = codes.AlreadyExists
	case errors.Is(err, ErrOfferClosed), errors.Is(err, trip.ErrTransition):
		code = codes.FailedPrecondition
	case errors.Is(err, ErrBusy):
		code = codes.ResourceExhausted
	case errors.Is(err, context.DeadlineExceeded):
		code = codes.DeadlineExceeded
	case errors.Is(err, context.Canceled):
		code = codes.Canceled
	case errors.Is(err, store.ErrConflict):
		code = codes.Aborted
	default:
		code = codes.Unavailable
	}
	return status.Error(code, err.Error())
}

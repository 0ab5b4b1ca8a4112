package dispatch

import (
	"fmt"

	"github.com/geomatch/geomatch/internal/validate"
	geomatchv1 "github.com/geomatch/geomatch/proto/geomatch/v1"
)

// MaxWaitMs bounds RequestRideRequest.wait_ms.
const MaxWaitMs = 60_000

// ValidateRequestRide checks a ride request; errors name the field.
func ValidateRequestRide(r *geomatchv1.RequestRideRequest) error {
	if err := validate.ID("request_id", r.GetRequestId()); err != nil {
		return err
	}
	if err := validate.ID("rider_id", r.GetRiderId()); err != nil {
		return err
	}
	if err := validate.Position("pickup", r.GetPickup()); err != nil {
		return err
	}
	if err := validate.Position("dropoff", r.GetDropoff()); err != nil {
		return err
	}
	if err := validate.VehicleClass("vehicle_class", r.GetVehicleClass()); err != nil {
		return err
	}
	if w := r.GetWaitMs(); w < 0 || w > MaxWaitMs {
		return fmt.Errorf("wait_ms: must be within [0, %d], got %d", MaxWaitMs, w)
	}
	return nil
}

// ValidateGetTrip checks a trip lookup.
func ValidateGetTrip(r *geomatchv1.GetTripRequest) error {
	return validate.ID("trip_id", r.GetTripId())
}

// ValidateCancelTrip checks a cancellation.
func ValidateCancelTrip(r *geomatchv1.CancelTripRequest) error {
	if err := validate.ID("trip_id", r.GetTripId()); err != nil {
		return err
	}
	if err := validate.ID("rider_id", r.GetRiderId()); err != nil {
		return err
	}
	return validate.Text("reason", r.GetReason(), validate.MaxReasonBytes)
}

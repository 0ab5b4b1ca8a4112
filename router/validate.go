package router

import (
	"fmt"
	"math"
	"time"

	"github.com/geomatch/geomatch/internal/validate"
	geomatchv1 "github.com/geomatch/geomatch/proto/geomatch/v1"
)

// Bounds of the public API. Every request is checked against them before
// anything is applied; a violation is an InvalidArgument naming the field.
const (
	MaxIDBytes           = validate.MaxIDBytes
	MaxVehicleClassBytes = validate.MaxVehicleClassBytes
	MaxUpdatesPerRequest = 10000
	MaxLimit             = 1000
	MaxRadiusM           = 100_000
	// MaxClockSkew is how far in the future a timestamp may be: a driver
	// with a far-future timestamp would have every later update ignored.
	MaxClockSkew = 5 * time.Minute
)

// ValidateLocationUpdate checks one update; field names in errors are
// relative to the update (prefix with the update's path).
func ValidateLocationUpdate(u *geomatchv1.LocationUpdate, now time.Time) error {
	if u == nil {
		return fmt.Errorf("update: required")
	}
	if err := validate.ID("driver_id", u.GetDriverId()); err != nil {
		return err
	}
	if err := validate.Position("position", u.GetPosition()); err != nil {
		return err
	}
	if u.GetTimestampMs() <= 0 {
		return fmt.Errorf("timestamp_ms: required (Unix milliseconds > 0), got %d", u.GetTimestampMs())
	}
	if limit := now.Add(MaxClockSkew).UnixMilli(); u.GetTimestampMs() > limit {
		return fmt.Errorf("timestamp_ms: %d is more than %v in the future", u.GetTimestampMs(), MaxClockSkew)
	}
	if _, ok := geomatchv1.DriverStatus_name[int32(u.GetStatus())]; !ok {
		return fmt.Errorf("status: unknown value %d", u.GetStatus())
	}
	return validate.VehicleClass("vehicle_class", u.GetVehicleClass())
}

// ValidateUpdateLocations checks the request as a whole (not its updates,
// which are judged one by one).
func ValidateUpdateLocations(req *geomatchv1.UpdateLocationsRequest) error {
	if n := len(req.GetUpdates()); n > MaxUpdatesPerRequest {
		return fmt.Errorf("updates: %d updates, at most %d per request", n, MaxUpdatesPerRequest)
	}
	return nil
}

// ValidateNearby checks a nearby-drivers request.
func ValidateNearby(req *geomatchv1.NearbyDriversRequest) error {
	if err := validate.Position("position", req.GetPosition()); err != nil {
		return err
	}
	if l := req.GetLimit(); l <= 0 || l > MaxLimit {
		return fmt.Errorf("limit: must be within [1, %d], got %d", MaxLimit, l)
	}
	if r := req.GetRadiusM(); math.IsNaN(r) || r <= 0 || r > MaxRadiusM {
		return fmt.Errorf("radius_m: must be within (0, %d] meters, got %v", MaxRadiusM, r)
	}
	return validate.VehicleClass("vehicle_class", req.GetVehicleClass())
}

func validateAnswer(a *geomatchv1.OfferAnswer) error {
	if err := validate.ID("offer_answer.offer_id", a.GetOfferId()); err != nil {
		return err
	}
	return validate.ID("offer_answer.trip_id", a.GetTripId())
}

func validateProgress(p *geomatchv1.TripProgress) error {
	if err := validate.ID("trip_progress.trip_id", p.GetTripId()); err != nil {
		return err
	}
	if s := p.GetState(); s != geomatchv1.TripState_TRIP_STATE_PICKED_UP && s != geomatchv1.TripState_TRIP_STATE_COMPLETED {
		return fmt.Errorf("trip_progress.state: must be TRIP_STATE_PICKED_UP or TRIP_STATE_COMPLETED, got %v", s)
	}
	return nil
}

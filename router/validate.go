package router

import (
	"fmt"
	"math"
	"time"
	"unicode/utf8"

	"github.com/geomatch/geomatch/internal/geo"
	geomatchv1 "github.com/geomatch/geomatch/proto/geomatch/v1"
)

// Bounds of the public API. Every request is checked against them before
// anything is applied; a violation is an InvalidArgument naming the field.
const (
	MaxIDBytes           = 128
	MaxVehicleClassBytes = 64
	MaxUpdatesPerRequest = 10000
	MaxLimit             = 1000
	MaxRadiusM           = 100_000
	// MaxClockSkew is how far in the future a timestamp may be: a driver
	// with a far-future timestamp would have every later update ignored.
	MaxClockSkew = 5 * time.Minute
)

func checkID(field, id string) error {
	switch {
	case id == "":
		return fmt.Errorf("%s: required", field)
	case len(id) > MaxIDBytes:
		return fmt.Errorf("%s: %d bytes, at most %d", field, len(id), MaxIDBytes)
	case !utf8.ValidString(id):
		return fmt.Errorf("%s: not valid UTF-8", field)
	}
	return nil
}

func checkVehicleClass(field, class string) error {
	if len(class) > MaxVehicleClassBytes {
		return fmt.Errorf("%s: %d bytes, at most %d", field, len(class), MaxVehicleClassBytes)
	}
	if !utf8.ValidString(class) {
		return fmt.Errorf("%s: not valid UTF-8", field)
	}
	return nil
}

func checkPosition(field string, p *geomatchv1.LatLng) error {
	if p == nil {
		return fmt.Errorf("%s: required", field)
	}
	if err := (geo.LatLng{Lat: p.GetLat(), Lng: p.GetLng()}).Validate(); err != nil {
		return fmt.Errorf("%s.%w", field, err)
	}
	return nil
}

// ValidateLocationUpdate checks one update; field names in errors are
// relative to the update (prefix with the update's path).
func ValidateLocationUpdate(u *geomatchv1.LocationUpdate, now time.Time) error {
	if u == nil {
		return fmt.Errorf("update: required")
	}
	if err := checkID("driver_id", u.GetDriverId()); err != nil {
		return err
	}
	if err := checkPosition("position", u.GetPosition()); err != nil {
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
	return checkVehicleClass("vehicle_class", u.GetVehicleClass())
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
	if err := checkPosition("position", req.GetPosition()); err != nil {
		return err
	}
	if l := req.GetLimit(); l <= 0 || l > MaxLimit {
		return fmt.Errorf("limit: must be within [1, %d], got %d", MaxLimit, l)
	}
	if r := req.GetRadiusM(); math.IsNaN(r) || r <= 0 || r > MaxRadiusM {
		return fmt.Errorf("radius_m: must be within (0, %d] meters, got %v", MaxRadiusM, r)
	}
	return checkVehicleClass("vehicle_class", req.GetVehicleClass())
}

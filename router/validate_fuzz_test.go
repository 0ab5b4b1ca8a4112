package router

import (
	"math"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	geomatchv1 "github.com/geomatch/geomatch/proto/geomatch/v1"
)

// FuzzValidateLocationUpdate: the validator never panics, and whatever it
// accepts is within the documented bounds.
func FuzzValidateLocationUpdate(f *testing.F) {
	f.Add("cab-1", 40.7, -73.9, int64(1700000000000), int32(0), "xl", false)
	f.Add("", 91.0, 0.0, int64(0), int32(9), "", true)
	f.Add(strings.Repeat("x", 129), math.NaN(), math.Inf(1), int64(-1), int32(-1), "\xff", false)
	now := time.UnixMilli(1800000000000)
	f.Fuzz(func(t *testing.T, id string, lat, lng float64, ts int64, st int32, class string, noPos bool) {
		u := &geomatchv1.LocationUpdate{DriverId: id, Position: &geomatchv1.LatLng{Lat: lat, Lng: lng}, TimestampMs: ts, Status: geomatchv1.DriverStatus(st), VehicleClass: class}
		if noPos {
			u.Position = nil
		}
		if ValidateLocationUpdate(u, now) != nil {
			return
		}
		switch {
		case id == "" || len(id) > MaxIDBytes || !utf8.ValidString(id):
			t.Fatalf("accepted driver_id %q", id)
		case noPos || math.IsNaN(lat) || math.IsNaN(lng) || lat < -90 || lat > 90 || lng < -180 || lng > 180:
			t.Fatalf("accepted position %v,%v", lat, lng)
		case ts <= 0 || ts > now.Add(MaxClockSkew).UnixMilli():
			t.Fatalf("accepted timestamp %d", ts)
		case st < 0 || st > int32(geomatchv1.DriverStatus_DRIVER_STATUS_OFFLINE):
			t.Fatalf("accepted status %d", st)
		case len(class) > MaxVehicleClassBytes:
			t.Fatalf("accepted class of %d bytes", len(class))
		}
	})
}

// FuzzValidateNearby: the validator never panics and accepts only requests
// within the documented bounds.
func FuzzValidateNearby(f *testing.F) {
	f.Add(40.7, -73.9, int32(10), 2000.0, "")
	f.Add(math.NaN(), 0.0, int32(0), -1.0, "x")
	f.Fuzz(func(t *testing.T, lat, lng float64, limit int32, radius float64, class string) {
		req := &geomatchv1.NearbyDriversRequest{Position: &geomatchv1.LatLng{Lat: lat, Lng: lng}, Limit: limit, RadiusM: radius, VehicleClass: class}
		if ValidateNearby(req) != nil {
			return
		}
		if limit <= 0 || limit > MaxLimit || !(radius > 0 && radius <= MaxRadiusM) || math.IsNaN(lat) || lat < -90 || lat > 90 || lng < -180 || lng > 180 {
			t.Fatalf("accepted %v", req)
		}
	})
}

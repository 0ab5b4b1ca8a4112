package dispatch

import (
	"math"
	"strings"
	"testing"
	"unicode/utf8"

	"google.golang.org/protobuf/proto"

	"github.com/geomatch/geomatch/internal/validate"
	geomatchv1 "github.com/geomatch/geomatch/proto/geomatch/v1"
)

// FuzzValidateRequestRide: the ride validators never panic, accept only
// what is within the documented bounds, and a request that fails to decode
// from the wire never reaches them.
func FuzzValidateRequestRide(f *testing.F) {
	f.Add("req-1", "rider-1", 40.7, -73.9, 40.8, -73.95, "xl", int64(5000), "changed my mind")
	f.Add("", "", 91.0, 0.0, math.NaN(), math.Inf(-1), "\xff", int64(-1), "")
	f.Add(strings.Repeat("r", 200), "r", -90.0, 180.0, 90.0, -180.0, strings.Repeat("c", 100), int64(MaxWaitMs+1), strings.Repeat("x", 2000))
	f.Fuzz(func(t *testing.T, reqID, rider string, plat, plng, dlat, dlng float64, class string, wait int64, reason string) {
		r := &geomatchv1.RequestRideRequest{RequestId: reqID, RiderId: rider,
			Pickup: &geomatchv1.LatLng{Lat: plat, Lng: plng}, Dropoff: &geomatchv1.LatLng{Lat: dlat, Lng: dlng},
			VehicleClass: class, WaitMs: int32(wait)}
		// Round trip through the wire format, as a server sees it.
		b, err := proto.Marshal(r)
		if err != nil {
			return
		}
		var got geomatchv1.RequestRideRequest
		if err := proto.Unmarshal(b, &got); err != nil {
			t.Fatalf("unmarshal what was marshalled: %v", err)
		}
		if ValidateRequestRide(&got) == nil {
			okPos := func(lat, lng float64) bool { return lat >= -90 && lat <= 90 && lng >= -180 && lng <= 180 }
			switch {
			case reqID == "" || len(reqID) > validate.MaxIDBytes || !utf8.ValidString(reqID):
				t.Fatalf("accepted request_id %q", reqID)
			case rider == "" || len(rider) > validate.MaxIDBytes || !utf8.ValidString(rider):
				t.Fatalf("accepted rider_id %q", rider)
			case !okPos(plat, plng) || !okPos(dlat, dlng):
				t.Fatalf("accepted pickup %v,%v dropoff %v,%v", plat, plng, dlat, dlng)
			case int32(wait) < 0 || int32(wait) > MaxWaitMs:
				t.Fatalf("accepted wait_ms %d", wait)
			}
		}
		c := &geomatchv1.CancelTripRequest{TripId: reqID, RiderId: rider, Reason: reason}
		if ValidateCancelTrip(c) == nil && (len(reason) > validate.MaxReasonBytes || !utf8.ValidString(reason)) {
			t.Fatalf("accepted reason of %d bytes", len(reason))
		}
		_ = ValidateGetTrip(&geomatchv1.GetTripRequest{TripId: reqID})
	})
}

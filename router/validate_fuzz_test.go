package router

import (
	"math"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	matcherv1 "github.com/geomatch/geomatch/proto/geomatch/matcher/v1"
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

// TestMergeKeepsNewestCopyAndOrder: merge dedupes a driver seen on two
// nodes (newest fix wins), orders by distance then id, and cuts at k.
func TestMergeKeepsNewestCopyAndOrder(t *testing.T) {
	type nb = struct {
		id string
		d  float64
		ts int64
	}
	mk := func(ns ...nb) []*matcherNeighbor {
		out := make([]*matcherNeighbor, len(ns))
		for i, n := range ns {
			out[i] = &matcherNeighbor{DriverId: n.id, DistanceM: n.d, TimestampMs: n.ts}
		}
		return out
	}
	got := merge([][]*matcherNeighbor{
		mk(nb{"a", 5, 1}, nb{"c", 7, 1}, nb{"moved", 8, 1}),
		mk(nb{"b", 5, 1}, nb{"moved", 50, 2}, nb{"d", 60, 1}),
	}, 4)
	want := []string{"a", "b", "c", "moved"}
	if len(got) != 4 {
		t.Fatalf("got %d, want 4", len(got))
	}
	for i, id := range want {
		if got[i].GetDriverId() != id {
			t.Fatalf("position %d: %s, want %s (got %v)", i, got[i].GetDriverId(), id, got)
		}
	}
	if got[3].GetDistanceM() != 50 {
		t.Fatalf("moved driver at %v m, want its newest copy at 50 m", got[3].GetDistanceM())
	}
}

type matcherNeighbor = matcherv1.Neighbor

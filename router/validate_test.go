package router_test

import (
	"math"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/geomatch/geomatch/cluster"
	geomatchv1 "github.com/geomatch/geomatch/proto/geomatch/v1"
	"github.com/geomatch/geomatch/router"
)

func ll(lat, lng float64) *geomatchv1.LatLng { return &geomatchv1.LatLng{Lat: lat, Lng: lng} }

// TestUpdateLocationsRejectsBadUpdates: each bad update is rejected with a
// message naming its field, nothing of it is applied, and the good updates
// of the same batch are applied.
func TestUpdateLocationsRejectsBadUpdates(t *testing.T) {
	c := startCluster(t, cluster.DevConfig{Matchers: 3})
	now := time.Now().UnixMilli()
	long := strings.Repeat("x", 129)
	bad := []struct {
		name  string
		u     *geomatchv1.LocationUpdate
		field string
	}{
		{"empty id", &geomatchv1.LocationUpdate{Position: ll(40.7, -74), TimestampMs: now}, "driver_id"},
		{"oversized id", &geomatchv1.LocationUpdate{DriverId: long, Position: ll(40.7, -74), TimestampMs: now}, "driver_id"},
		{"no position", &geomatchv1.LocationUpdate{DriverId: "p0", TimestampMs: now}, "position"},
		{"lat above 90", &geomatchv1.LocationUpdate{DriverId: "p1", Position: ll(90.5, 0), TimestampMs: now}, "position.lat"},
		{"lat below -90", &geomatchv1.LocationUpdate{DriverId: "p2", Position: ll(-91, 0), TimestampMs: now}, "position.lat"},
		{"lng above 180", &geomatchv1.LocationUpdate{DriverId: "p3", Position: ll(0, 180.01), TimestampMs: now}, "position.lng"},
		{"NaN lat", &geomatchv1.LocationUpdate{DriverId: "p4", Position: ll(math.NaN(), 0), TimestampMs: now}, "position.lat"},
		{"Inf lng", &geomatchv1.LocationUpdate{DriverId: "p5", Position: ll(0, math.Inf(-1)), TimestampMs: now}, "position.lng"},
		{"no timestamp", &geomatchv1.LocationUpdate{DriverId: "p6", Position: ll(40.7, -74)}, "timestamp_ms"},
		{"negative timestamp", &geomatchv1.LocationUpdate{DriverId: "p7", Position: ll(40.7, -74), TimestampMs: -5}, "timestamp_ms"},
		{"far-future timestamp", &geomatchv1.LocationUpdate{DriverId: "p8", Position: ll(40.7, -74), TimestampMs: now + int64(time.Hour/time.Millisecond)}, "timestamp_ms"},
		{"unknown status", &geomatchv1.LocationUpdate{DriverId: "p9", Position: ll(40.7, -74), TimestampMs: now, Status: 42}, "status"},
		{"oversized class", &geomatchv1.LocationUpdate{DriverId: "p10", Position: ll(40.7, -74), TimestampMs: now, VehicleClass: strings.Repeat("c", 65)}, "vehicle_class"},
	}
	req := &geomatchv1.UpdateLocationsRequest{}
	for _, b := range bad {
		req.Updates = append(req.Updates, b.u)
	}
	good := &geomatchv1.LocationUpdate{DriverId: "good", Position: ll(40.7, -74), TimestampMs: now}
	req.Updates = append(req.Updates, good)
	resp, err := c.drivers.UpdateLocations(ctxT(t), req)
	if err != nil {
		t.Fatalf("UpdateLocations: %v", err)
	}
	if resp.GetAccepted() != 1 {
		t.Errorf("accepted = %d, want 1 (the good update)", resp.GetAccepted())
	}
	byIndex := map[int32]*geomatchv1.Rejection{}
	for _, rj := range resp.GetRejected() {
		byIndex[rj.GetIndex()] = rj
	}
	for i, b := range bad {
		rj := byIndex[int32(i)]
		switch {
		case rj == nil:
			t.Errorf("%s: not rejected", b.name)
		case rj.GetReason() != geomatchv1.RejectReason_REJECT_REASON_INVALID_ARGUMENT:
			t.Errorf("%s: reason %v, want INVALID_ARGUMENT", b.name, rj.GetReason())
		case !strings.HasPrefix(rj.GetMessage(), b.field):
			t.Errorf("%s: message %q does not name the field %q", b.name, rj.GetMessage(), b.field)
		}
	}
	total := 0
	for _, n := range c.Nodes {
		total += n.Index().Len()
	}
	if total != 1 {
		t.Errorf("the nodes hold %d drivers, want only the good one", total)
	}
}

// TestBadRequestsAreInvalidArgument: whole requests that break a bound are
// refused with InvalidArgument naming the field, and change nothing.
func TestBadRequestsAreInvalidArgument(t *testing.T) {
	c := startCluster(t, cluster.DevConfig{Matchers: 2})
	now := time.Now().UnixMilli()
	big := &geomatchv1.UpdateLocationsRequest{}
	for i := 0; i <= router.MaxUpdatesPerRequest; i++ {
		big.Updates = append(big.Updates, &geomatchv1.LocationUpdate{DriverId: "d", Position: ll(1, 1), TimestampMs: now})
	}
	_, err := c.drivers.UpdateLocations(ctxT(t), big)
	expectInvalid(t, "10001 updates", err, "updates")
	for _, n := range c.Nodes {
		if n.Index().Len() != 0 {
			t.Fatalf("a refused request applied %d drivers on %s", n.Index().Len(), n.ID())
		}
	}

	nearby := []struct {
		name  string
		req   *geomatchv1.NearbyDriversRequest
		field string
	}{
		{"no position", &geomatchv1.NearbyDriversRequest{Limit: 5, RadiusM: 100}, "position"},
		{"bad lat", &geomatchv1.NearbyDriversRequest{Position: ll(100, 0), Limit: 5, RadiusM: 100}, "position.lat"},
		{"NaN lng", &geomatchv1.NearbyDriversRequest{Position: ll(0, math.NaN()), Limit: 5, RadiusM: 100}, "position.lng"},
		{"zero limit", &geomatchv1.NearbyDriversRequest{Position: ll(0, 0), RadiusM: 100}, "limit"},
		{"negative limit", &geomatchv1.NearbyDriversRequest{Position: ll(0, 0), Limit: -1, RadiusM: 100}, "limit"},
		{"huge limit", &geomatchv1.NearbyDriversRequest{Position: ll(0, 0), Limit: 1001, RadiusM: 100}, "limit"},
		{"negative radius", &geomatchv1.NearbyDriversRequest{Position: ll(0, 0), Limit: 5, RadiusM: -1}, "radius_m"},
		{"zero radius", &geomatchv1.NearbyDriversRequest{Position: ll(0, 0), Limit: 5}, "radius_m"},
		{"radius over 100 km", &geomatchv1.NearbyDriversRequest{Position: ll(0, 0), Limit: 5, RadiusM: 100001}, "radius_m"},
		{"NaN radius", &geomatchv1.NearbyDriversRequest{Position: ll(0, 0), Limit: 5, RadiusM: math.NaN()}, "radius_m"},
		{"Inf radius", &geomatchv1.NearbyDriversRequest{Position: ll(0, 0), Limit: 5, RadiusM: math.Inf(1)}, "radius_m"},
		{"oversized class", &geomatchv1.NearbyDriversRequest{Position: ll(0, 0), Limit: 5, RadiusM: 10, VehicleClass: strings.Repeat("c", 65)}, "vehicle_class"},
	}
	for _, tc := range nearby {
		_, err := c.riders.NearbyDrivers(ctxT(t), tc.req)
		expectInvalid(t, tc.name, err, tc.field)
	}
}

func expectInvalid(t *testing.T, name string, err error, field string) {
	t.Helper()
	st, _ := status.FromError(err)
	if st.Code() != codes.InvalidArgument {
		t.Errorf("%s: code %v (%v), want InvalidArgument", name, st.Code(), err)
		return
	}
	if !strings.HasPrefix(st.Message(), field) {
		t.Errorf("%s: message %q does not name the field %q", name, st.Message(), field)
	}
}

// TestOutOfOrderUpdatesAreIgnored: an update older than the last applied
// one is rejected as stale and changes nothing; an equal one is accepted as
// a harmless duplicate.
func TestOutOfOrderUpdatesAreIgnored(t *testing.T) {
	c := startCluster(t, cluster.DevConfig{Matchers: 3})
	send := func(ts int64, lat float64) *geomatchv1.UpdateLocationsResponse {
		resp, err := c.drivers.UpdateLocations(ctxT(t), &geomatchv1.UpdateLocationsRequest{Updates: []*geomatchv1.LocationUpdate{
			{DriverId: "ooo", Position: ll(lat, -73.98), TimestampMs: ts},
		}})
		if err != nil {
			t.Fatal(err)
		}
		return resp
	}
	base := time.Now().UnixMilli() - 10_000
	if r := send(base, 40.75); r.GetAccepted() != 1 {
		t.Fatalf("first update: %v", r)
	}
	r := send(base-1, 40.70)
	if len(r.GetRejected()) != 1 || r.GetRejected()[0].GetReason() != geomatchv1.RejectReason_REJECT_REASON_STALE {
		t.Fatalf("older update: %v, want a STALE rejection", r)
	}
	if r := send(base, 40.75); r.GetAccepted() != 1 {
		t.Fatalf("duplicate update: %v, want accepted", r)
	}
	resp, err := c.riders.NearbyDrivers(ctxT(t), &geomatchv1.NearbyDriversRequest{Position: ll(40.75, -73.98), Limit: 1, RadiusM: 10})
	if err != nil || len(resp.GetDrivers()) != 1 {
		t.Fatalf("driver not at its newest position: %v %v", resp, err)
	}
}

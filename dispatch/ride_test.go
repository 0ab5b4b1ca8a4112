package dispatch_test

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/geomatch/geomatch/cluster"
	"github.com/geomatch/geomatch/dispatch"
	"github.com/geomatch/geomatch/internal/geo"
	"github.com/geomatch/geomatch/internal/metrics"
	geomatchv1 "github.com/geomatch/geomatch/proto/geomatch/v1"
	"github.com/geomatch/geomatch/store"
)

func always(bool) func(*geomatchv1.RideOffer) bool {
	return func(*geomatchv1.RideOffer) bool { return true }
}

// TestRideLifecycle: the nearest driver is offered the trip on its stream,
// accepts, is assigned (the waiting RequestRide returns it), picks up and
// drops off, and is available again.
func TestRideLifecycle(t *testing.T) {
	c := start(t, cluster.DevConfig{Matchers: 3})
	c.place(t, map[string]geo.LatLng{"near": offset(midtown, 0.3), "far": offset(midtown, 2)}, "")
	near := c.connect(t, "near", always(true), nil)
	c.connect(t, "far", always(true), nil)
	tr, err := c.riders.RequestRide(ctxT(t, 20*time.Second), rideReq("req-1", "rider-1", midtown, 10000))
	if err != nil {
		t.Fatal(err)
	}
	if tr.GetState() != geomatchv1.TripState_TRIP_STATE_ASSIGNED || tr.GetDriverId() != "near" || tr.GetTripId() != dispatch.TripID("req-1") {
		t.Fatalf("trip %v, want assigned to the nearest driver", tr)
	}
	if tr.GetPickupDistanceM() < 250 || tr.GetPickupDistanceM() > 350 {
		t.Fatalf("pickup distance %v, want ~300 m", tr.GetPickupDistanceM())
	}
	d, _ := c.Store.Driver(context.Background(), "near")
	if d.Status != store.StatusOnTrip || d.TripID != tr.GetTripId() {
		t.Fatalf("driver record %+v, want on_trip for %s", d, tr.GetTripId())
	}
	for _, st := range []geomatchv1.TripState{geomatchv1.TripState_TRIP_STATE_PICKED_UP, geomatchv1.TripState_TRIP_STATE_COMPLETED} {
		near.send(t, &geomatchv1.DriverMessage{Msg: &geomatchv1.DriverMessage_TripProgress{TripProgress: &geomatchv1.TripProgress{TripId: tr.GetTripId(), State: st}}})
	}
	eventually(t, 5*time.Second, "trip completed", func() bool {
		got, err := c.riders.GetTrip(ctxT(t, 10*time.Second), &geomatchv1.GetTripRequest{TripId: tr.GetTripId()})
		return err == nil && got.GetState() == geomatchv1.TripState_TRIP_STATE_COMPLETED
	})
	// The trip is completed first, then its driver freed (Ops.Progress):
	// a reader can see the one a moment before the other.
	eventually(t, 5*time.Second, "driver available after drop-off", func() bool {
		d, _ = c.Store.Driver(context.Background(), "near")
		return d.Status == store.StatusAvailable
	})
}

// TestDeclineGoesToNextCandidate: a declined offer releases the driver and
// the trip is offered to the next nearest.
func TestDeclineGoesToNextCandidate(t *testing.T) {
	c := start(t, cluster.DevConfig{Matchers: 3})
	c.place(t, map[string]geo.LatLng{"near": offset(midtown, 0.2), "next": offset(midtown, 0.5)}, "")
	near := c.connect(t, "near", func(*geomatchv1.RideOffer) bool { return false }, nil)
	c.connect(t, "next", always(true), nil)
	before := dispatchSeries(t)
	tr, err := c.riders.RequestRide(ctxT(t, 20*time.Second), rideReq("req-d", "rider-1", midtown, 10000))
	if err != nil {
		t.Fatal(err)
	}
	if tr.GetState() != geomatchv1.TripState_TRIP_STATE_ASSIGNED || tr.GetDriverId() != "next" || near.offerCount() != 1 {
		t.Fatalf("trip %v (offers to near: %d), want assigned to next after near declined", tr, near.offerCount())
	}
	// The dispatch metrics counted each step once.
	after := dispatchSeries(t)
	for series, want := range map[string]float64{
		`geomatch_dispatch_trips_total{state="requested"}`:   1,
		`geomatch_dispatch_trips_total{state="assigned"}`:    1,
		`geomatch_dispatch_offers_total{outcome="sent"}`:     2,
		`geomatch_dispatch_offers_total{outcome="declined"}`: 1,
		`geomatch_dispatch_offers_total{outcome="accepted"}`: 1,
		`geomatch_dispatch_offers_total{outcome="expired"}`:  0,
		`geomatch_dispatch_time_to_match_seconds_count`:      1,
	} {
		if got := after[series] - before[series]; got != want {
			t.Errorf("%s rose by %v, want %v", series, got, want)
		}
	}
	if d, _ := c.Store.Driver(context.Background(), "near"); d.Status != store.StatusAvailable {
		t.Fatalf("declining driver %+v, want available", d)
	}
}

// TestUnansweredOffersEndAsNoDriver: offers that expire release their
// drivers; after MaxOffers the trip ends as no_driver.
func TestUnansweredOffersEndAsNoDriver(t *testing.T) {
	cfg := dispatch.DefaultConfig()
	cfg.OfferTimeout, cfg.MaxOffers = 300*time.Millisecond, 2
	c := start(t, cluster.DevConfig{Matchers: 2, Dispatch: cfg})
	c.place(t, map[string]geo.LatLng{"a": offset(midtown, 0.2), "b": offset(midtown, 0.4), "c": offset(midtown, 0.6)}, "")
	for _, id := range []string{"a", "b", "c"} {
		c.connect(t, id, nil, nil) // never answers
	}
	tr, err := c.riders.RequestRide(ctxT(t, 20*time.Second), rideReq("req-x", "rider-1", midtown, 10000))
	if err != nil {
		t.Fatal(err)
	}
	if want := "no driver accepted after 2 offers (0 declined, 2 unanswered: a driver sees offers only on its Connect stream)"; tr.GetState() != geomatchv1.TripState_TRIP_STATE_NO_DRIVER || tr.GetReason() != want {
		t.Fatalf("trip %v, want no_driver: %s", tr, want)
	}
	for _, id := range []string{"a", "b", "c"} {
		if d, _ := c.Store.Driver(context.Background(), id); d.Status != store.StatusAvailable {
			t.Fatalf("driver %s: %+v, want available", id, d)
		}
	}
}

// TestSameRequestIDYieldsOneTrip: RequestRide is idempotent by request_id,
// also when the duplicates race.
func TestSameRequestIDYieldsOneTrip(t *testing.T) {
	c := start(t, cluster.DevConfig{Matchers: 3})
	c.place(t, map[string]geo.LatLng{"d1": offset(midtown, 0.2), "d2": offset(midtown, 0.3)}, "")
	c.connect(t, "d1", always(true), nil)
	c.connect(t, "d2", always(true), nil)
	var wg sync.WaitGroup
	trips := make([]*geomatchv1.Trip, 10)
	for i := range trips {
		wg.Add(1)
		go func() {
			defer wg.Done()
			tr, err := c.riders.RequestRide(ctxT(t, 20*time.Second), rideReq("same", "rider-1", midtown, 10000))
			if err != nil {
				t.Error(err)
				return
			}
			trips[i] = tr
		}()
	}
	wg.Wait()
	for _, tr := range trips {
		if tr.GetTripId() != trips[0].GetTripId() || tr.GetState() != geomatchv1.TripState_TRIP_STATE_ASSIGNED || tr.GetDriverId() != trips[0].GetDriverId() {
			t.Fatalf("duplicate requests saw %v and %v, want one assigned trip", trips[0], tr)
		}
	}
	busy := 0
	for _, id := range []string{"d1", "d2"} {
		if d, _ := c.Store.Driver(context.Background(), id); d.Status != store.StatusAvailable {
			busy++
		}
	}
	if busy != 1 {
		t.Fatalf("%d drivers busy, want exactly 1 (one trip)", busy)
	}
	// Another rider reusing the id is refused.
	_, err := c.riders.RequestRide(ctxT(t, 5*time.Second), rideReq("same", "rider-2", midtown, 0))
	if status.Code(err) != codes.AlreadyExists {
		t.Fatalf("request id reused by another rider: %v, want AlreadyExists", err)
	}
}

// TestCancelReleasesDriver: cancelling an offered or assigned trip frees
// its driver; only the trip's rider may cancel.
func TestCancelReleasesDriver(t *testing.T) {
	c := start(t, cluster.DevConfig{Matchers: 3})
	c.place(t, map[string]geo.LatLng{"slow": offset(midtown, 0.2)}, "")
	slow := c.connect(t, "slow", nil, nil)
	tr, err := c.riders.RequestRide(ctxT(t, 5*time.Second), rideReq("req-c", "rider-1", midtown, 0))
	if err != nil {
		t.Fatal(err)
	}
	eventually(t, 5*time.Second, "the offer", func() bool { return slow.offerCount() == 1 })
	if _, err := c.riders.CancelTrip(ctxT(t, 5*time.Second), &geomatchv1.CancelTripRequest{TripId: tr.GetTripId(), RiderId: "intruder"}); status.Code(err) != codes.PermissionDenied {
		t.Fatalf("cancel by another rider: %v, want PermissionDenied", err)
	}
	got, err := c.riders.CancelTrip(ctxT(t, 5*time.Second), &geomatchv1.CancelTripRequest{TripId: tr.GetTripId(), RiderId: "rider-1"})
	if err != nil || got.GetState() != geomatchv1.TripState_TRIP_STATE_CANCELLED {
		t.Fatalf("cancel: %v %v", got, err)
	}
	if d, _ := c.Store.Driver(context.Background(), "slow"); d.Status != store.StatusAvailable {
		t.Fatalf("driver after cancel %+v, want available", d)
	}
	// Accepting the withdrawn offer is refused with a clear reason.
	slow.mu.Lock()
	off := slow.offers[0]
	slow.mu.Unlock()
	slow.send(t, &geomatchv1.DriverMessage{Msg: &geomatchv1.DriverMessage_OfferAnswer{OfferAnswer: &geomatchv1.OfferAnswer{OfferId: off.GetOfferId(), TripId: off.GetTrip().GetTripId(), Accept: true}}})
	eventually(t, 5*time.Second, "the refusal", func() bool {
		slow.mu.Lock()
		defer slow.mu.Unlock()
		return len(slow.closed) == 1
	})
	if d, _ := c.Store.Driver(context.Background(), "slow"); d.Status != store.StatusAvailable {
		t.Fatalf("driver after a late accept %+v, want available", d)
	}
}

// TestRideRequestsRejectBadInput: every field is checked, nothing is
// created.
func TestRideRequestsRejectBadInput(t *testing.T) {
	c := start(t, cluster.DevConfig{Matchers: 1})
	good := func() *geomatchv1.RequestRideRequest { return rideReq("r", "rider", midtown, 0) }
	long := strings.Repeat("x", 129)
	cases := []struct {
		name  string
		mut   func(*geomatchv1.RequestRideRequest)
		field string
	}{
		{"no request id", func(r *geomatchv1.RequestRideRequest) { r.RequestId = "" }, "request_id"},
		{"long request id", func(r *geomatchv1.RequestRideRequest) { r.RequestId = long }, "request_id"},
		{"no rider", func(r *geomatchv1.RequestRideRequest) { r.RiderId = "" }, "rider_id"},
		{"no pickup", func(r *geomatchv1.RequestRideRequest) { r.Pickup = nil }, "pickup"},
		{"bad pickup", func(r *geomatchv1.RequestRideRequest) { r.Pickup.Lat = 91 }, "pickup.lat"},
		{"no dropoff", func(r *geomatchv1.RequestRideRequest) { r.Dropoff = nil }, "dropoff"},
		{"bad dropoff", func(r *geomatchv1.RequestRideRequest) { r.Dropoff.Lng = -181 }, "dropoff.lng"},
		{"long class", func(r *geomatchv1.RequestRideRequest) { r.VehicleClass = long }, "vehicle_class"},
		{"negative wait", func(r *geomatchv1.RequestRideRequest) { r.WaitMs = -1 }, "wait_ms"},
		{"huge wait", func(r *geomatchv1.RequestRideRequest) { r.WaitMs = 60001 }, "wait_ms"},
	}
	for _, tc := range cases {
		r := good()
		tc.mut(r)
		_, err := c.riders.RequestRide(ctxT(t, 5*time.Second), r)
		if st, _ := status.FromError(err); st.Code() != codes.InvalidArgument || !strings.HasPrefix(st.Message(), tc.field) {
			t.Errorf("%s: %v, want InvalidArgument naming %s", tc.name, err, tc.field)
		}
	}
	if active, _ := c.Store.ActiveTrips(context.Background(), 10); len(active) != 0 {
		t.Fatalf("%d trips created by refused requests", len(active))
	}
	if _, err := c.riders.GetTrip(ctxT(t, 10*time.Second), &geomatchv1.GetTripRequest{}); status.Code(err) != codes.InvalidArgument {
		t.Errorf("GetTrip without id: %v", err)
	}
	if _, err := c.riders.GetTrip(ctxT(t, 10*time.Second), &geomatchv1.GetTripRequest{TripId: "nope"}); status.Code(err) != codes.NotFound {
		t.Errorf("GetTrip of an unknown trip: %v", err)
	}
	if _, err := c.riders.CancelTrip(ctxT(t, 10*time.Second), &geomatchv1.CancelTripRequest{TripId: "x"}); status.Code(err) != codes.InvalidArgument {
		t.Errorf("CancelTrip without rider: %v", err)
	}
}

// dispatchSeries returns the process's dispatch series by name and labels
// (histograms by their _count).
func dispatchSeries(t *testing.T) map[string]float64 {
	t.Helper()
	mfs, err := metrics.NewRegistry().Gather()
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]float64{}
	for _, mf := range mfs {
		if !strings.HasPrefix(mf.GetName(), "geomatch_dispatch_") {
			continue
		}
		for _, m := range mf.GetMetric() {
			name := mf.GetName()
			if h := m.GetHistogram(); h != nil {
				out[name+"_count"] = float64(h.GetSampleCount())
				continue
			}
			var labels []string
			for _, l := range m.GetLabel() {
				labels = append(labels, fmt.Sprintf("%s=%q", l.GetName(), l.GetValue()))
			}
			out[name+"{"+strings.Join(labels, ",")+"}"] = m.GetCounter().GetValue()
		}
	}
	return out
}

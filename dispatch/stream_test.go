package dispatch_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/geomatch/geomatch/cluster"
	"github.com/geomatch/geomatch/internal/geo"
	geomatchv1 "github.com/geomatch/geomatch/proto/geomatch/v1"
	"github.com/geomatch/geomatch/store"
)

// TestReconnectResumesPendingOffer: a driver app whose stream dies with an
// offer pending gets the same offer when it reconnects, and can accept it.
func TestReconnectResumesPendingOffer(t *testing.T) {
	c := start(t, cluster.DevConfig{Matchers: 3})
	c.place(t, map[string]geo.LatLng{"flaky": offset(midtown, 0.2)}, "")
	ctx, cancel := context.WithCancel(context.Background())
	first, err := c.drivers.Connect(ctx)
	if err != nil {
		t.Fatal(err)
	}
	first.Send(&geomatchv1.DriverMessage{Msg: &geomatchv1.DriverMessage_Hello{Hello: &geomatchv1.DriverHello{DriverId: "flaky"}}})
	if _, err := first.Recv(); err != nil {
		t.Fatal(err)
	}
	c.mu.Lock()
	u := &geomatchv1.LocationUpdate{DriverId: "flaky", Position: c.placed["flaky"].GetPosition(), TimestampMs: c.placed["flaky"].GetTimestampMs() + 1}
	c.mu.Unlock()
	first.Send(&geomatchv1.DriverMessage{Msg: &geomatchv1.DriverMessage_Location{Location: u}})
	c.waitOnStream(t, "flaky", u.GetTimestampMs())
	tr, err := c.riders.RequestRide(ctxT(t, 10*time.Second), rideReq("req-r", "rider-1", midtown, 0))
	if err != nil {
		t.Fatal(err)
	}
	var offer *geomatchv1.RideOffer
	for offer == nil {
		ev, err := first.Recv()
		if err != nil {
			t.Fatal(err)
		}
		offer = ev.GetOffer()
	}
	cancel() // the app loses its connection with the offer pending

	again := c.connect(t, "flaky", always(true), nil)
	eventually(t, 5*time.Second, "the offer again on the new stream", func() bool { return again.offerCount() == 1 })
	again.mu.Lock()
	resumed := again.offers[0]
	again.mu.Unlock()
	if resumed.GetOfferId() != offer.GetOfferId() || resumed.GetTrip().GetTripId() != tr.GetTripId() {
		t.Fatalf("resumed offer %v, want %v", resumed, offer)
	}
	eventually(t, 5*time.Second, "the trip assigned", func() bool {
		got, err := c.riders.GetTrip(ctxT(t, 5*time.Second), &geomatchv1.GetTripRequest{TripId: tr.GetTripId()})
		return err == nil && got.GetState() == geomatchv1.TripState_TRIP_STATE_ASSIGNED && got.GetDriverId() == "flaky"
	})
	if d, _ := c.Store.Driver(context.Background(), "flaky"); d.Status != store.StatusOnTrip {
		t.Fatalf("driver %+v, want on_trip", d)
	}
}

// TestDriverMessagesRejectBadInput: malformed answers and progress reports
// end the stream with InvalidArgument naming the field.
func TestDriverMessagesRejectBadInput(t *testing.T) {
	c := start(t, cluster.DevConfig{Matchers: 1})
	for _, tc := range []struct {
		msg   *geomatchv1.DriverMessage
		field string
	}{
		{&geomatchv1.DriverMessage{Msg: &geomatchv1.DriverMessage_OfferAnswer{OfferAnswer: &geomatchv1.OfferAnswer{TripId: "t"}}}, "offer_answer.offer_id"},
		{&geomatchv1.DriverMessage{Msg: &geomatchv1.DriverMessage_OfferAnswer{OfferAnswer: &geomatchv1.OfferAnswer{OfferId: "o"}}}, "offer_answer.trip_id"},
		{&geomatchv1.DriverMessage{Msg: &geomatchv1.DriverMessage_TripProgress{TripProgress: &geomatchv1.TripProgress{State: geomatchv1.TripState_TRIP_STATE_COMPLETED}}}, "trip_progress.trip_id"},
		{&geomatchv1.DriverMessage{Msg: &geomatchv1.DriverMessage_TripProgress{TripProgress: &geomatchv1.TripProgress{TripId: "t", State: geomatchv1.TripState_TRIP_STATE_ASSIGNED}}}, "trip_progress.state"},
	} {
		stream, err := c.drivers.Connect(ctxT(t, 10*time.Second))
		if err != nil {
			t.Fatal(err)
		}
		stream.Send(&geomatchv1.DriverMessage{Msg: &geomatchv1.DriverMessage_Hello{Hello: &geomatchv1.DriverHello{DriverId: "d"}}})
		if _, err := stream.Recv(); err != nil {
			t.Fatal(err)
		}
		stream.Send(tc.msg)
		var err2 error
		for err2 == nil {
			_, err2 = stream.Recv()
		}
		if st, _ := status.FromError(err2); st.Code() != codes.InvalidArgument || !strings.HasPrefix(st.Message(), tc.field) {
			t.Errorf("%s: %v, want InvalidArgument naming it", tc.field, err2)
		}
	}
}

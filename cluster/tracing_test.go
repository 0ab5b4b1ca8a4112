package cluster_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/geomatch/geomatch/cluster"
	"github.com/geomatch/geomatch/internal/redistest"
	"github.com/geomatch/geomatch/internal/tracing"
	"github.com/geomatch/geomatch/matcher"
	geomatchv1 "github.com/geomatch/geomatch/proto/geomatch/v1"
	"github.com/geomatch/geomatch/store"
)

// TestRideIsOneTrace: with tracing on (an in-memory exporter), a ride
// request on an in-process cluster on Redis is one trace: the router's
// RequestRide, the call to the coordinating matcher and its handling
// there, the coordinator's loop, search and offer, the Redis commands of
// each, the offer's delivery on the router that holds the driver's stream
// (across the store's event bus) and the driver's answer, each span the
// child of the one before. A location update and a nearby search are
// traced at the router, and background Redis work starts no trace.
func TestRideIsOneTrace(t *testing.T) {
	addr := redistest.Start(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	exp := tracetest.NewInMemoryExporter()
	shutdown, err := tracing.Setup(ctx, tracing.Config{Exporter: exp, ServiceName: "geomatch-test"})
	if err != nil {
		t.Fatal(err)
	}
	defer shutdown(context.Background())
	st, err := store.NewRedis(ctx, store.RedisOptions{Addr: addr}) // after Setup: traced
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close() // after the cluster stops
	evlog, err := cluster.EventLogFor(st, "")
	if err != nil {
		t.Fatal(err)
	}
	c, err := cluster.StartDev(cluster.DevConfig{
		Matchers: 3, Store: st, Events: evlog,
		Matcher: func(mc *matcher.Config) { mc.Index.TTL = time.Hour },
	})
	if err != nil {
		t.Fatal(err)
	}
	stopped := false
	defer func() {
		if !stopped {
			c.Stop()
		}
	}()
	conn, err := grpc.NewClient(c.RouterAddr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	drivers, riders := geomatchv1.NewDriverServiceClient(conn), geomatchv1.NewRiderServiceClient(conn)

	// A driver app that accepts every offer.
	sctx, stopApp := context.WithCancel(ctx)
	defer stopApp()
	stream, err := drivers.Connect(sctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := stream.Send(&geomatchv1.DriverMessage{Msg: &geomatchv1.DriverMessage_Hello{Hello: &geomatchv1.DriverHello{DriverId: "cab-1"}}}); err != nil {
		t.Fatal(err)
	}
	if ev, err := stream.Recv(); err != nil || ev.GetConnected() == nil {
		t.Fatalf("connect: %v %v", ev, err)
	}
	assigned := make(chan struct{})
	go func() { // ends with the stream (stopApp)
		defer close(assigned)
		for {
			ev, err := stream.Recv()
			if err != nil {
				return
			}
			if off := ev.GetOffer(); off != nil {
				_ = stream.Send(&geomatchv1.DriverMessage{Msg: &geomatchv1.DriverMessage_OfferAnswer{OfferAnswer: &geomatchv1.OfferAnswer{
					OfferId: off.GetOfferId(), TripId: off.GetTrip().GetTripId(), Accept: true}}})
			}
			if tr := ev.GetTrip(); tr != nil && tr.GetState() == geomatchv1.TripState_TRIP_STATE_ASSIGNED {
				return
			}
		}
	}()
	pickup := &geomatchv1.LatLng{Lat: 40.7580, Lng: -73.9855}
	if resp, err := drivers.UpdateLocations(ctx, &geomatchv1.UpdateLocationsRequest{Updates: []*geomatchv1.LocationUpdate{
		{DriverId: "cab-1", Position: &geomatchv1.LatLng{Lat: 40.7590, Lng: -73.9845}, TimestampMs: time.Now().UnixMilli()},
	}}); err != nil || resp.GetAccepted() != 1 {
		t.Fatalf("update: %v %v", resp, err)
	}
	if _, err := riders.NearbyDrivers(ctx, &geomatchv1.NearbyDriversRequest{Position: pickup, Limit: 1, RadiusM: 1000}); err != nil {
		t.Fatal(err)
	}
	tr, err := riders.RequestRide(ctx, &geomatchv1.RequestRideRequest{RequestId: "ride-42", RiderId: "alice", Pickup: pickup,
		Dropoff: &geomatchv1.LatLng{Lat: 40.7061, Lng: -74.0087}, WaitMs: 10000})
	if err != nil || tr.GetDriverId() != "cab-1" {
		t.Fatalf("request ride: %v %v", tr, err)
	}
	select {
	case <-assigned:
	case <-ctx.Done():
		t.Fatal("the driver never heard of its assignment")
	}
	stopApp()
	stopped = true
	if err := c.Stop(); err != nil {
		t.Fatal(err)
	}

	spans := exp.GetSpans()
	find := func(name string, kind trace.SpanKind, parent *tracetest.SpanStub) *tracetest.SpanStub {
		t.Helper()
		for i := range spans {
			s := &spans[i]
			if s.Name == name && s.SpanKind == kind && (parent == nil || s.Parent.SpanID() == parent.SpanContext.SpanID()) {
				return s
			}
		}
		var names []string
		for _, s := range spans {
			names = append(names, fmt.Sprintf("%s(%s)", s.Name, s.SpanKind))
		}
		t.Fatalf("no %s span %q under %v; spans: %s", kind, name, parent, strings.Join(names, " "))
		return nil
	}
	root := find("geomatch.v1.RiderService/RequestRide", trace.SpanKindServer, nil)
	id := root.SpanContext.TraceID()
	if root.Parent.IsValid() {
		t.Errorf("the router's RequestRide has parent %v: public calls start their own trace", root.Parent)
	}
	call := find("geomatch.matcher.v1.DispatchService/RequestRide", trace.SpanKindClient, root)
	coord := find("geomatch.matcher.v1.DispatchService/RequestRide", trace.SpanKindServer, call)
	drive := find("dispatch.drive", trace.SpanKindInternal, coord)
	offer := find("dispatch.offer", trace.SpanKindInternal, drive)
	find("dispatch.search", trace.SpanKindInternal, offer)
	deliver := find("router.offer.deliver", trace.SpanKindInternal, offer)
	answer := find("router.offer.answer", trace.SpanKindInternal, deliver)

	// Redis: the trip created under the matcher's call, the driver
	// reserved under the offer, the answer's writes under the answer.
	byID := map[trace.SpanID]*tracetest.SpanStub{}
	redisUnder := map[trace.SpanID]int{}
	for i := range spans {
		s := &spans[i]
		if s.SpanContext.TraceID() != id {
			continue
		}
		byID[s.SpanContext.SpanID()] = s
		if strings.HasPrefix(s.Name, "redis ") {
			redisUnder[s.Parent.SpanID()]++
		}
	}
	for _, p := range []*tracetest.SpanStub{coord, offer, answer} {
		if redisUnder[p.SpanContext.SpanID()] == 0 {
			t.Errorf("no Redis command under %s", p.Name)
		}
	}
	// One tree: every span of the trace but the root has its parent in it.
	for _, s := range byID {
		if s != root && byID[s.Parent.SpanID()] == nil {
			t.Errorf("span %s of the ride's trace has a parent outside it", s.Name)
		}
	}
	// Every Redis span has a parent: background commands start no trace.
	for _, s := range spans {
		if strings.HasPrefix(s.Name, "redis ") && !s.Parent.IsValid() {
			t.Errorf("root Redis span %s", s.Name)
		}
	}
	for _, name := range []string{"geomatch.v1.DriverService/UpdateLocations", "geomatch.v1.RiderService/NearbyDrivers"} {
		find(name, trace.SpanKindServer, nil)
	}
	if t.Failed() || testing.Verbose() {
		var show func(s *tracetest.SpanStub, depth int)
		show = func(s *tracetest.SpanStub, depth int) {
			t.Logf("%s%s (%s) %v", strings.Repeat("  ", depth), s.Name, s.SpanKind, s.EndTime.Sub(s.StartTime).Round(time.Microsecond))
			for i := range spans {
				if c := &spans[i]; c.Parent.SpanID() == s.SpanContext.SpanID() && c.SpanContext.TraceID() == id {
					show(c, depth+1)
				}
			}
		}
		t.Logf("trace %s:", id)
		show(root, 0)
	}
}

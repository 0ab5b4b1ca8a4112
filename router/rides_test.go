package router_test

import (
	"context"
	"net"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/geomatch/geomatch/cluster"
	"github.com/geomatch/geomatch/membership"
	matcherv1 "github.com/geomatch/geomatch/proto/geomatch/matcher/v1"
	geomatchv1 "github.com/geomatch/geomatch/proto/geomatch/v1"
	"github.com/geomatch/geomatch/shardmap"
)

// hungDispatch is a pickup owner that never decides: it answers at its
// deadline (propagated from the router) with DEADLINE_EXCEEDED, as a
// matcher stuck on a paused store does.
type hungDispatch struct {
	matcherv1.UnimplementedDispatchServiceServer
}

func (hungDispatch) RequestRide(ctx context.Context, _ *matcherv1.RideRequest) (*matcherv1.RideResponse, error) {
	<-ctx.Done()
	return nil, status.FromContextError(ctx.Err()).Err()
}

// TestRideWithoutOutcomeIsUnavailable: when the pickup's owner does not
// decide within the ride's budget, the caller gets UNAVAILABLE with a retry
// hint before its own deadline, never DEADLINE_EXCEEDED, whichever side
// notices the budget's end first.
func TestRideWithoutOutcomeIsUnavailable(t *testing.T) {
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := grpc.NewServer()
	matcherv1.RegisterDispatchServiceServer(srv, hungDispatch{})
	go func() { _ = srv.Serve(lis) }()
	t.Cleanup(srv.Stop)
	hung, err := membership.NewStatic(shardmap.DefaultDoc([]shardmap.Member{{ID: "hung", Addr: lis.Addr().String(), Weight: 1}}))
	if err != nil {
		t.Fatal(err)
	}
	cfg := cluster.DevConfig{Matchers: 1, RouterMembership: func(*membership.Local) membership.Source { return hung }}
	cfg.Router.RideTimeout = 300 * time.Millisecond
	c := startCluster(t, cfg)
	for i := range 5 {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		start := time.Now()
		_, err := c.riders.RequestRide(ctx, &geomatchv1.RequestRideRequest{RequestId: "r-hung-" + string(rune('a'+i)), RiderId: "bob",
			Pickup: ll(40.758, -73.9855), Dropoff: ll(40.70, -74.0), WaitMs: 100})
		cancel()
		if st := status.Convert(err); st.Code() != codes.Unavailable || !strings.Contains(st.Message(), "request_id") {
			t.Fatalf("ride %d: %v after %v, want UNAVAILABLE with a retry hint", i, err, time.Since(start))
		}
	}
}

package client_test

import (
	"context"
	"net"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/geomatch/geomatch/client"
	geomatchv1 "github.com/geomatch/geomatch/proto/geomatch/v1"
)

// flakyRiders answers NearbyDrivers with UNAVAILABLE (a shard moving)
// until it has failed failFirst times.
type flakyRiders struct {
	geomatchv1.UnimplementedRiderServiceServer
	failFirst int32
	code      codes.Code
	calls     atomic.Int32
}

func (f *flakyRiders) NearbyDrivers(context.Context, *geomatchv1.NearbyDriversRequest) (*geomatchv1.NearbyDriversResponse, error) {
	if f.calls.Add(1) <= f.failFirst {
		return nil, status.Error(f.code, "nearby: the ring kept changing")
	}
	return &geomatchv1.NearbyDriversResponse{Drivers: []*geomatchv1.NearbyDriver{{DriverId: "d1"}}}, nil
}

func serveFake(t *testing.T, riders geomatchv1.RiderServiceServer) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := grpc.NewServer()
	geomatchv1.RegisterRiderServiceServer(srv, riders)
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(srv.Stop)
	return ln.Addr().String()
}

// TestNearbyRetriesUnavailable: UNAVAILABLE answers are retried (within
// the policy's attempts); an answer is returned as soon as one comes; a
// policy of one attempt, or a non-retryable code, returns the first error.
func TestNearbyRetriesUnavailable(t *testing.T) {
	fast := client.RetryPolicy{MaxAttempts: 4, InitialBackoff: time.Millisecond, MaxBackoff: 2 * time.Millisecond}
	req := &geomatchv1.NearbyDriversRequest{Position: at(1, 1), Limit: 1, RadiusM: 10}
	for _, tc := range []struct {
		name      string
		failFirst int32
		code      codes.Code
		policy    client.RetryPolicy
		wantCode  codes.Code
		wantCalls int32
	}{
		{"two failures then an answer", 2, codes.Unavailable, fast, codes.OK, 3},
		{"more failures than attempts", 10, codes.Unavailable, fast, codes.Unavailable, 4},
		{"retries off", 2, codes.Unavailable, client.NoRetry, codes.Unavailable, 1},
		{"bad request is not retried", 2, codes.InvalidArgument, fast, codes.InvalidArgument, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := &flakyRiders{failFirst: tc.failFirst, code: tc.code}
			c := dialT(t, serveFake(t, f), client.WithRetry(tc.policy))
			resp, err := c.Nearby(ctxT(t), req)
			if status.Code(err) != tc.wantCode || f.calls.Load() != tc.wantCalls {
				t.Fatalf("got %v after %d calls; want %v after %d", err, f.calls.Load(), tc.wantCode, tc.wantCalls)
			}
			if err == nil && resp.GetDrivers()[0].GetDriverId() != "d1" {
				t.Fatalf("answer %v", resp)
			}
		})
	}
}

package serve

import (
	"context"
	"log/slog"
	"net"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/status"
)

// panicky is a health server whose List handler panics.
type panicky struct {
	healthpb.UnimplementedHealthServer
}

func (panicky) List(context.Context, *healthpb.HealthListRequest) (*healthpb.HealthListResponse, error) {
	panic("boom")
}

// TestServeHealthAndGracefulStop: a served server reports SERVING, and
// Serve returns nil once its context is done.
func TestServeHealthAndGracefulStop(t *testing.T) {
	s := New("test", slog.New(slog.DiscardHandler))
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Serve(ctx, lis, time.Second) }()
	conn, err := grpc.NewClient(lis.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	cctx, ccancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer ccancel()
	resp, err := healthpb.NewHealthClient(conn).Check(cctx, &healthpb.HealthCheckRequest{}, grpc.WaitForReady(true))
	if err != nil || resp.GetStatus() != healthpb.HealthCheckResponse_SERVING {
		t.Fatalf("health: %v %v", resp, err)
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Serve returned %v after a requested stop", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Serve did not return after its context was done")
	}
}

// TestPanicBecomesInternal: a panicking handler answers INTERNAL and the
// server keeps serving.
func TestPanicBecomesInternal(t *testing.T) {
	s := grpc.NewServer(grpc.ChainUnaryInterceptor(recoverUnary(slog.New(slog.DiscardHandler))))
	healthpb.RegisterHealthServer(s, panicky{})
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go s.Serve(lis)
	defer s.Stop()
	conn, err := grpc.NewClient(lis.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	for i := 0; i < 2; i++ {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		_, err = healthpb.NewHealthClient(conn).List(ctx, &healthpb.HealthListRequest{})
		cancel()
		if status.Code(err) != codes.Internal {
			t.Fatalf("call %d: %v, want INTERNAL", i, err)
		}
	}
}

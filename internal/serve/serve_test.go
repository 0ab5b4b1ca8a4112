package serve

import (
	"context"
	"crypto/tls"
	"log/slog"
	"net"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/status"

	"github.com/geomatch/geomatch/internal/tlsconfig"
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

// TestShedWhenSaturated: beyond its limit of calls in flight a server
// answers RESOURCE_EXHAUSTED at once, health checks still pass, and calls
// are taken again as soon as the in-flight ones end.
func TestShedWhenSaturated(t *testing.T) {
	const limit = 3
	shed := shedUnary(limit)
	release := make(chan struct{})
	started := make(chan struct{}, limit)
	slow := func(ctx context.Context, req any) (any, error) {
		started <- struct{}{}
		<-release
		return "done", nil
	}
	info := &grpc.UnaryServerInfo{FullMethod: "/geomatch.v1.RiderService/NearbyDrivers"}
	errs := make(chan error, limit)
	for i := 0; i < limit; i++ {
		go func() {
			_, err := shed(context.Background(), nil, info, slow)
			errs <- err
		}()
	}
	for i := 0; i < limit; i++ {
		<-started
	}
	fast := func(context.Context, any) (any, error) { return "fast", nil }
	if _, err := shed(context.Background(), nil, info, fast); status.Code(err) != codes.ResourceExhausted {
		t.Fatalf("call beyond the limit: %v, want RESOURCE_EXHAUSTED", err)
	}
	health := &grpc.UnaryServerInfo{FullMethod: "/grpc.health.v1.Health/Check"}
	if _, err := shed(context.Background(), nil, health, fast); err != nil {
		t.Fatalf("health check on a saturated server: %v", err)
	}
	close(release)
	for i := 0; i < limit; i++ {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	if resp, err := shed(context.Background(), nil, info, fast); err != nil || resp != "fast" {
		t.Fatalf("after the load: %v, %v", resp, err)
	}
}

// TestTLSServer: a server built with TLS serves clients that trust its CA
// and fails plaintext clients cleanly (UNAVAILABLE, at once).
func TestTLSServer(t *testing.T) {
	g, err := tlsconfig.Generate(t.TempDir(), tlsconfig.DevHosts, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	srvCfg, err := tlsconfig.Server(g.Files, tlsconfig.VerifyIfGiven)
	if err != nil {
		t.Fatal(err)
	}
	s := New("test", slog.New(slog.DiscardHandler), TLS(srvCfg)...)
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Serve(ctx, lis, time.Second) }()
	defer func() {
		cancel()
		<-done
	}()
	check := func(cfg *tls.Config) error {
		conn, err := grpc.NewClient(lis.Addr().String(), DialCreds(cfg))
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		cctx, ccancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer ccancel()
		_, err = healthpb.NewHealthClient(conn).Check(cctx, &healthpb.HealthCheckRequest{})
		return err
	}
	cli, err := tlsconfig.Client(tlsconfig.Files{CA: g.Files.CA})
	if err != nil {
		t.Fatal(err)
	}
	if err := check(cli); err != nil {
		t.Fatalf("TLS client: %v", err)
	}
	if err := check(nil); status.Code(err) != codes.Unavailable {
		t.Fatalf("plaintext client: %v, want UNAVAILABLE", err)
	}
}

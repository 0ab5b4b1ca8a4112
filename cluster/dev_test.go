package cluster_test

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/health/grpc_health_v1"

	"github.com/geomatch/geomatch/cluster"
	"github.com/geomatch/geomatch/internal/servertest"
	geomatchv1 "github.com/geomatch/geomatch/proto/geomatch/v1"
)

// TestDevStartsThroughStartMatcherAndStartRouter: the all-in-one cluster
// is made of the same matchers and router a separate process starts (each
// logs its wiring, "via" the one function), serves the public API with
// every matcher healthy, and stops with nothing left running (goleak).
// cmd/geomatch's TestConsulClusterProcesses checks the same lines in the
// logs of real matcher and router processes.
func TestDevStartsThroughStartMatcherAndStartRouter(t *testing.T) {
	var logs servertest.Output
	c, err := cluster.StartDev(cluster.DevConfig{Matchers: 3, Log: slog.New(slog.NewTextHandler(&logs, nil))})
	if err != nil {
		t.Fatal(err)
	}
	stopped := false
	defer func() {
		if !stopped {
			c.Stop()
		}
	}()
	out := logs.String()
	if n := strings.Count(out, `msg="matcher started"`); n != 3 {
		t.Errorf("%d matchers logged their start, want 3:\n%s", n, out)
	}
	for _, want := range []string{
		`msg="matcher started" node=m1 search="fleet client, own shards in process" services=MatcherService,DispatchService via=cluster.StartMatcher`,
		`msg="router started" matchers="fleet client" services=DriverService,RiderService,AdminService,FenceService,EventService via=cluster.StartRouter`,
	} {
		if !strings.Contains(out, want) {
			t.Errorf("log lacks %q:\n%s", want, out)
		}
	}
	if len(c.Matchers) != 3 || c.Matchers[0].Fleet == nil || c.Matchers[0].Coordinator == nil || c.Fleet == nil {
		t.Fatalf("matchers %d, want 3 with a coordinator searching through a fleet client", len(c.Matchers))
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	for _, m := range c.Matchers {
		if err := waitServing(ctx, m.Addr); err != nil {
			t.Fatalf("matcher %s: %v", m.Node.ID(), err)
		}
	}
	conn, err := grpc.NewClient(c.RouterAddr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	resp, err := geomatchv1.NewRiderServiceClient(conn).NearbyDrivers(ctx, &geomatchv1.NearbyDriversRequest{
		Position: &geomatchv1.LatLng{Lat: 40.75, Lng: -73.98}, Limit: 5, RadiusM: 1000})
	if err != nil || len(resp.GetDrivers()) != 0 {
		t.Fatalf("NearbyDrivers on an empty cluster: %v, %v", resp, err)
	}
	stopped = true
	if err := c.Stop(); err != nil {
		t.Fatalf("stop: %v", err)
	}
}

// waitServing waits until the gRPC health of the server at addr says
// SERVING, or ctx is done.
func waitServing(ctx context.Context, addr string) error {
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		return err
	}
	defer conn.Close()
	for {
		resp, err := grpc_health_v1.NewHealthClient(conn).Check(ctx, &grpc_health_v1.HealthCheckRequest{})
		if err == nil && resp.GetStatus() == grpc_health_v1.HealthCheckResponse_SERVING {
			return nil
		}
		if ctx.Err() != nil {
			return fmt.Errorf("not serving: %v %v", resp, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

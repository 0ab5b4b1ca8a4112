package loadgen

import (
	"context"
	"net"
	"testing"

	"github.com/geomatch/geomatch/cluster"
	"github.com/geomatch/geomatch/resp"
)

// TestRunAgainstRESPDoor runs the Tile38 workload (SET / NEARBY, and the
// pipelined phase) against geomatch's own RESP front door.
func TestRunAgainstRESPDoor(t *testing.T) {
	c, err := cluster.StartDev(cluster.DevConfig{})
	if err != nil {
		t.Fatal(err)
	}
	srv, err := resp.New(resp.Config{}, c.Router, nil)
	if err != nil {
		t.Fatal(err)
	}
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ctx, lis) }()
	t.Cleanup(func() {
		cancel()
		if err := <-served; err != nil {
			t.Errorf("resp serve: %v", err)
		}
		if err := c.Stop(); err != nil {
			t.Errorf("stop cluster: %v", err)
		}
	})
	cfg := shortConfig()
	target, err := NewRESPTarget(lis.Addr().String(), Tile38, cfg.StreamApps)
	if err != nil {
		t.Fatal(err)
	}
	defer target.Close()
	rep, err := Run(context.Background(), cfg, target)
	if err != nil {
		t.Fatal(err)
	}
	checkReport(t, rep, cfg)
	if last := rep.Phases[len(rep.Phases)-1]; last.Phase != PipelinedPhase || last.Ops%PipelineDepth != 0 {
		t.Errorf("last phase %s with %d ops, want %s in multiples of %d", last.Phase, last.Ops, PipelinedPhase, PipelineDepth)
	}
}

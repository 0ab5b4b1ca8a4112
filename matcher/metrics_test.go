package matcher

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	matcherv1 "github.com/geomatch/geomatch/proto/geomatch/matcher/v1"
	geomatchv1 "github.com/geomatch/geomatch/proto/geomatch/v1"
)

func TestCollectorExposesNodeState(t *testing.T) {
	src := twoNodeRing(t)
	n := newNode(t, "a", src)
	runNode(t, n) // Apply follows ring changes, which Run owns
	m, _ := src.Current()
	p, _ := shardOwnedBy(t, m, "a")
	now := time.Now().UnixMilli()
	req := &matcherv1.ApplyRequest{Epoch: m.Epoch(), Updates: []*matcherv1.Update{
		update(m, "d1", p, now), update(m, "d1", p, now), update(m, "d2", p, now),
	}}
	if _, err := apply(n, context.Background(), req); err != nil {
		t.Fatal(err)
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(NewCollector(n))
	for _, name := range []string{"geomatch_matcher_drivers", "geomatch_matcher_drivers_by_status", "geomatch_ring_epoch", "geomatch_matcher_updates_total", "geomatch_shard_moves_total", "geomatch_matcher_ready", "geomatch_matcher_release_waits_total", "geomatch_matcher_last_release_seconds", "geomatch_matcher_standby_updates_total"} {
		if c, err := testutil.GatherAndCount(reg, name); err != nil || c == 0 {
			t.Errorf("%s: %d series, %v", name, c, err)
		}
	}
	want := `
# HELP geomatch_matcher_drivers Drivers held by the node.
# TYPE geomatch_matcher_drivers gauge
geomatch_matcher_drivers{node="a"} 2
`
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want), "geomatch_matcher_drivers"); err != nil {
		t.Error(err)
	}
	if got := n.count.updates[matcherv1.Outcome_OUTCOME_APPLIED].Load(); got != 2 {
		t.Errorf("applied updates counted %d, want 2 (one duplicate)", got)
	}
	if n.count.updates[matcherv1.Outcome_OUTCOME_DUPLICATE].Load() != 1 {
		t.Errorf("duplicates counted %d, want 1", n.count.updates[matcherv1.Outcome_OUTCOME_DUPLICATE].Load())
	}
}

// TestDriversByStatusIsPerNode: the status series are a fixed set per
// node (one per status), whatever the shards held: no per-shard series.
func TestDriversByStatusIsPerNode(t *testing.T) {
	src := twoNodeRing(t)
	n := newNode(t, "a", src)
	ctx := runNode(t, n)
	m, _ := src.Current()
	p, _ := shardOwnedBy(t, m, "a")
	req := &matcherv1.ApplyRequest{Seq: 1, Epoch: m.Epoch(), Updates: []*matcherv1.Update{update(m, "d1", p, 1), update(m, "d2", p, 1)}}
	req.Updates[1].Status = geomatchv1.DriverStatus_DRIVER_STATUS_OFFLINE
	if _, err := apply(n, ctx, req); err != nil {
		t.Fatal(err)
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(NewCollector(n))
	if c, err := testutil.GatherAndCount(reg, "geomatch_matcher_drivers_by_status"); err != nil || c != 5 {
		t.Fatalf("%d series, %v; want one per status", c, err)
	}
	want := `
# HELP geomatch_matcher_drivers_by_status Drivers held by the node, by dispatch status (available, reserved, on_trip, offline; unspecified for a driver whose status was never reported). Per-shard detail is on AdminService.ListShards and the shard map.
# TYPE geomatch_matcher_drivers_by_status gauge
geomatch_matcher_drivers_by_status{node="a",status="available"} 1
geomatch_matcher_drivers_by_status{node="a",status="offline"} 1
geomatch_matcher_drivers_by_status{node="a",status="on_trip"} 0
geomatch_matcher_drivers_by_status{node="a",status="reserved"} 0
geomatch_matcher_drivers_by_status{node="a",status="unspecified"} 0
`
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want), "geomatch_matcher_drivers_by_status"); err != nil {
		t.Fatal(err)
	}
}

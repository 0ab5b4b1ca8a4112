package matcher

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	matcherv1 "github.com/geomatch/geomatch/proto/geomatch/matcher/v1"
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
	for _, name := range []string{"geomatch_matcher_drivers", "geomatch_matcher_shard_drivers", "geomatch_ring_epoch", "geomatch_matcher_updates_total", "geomatch_shard_moves_total", "geomatch_matcher_ready"} {
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

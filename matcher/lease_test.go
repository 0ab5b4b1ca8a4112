package matcher

import (
	"log/slog"
	"strings"
	"sync/atomic"
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	matcherv1 "github.com/geomatch/geomatch/proto/geomatch/matcher/v1"
)

// switchLease is a lease a test turns on and off.
type switchLease struct{ ok atomic.Bool }

func (l *switchLease) Valid() (bool, string) {
	if l.ok.Load() {
		return true, ""
	}
	return false, "ownership lease lapsed: no Consul contact for 2s"
}

func (l *switchLease) ConsulFresh() bool { return l.ok.Load() }

// TestLapsedLeaseServesNothing: a node whose lease lapsed refuses searches
// and update batches with UNAVAILABLE saying why, applies nothing, tells
// peers it has no Consul contact, and serves again once the lease is
// renewed.
func TestLapsedLeaseServesNothing(t *testing.T) {
	src := twoNodeRing(t)
	lease := &switchLease{}
	cfg := DefaultConfig("a")
	cfg.Lease = lease
	n, err := NewNode(cfg, src, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	ctx := runNode(t, n)
	m, _ := src.Current()
	p, shard := shardOwnedBy(t, m, "a")
	batch := &matcherv1.ApplyRequest{Seq: 1, Epoch: m.Epoch(), Updates: []*matcherv1.Update{update(m, "d1", p, 1)}}
	search := &matcherv1.NearbyRequest{Epoch: m.Epoch(), Lat: p.Lat, Lng: p.Lng, RadiusM: 1000, Limit: 5, Shards: []uint64{uint64(shard)}}

	for what, err := range map[string]error{
		"apply":  func() error { _, err := apply(n, ctx, batch); return err }(),
		"nearby": func() error { _, err := nearbyWire(n, ctx, search); return err }(),
	} {
		if status.Code(err) != codes.Unavailable || !strings.Contains(err.Error(), "lease lapsed") {
			t.Fatalf("%s with a lapsed lease: %v, want UNAVAILABLE saying the lease lapsed", what, err)
		}
	}
	if n.ix.Len() != 0 {
		t.Fatalf("%d drivers applied with a lapsed lease", n.ix.Len())
	}
	if n.Stats().ConsulLease {
		t.Fatal("Stats says the node reaches Consul")
	}

	lease.ok.Store(true)
	if _, err := apply(n, ctx, batch); err != nil {
		t.Fatalf("apply with the lease renewed: %v", err)
	}
	resp, err := nearbyWire(n, ctx, search)
	if err != nil || len(resp.GetNeighbors()) != 1 {
		t.Fatalf("nearby with the lease renewed: %v, %v", resp, err)
	}
}

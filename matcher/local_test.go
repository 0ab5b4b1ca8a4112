package matcher

import (
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/geomatch/geomatch/fleet"
	matcherv1 "github.com/geomatch/geomatch/proto/geomatch/matcher/v1"
)

// TestLocalAnswersLikeTheGRPCService: the in-process service gives the same
// answers and the same status codes as the gRPC service: an applied batch
// is found by a search, a bad request is INVALID_ARGUMENT, a shard of
// another node is NotOwner with its typed details, and an oversized batch
// ends the stream with INVALID_ARGUMENT.
func TestLocalAnswersLikeTheGRPCService(t *testing.T) {
	src := twoNodeRing(t)
	m, _ := src.Current()
	a := newNode(t, "a", src)
	ctx := runNode(t, a)
	l := NewLocal(a)
	p, shard := shardOwnedBy(t, m, "a")
	resp, err := l.Applier()(ctx, &matcherv1.ApplyRequest{Seq: 7, Epoch: m.Epoch(), Updates: []*matcherv1.Update{update(m, "d1", p, 1)}})
	if err != nil || resp.GetSeq() != 7 || len(resp.GetExceptions()) != 0 {
		t.Fatalf("Apply = %v, %v; want seq 7 with no exceptions", resp, err)
	}
	found, err := l.Nearby(ctx, &matcherv1.NearbyRequest{Epoch: m.Epoch(), Lat: p.Lat, Lng: p.Lng, RadiusM: 100, Limit: 5, Shards: []uint64{uint64(shard)}})
	if err != nil || len(found.GetNeighbors()) != 1 || found.GetNeighbors()[0].GetDriverId() != "d1" {
		t.Fatalf("Nearby = %v, %v; want d1", found, err)
	}

	if _, err := l.Nearby(ctx, &matcherv1.NearbyRequest{Limit: 0, RadiusM: 1}); status.Code(err) != codes.InvalidArgument {
		t.Errorf("Nearby with limit 0: %v, want INVALID_ARGUMENT", err)
	}
	_, other := shardOwnedBy(t, m, "b")
	_, err = l.Nearby(ctx, &matcherv1.NearbyRequest{Epoch: m.Epoch(), Lat: p.Lat, Lng: p.Lng, RadiusM: 100, Limit: 5, Shards: []uint64{uint64(other)}})
	if no, ok := fleet.AsNotOwner(err); !ok || no.NodeID != "a" || len(no.Shards) != 1 || no.Shards[0] != other {
		t.Errorf("Nearby over b's shard: %v, want NotOwner from a naming the shard", err)
	}
	big := &matcherv1.ApplyRequest{Epoch: m.Epoch(), Updates: make([]*matcherv1.Update, MaxBatch+1)}
	if _, err := l.Applier()(ctx, big); status.Code(err) != codes.InvalidArgument {
		t.Errorf("Apply of %d updates: %v, want INVALID_ARGUMENT", MaxBatch+1, err)
	}
}

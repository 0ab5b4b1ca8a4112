package matcher

import (
	"context"
	"net"
	"testing"

	"google.golang.org/grpc"

	"github.com/geomatch/geomatch/fleet"
	"github.com/geomatch/geomatch/membership"
	matcherv1 "github.com/geomatch/geomatch/proto/geomatch/matcher/v1"
	"github.com/geomatch/geomatch/shardmap"
)

// laggingSource is a node's view of a ring kept elsewhere (up, standing
// for Consul): it moves only when the node refreshes it, as a node whose
// watch has not fired yet.
type laggingSource struct {
	*membership.Local
	up *membership.Local
}

func (s laggingSource) Refresh(context.Context) error {
	m, _ := s.up.Current()
	if cur, _ := s.Local.Current(); m.Epoch() > cur.Epoch() {
		_, err := s.Local.Update(func(d *shardmap.Doc) error { *d = m.Doc(); return nil })
		return err
	}
	return nil
}

// listen opens a free loopback port.
func listen(t *testing.T) net.Listener {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	return lis
}

// serveNode serves n's MatcherService on lis until the test ends.
func serveNode(t *testing.T, n *Node, lis net.Listener) {
	t.Helper()
	srv := grpc.NewServer()
	matcherv1.RegisterMatcherServiceServer(srv, NewServer(n))
	go func() { _ = srv.Serve(lis) }()
	t.Cleanup(srv.Stop)
}

// TestNewOwnerAcknowledgesOnlyOnceTheOldOwnerLetGo: when the ring gives a
// shard to a new owner, the new owner acknowledges no update there until
// the old owner has moved to the new epoch and given the shard up. The old
// owner here has not seen the new ring yet (its watch is late); a router
// that has not either would ask it, and it would answer with the driver's
// position before the acknowledged one. After the acknowledgement it
// refuses such a search instead (NotOwner), at the old epoch too.
func TestNewOwnerAcknowledgesOnlyOnceTheOldOwnerLetGo(t *testing.T) {
	la, lb := listen(t), listen(t)
	doc := shardmap.DefaultDoc([]shardmap.Member{{ID: "a", Addr: la.Addr().String(), Weight: 1}, {ID: "b", Addr: lb.Addr().String(), Weight: 1}})
	doc.Drained = []string{"b"} // a owns every shard
	up, err := membership.NewLocal(doc)
	if err != nil {
		t.Fatal(err)
	}
	own, err := membership.NewLocal(doc)
	if err != nil {
		t.Fatal(err)
	}
	a := newNode(t, "a", laggingSource{Local: own, up: up})
	b := newNode(t, "b", up)
	ctx := runNode(t, a)
	runNode(t, b)
	serveNode(t, a, la)
	serveNode(t, b, lb)

	m1, _ := up.Current()
	undrained := m1.Doc()
	undrained.Drained, undrained.Epoch = nil, m1.Epoch()+1
	next, err := shardmap.NewMap(undrained)
	if err != nil {
		t.Fatal(err)
	}
	p, shard := shardOwnedBy(t, next, "b") // a's at epoch 1, b's at epoch 2
	if _, err := apply(a, ctx, &matcherv1.ApplyRequest{Epoch: m1.Epoch(), Updates: []*matcherv1.Update{update(m1, "d1", p, 1)}}); err != nil {
		t.Fatal(err)
	}
	m2, err := up.Update(func(d *shardmap.Doc) error { d.Drained = nil; return nil })
	if err != nil {
		t.Fatal(err)
	}
	resp, err := apply(b, ctx, &matcherv1.ApplyRequest{Epoch: m2.Epoch(), Updates: []*matcherv1.Update{update(m2, "d1", p, 2)}})
	if err != nil || len(resp.GetExceptions()) != 0 {
		t.Fatalf("b applying the newer update: %v, %v", resp, err)
	}
	// A router still at epoch 1 asks a.
	search := &matcherv1.NearbyRequest{Epoch: m1.Epoch(), Lat: p.Lat, Lng: p.Lng, RadiusM: 1000, Limit: 5, Shards: []uint64{uint64(shard)}}
	got, err := nearbyWire(a, ctx, search)
	if _, ok := fleet.AsNotOwner(err); !ok {
		t.Fatalf("old owner at epoch %d answered after the new owner acknowledged a newer position: %v, %v; want NotOwner", m1.Epoch(), got.GetNeighbors(), err)
	}
	// Whether the batch had to wait depends on how far b's own ring
	// advance got first (1 in 40 runs it found the round over); that it
	// never waited in vain does not.
	if b.count.releaseTimeouts.Load() != 0 {
		t.Fatalf("%d batches applied after the release round timed out; a answered in time", b.count.releaseTimeouts.Load())
	}
}

package matcher

import (
	"slices"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/geomatch/geomatch/membership"
	matcherv1 "github.com/geomatch/geomatch/proto/geomatch/matcher/v1"
	"github.com/geomatch/geomatch/shardmap"
)

// standbyCluster is node b running, with a lost member a (its port
// closed: refused at once) owning part of the ring.
func standbyCluster(t *testing.T) (*membership.Local, *Node) {
	t.Helper()
	la := listen(t)
	addrA := la.Addr().String()
	la.Close()
	src, err := membership.NewLocal(shardmap.DefaultDoc([]shardmap.Member{
		{ID: "a", Addr: addrA, Weight: 1}, {ID: "b", Addr: "127.0.0.1:1", Weight: 1},
	}))
	if err != nil {
		t.Fatal(err)
	}
	b := newNode(t, "b", src)
	runNode(t, b)
	waitReady(t, b)
	return src, b
}

// waitReady waits for n's first warm-up.
func waitReady(t *testing.T, n *Node) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !n.Ready() {
		if time.Now().After(deadline) {
			t.Fatal("node never became ready")
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// TestStandbyCopiesServeFromTheTakeover: updates a lost matcher had
// acknowledged, handed to its successor before the ring changes, are in
// the successor's answers from its first search over the shard it takes
// over (the warm-up applies them before the gate opens), not the store's
// older positions (there is no store here: without the copies, nothing).
func TestStandbyCopiesServeFromTheTakeover(t *testing.T) {
	src, b := standbyCluster(t)
	m1, _ := src.Current()
	p, shard := shardOwnedBy(t, m1, "a")
	srv := NewServer(b)
	resp, err := srv.Standby(t.Context(), &matcherv1.StandbyRequest{FromNode: "a", Epoch: m1.Epoch(),
		Updates: []*matcherv1.Update{update(m1, "d1", p, 1000), update(m1, "d1", p, 900)}})
	if err != nil || resp.GetHeld() != 2 || resp.GetApplied() != 0 {
		t.Fatalf("Standby: %v, %v; want 2 held (one driver, newest kept), 0 applied", resp, err)
	}
	if b.standby.len() != 1 {
		t.Fatalf("%d copies kept, want 1 (the newest of d1)", b.standby.len())
	}
	m2, err := src.Update(func(d *shardmap.Doc) error {
		d.Members = slices.DeleteFunc(d.Members, func(m shardmap.Member) bool { return m.ID == "a" })
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	got, err := nearbyWire(b, t.Context(), &matcherv1.NearbyRequest{Epoch: m2.Epoch(), Lat: p.Lat, Lng: p.Lng, RadiusM: 100, Limit: 5, Shards: []uint64{uint64(shard)}})
	if err != nil {
		t.Fatal(err)
	}
	if len(got.GetNeighbors()) != 1 || got.GetNeighbors()[0].GetDriverId() != "d1" || got.GetNeighbors()[0].GetTimestampMs() != 1000 {
		t.Fatalf("first search after the takeover: %v, want d1 at ts 1000", got.GetNeighbors())
	}
	if b.standby.len() != 0 {
		t.Fatalf("%d copies still kept after the takeover", b.standby.len())
	}
}

// TestStandbyForAShardServedIsAppliedAtOnce: a hand-over that arrives
// after the ring change (the router was late) is applied at once, never
// over a newer position.
func TestStandbyForAShardServedIsAppliedAtOnce(t *testing.T) {
	src, b := standbyCluster(t)
	m, _ := src.Current()
	p, shard := shardOwnedBy(t, m, "b")
	if _, err := apply(b, t.Context(), &matcherv1.ApplyRequest{Epoch: m.Epoch(), Updates: []*matcherv1.Update{update(m, "newer", p, 5000)}}); err != nil {
		t.Fatal(err)
	}
	resp, err := NewServer(b).Standby(t.Context(), &matcherv1.StandbyRequest{FromNode: "a", Epoch: m.Epoch(),
		Updates: []*matcherv1.Update{update(m, "d1", p, 1000), update(m, "newer", p, 4000)}})
	if err != nil || resp.GetApplied() != 1 {
		t.Fatalf("Standby: %v, %v; want d1 applied (the copy of newer is older than what is held)", resp, err)
	}
	got, err := nearbyWire(b, t.Context(), &matcherv1.NearbyRequest{Epoch: m.Epoch(), Lat: p.Lat, Lng: p.Lng, RadiusM: 10, Limit: 5, Shards: []uint64{uint64(shard)}})
	held := map[string]int64{}
	for _, d := range got.GetNeighbors() {
		held[d.GetDriverId()] = d.GetTimestampMs()
	}
	if err != nil || len(held) != 2 || held["d1"] != 1000 || held["newer"] != 5000 {
		t.Fatalf("search: %v, %v; want d1 at ts 1000 and newer at its own ts 5000", got.GetNeighbors(), err)
	}
}

// TestStandbyRefusesBadInput: an invalid update refuses the whole call,
// naming it, and keeps nothing.
func TestStandbyRefusesBadInput(t *testing.T) {
	src, b := standbyCluster(t)
	m, _ := src.Current()
	p, _ := shardOwnedBy(t, m, "a")
	bad := update(m, "d2", p, 0)
	_, err := NewServer(b).Standby(t.Context(), &matcherv1.StandbyRequest{Updates: []*matcherv1.Update{update(m, "d1", p, 1000), bad}})
	if status.Code(err) != codes.InvalidArgument || !strings.Contains(status.Convert(err).Message(), "updates[1]") {
		t.Fatalf("err %v, want InvalidArgument naming updates[1]", err)
	}
	if b.standby.len() != 0 {
		t.Fatalf("%d copies kept after a refused call", b.standby.len())
	}
}

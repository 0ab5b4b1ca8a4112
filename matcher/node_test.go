package matcher

import (
	"context"
	"errors"
	"log/slog"
	"testing"
	"time"

	"github.com/uber/h3-go/v4"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/geomatch/geomatch/fleet"
	"github.com/geomatch/geomatch/internal/geo"
	"github.com/geomatch/geomatch/membership"
	matcherv1 "github.com/geomatch/geomatch/proto/geomatch/matcher/v1"
	"github.com/geomatch/geomatch/shardmap"
	"github.com/geomatch/geomatch/store"
)

var nyc = geo.LatLng{Lat: 40.7580, Lng: -73.9855}

func twoNodeRing(t *testing.T) *membership.Local {
	t.Helper()
	src, err := membership.NewLocal(shardmap.DefaultDoc([]shardmap.Member{{ID: "a", Addr: "a:1", Weight: 1}, {ID: "b", Addr: "b:1", Weight: 1}}))
	if err != nil {
		t.Fatal(err)
	}
	return src
}

func newNode(t *testing.T, id string, src membership.Source) *Node {
	t.Helper()
	n, err := NewNode(DefaultConfig(id), src, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// runNode runs n until the test ends, and fails the test if Run fails;
// the context is the node's, done when the test ends.
func runNode(t testing.TB, n *Node) context.Context {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- n.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("node %s: %v", n.cfg.NodeID, err)
		}
	})
	return ctx
}

// shardOwnedBy finds a point near New York whose shard the member owns.
func shardOwnedBy(t *testing.T, m *shardmap.Map, id string) (geo.LatLng, h3.Cell) {
	t.Helper()
	for i := 0; i < 400; i++ {
		p := geo.LatLng{Lat: nyc.Lat + float64(i%20)*0.01, Lng: nyc.Lng + float64(i/20)*0.01}
		_, shard, owner, ok := m.Locate(p)
		if ok && owner.ID == id {
			return p, shard
		}
	}
	t.Fatalf("no shard of %s found near New York", id)
	return geo.LatLng{}, 0
}

func update(m *shardmap.Map, id string, p geo.LatLng, ts int64) *matcherv1.Update {
	return &matcherv1.Update{DriverId: id, Lat: p.Lat, Lng: p.Lng, TimestampMs: ts, FineCell: uint64(m.Layout().FineCell(p))}
}

// apply sends one wire batch through the node, as its gRPC service does.
func apply(n *Node, ctx context.Context, req *matcherv1.ApplyRequest) (*matcherv1.ApplyResponse, error) {
	return n.applyWire(ctx, req, &ApplyScratch{})
}

// nearbyWire asks the node one wire search, as its gRPC service does.
func nearbyWire(n *Node, ctx context.Context, req *matcherv1.NearbyRequest) (*matcherv1.NearbyResponse, error) {
	return n.nearbyWire(ctx, req)
}

func outcomes(resp *matcherv1.ApplyResponse, n int) []matcherv1.Outcome {
	out := make([]matcherv1.Outcome, n)
	for i := range out {
		out[i] = matcherv1.Outcome_OUTCOME_APPLIED
	}
	for _, e := range resp.GetExceptions() {
		out[e.GetIndex()] = e.GetOutcome()
	}
	return out
}

// TestApplyOutcomes: a node applies updates for its shards and refuses the
// others (NotOwner) and malformed ones (Invalid) one by one.
func TestApplyOutcomes(t *testing.T) {
	src := twoNodeRing(t)
	m, _ := src.Current()
	a := newNode(t, "a", src)
	runNode(t, a) // Apply and Nearby follow ring changes, which Run owns
	mine, _ := shardOwnedBy(t, m, "a")
	theirs, _ := shardOwnedBy(t, m, "b")
	now := time.Now().UnixMilli()
	bad := update(m, "x", mine, now)
	bad.FineCell = uint64(h3.LatLngToCell(h3.LatLng{Lat: mine.Lat, Lng: mine.Lng}, 3)) // wrong resolution
	req := &matcherv1.ApplyRequest{Seq: 7, Epoch: m.Epoch(), Updates: []*matcherv1.Update{
		update(m, "d1", mine, now),
		update(m, "d2", theirs, now),
		bad,
		{DriverId: "", Lat: mine.Lat, Lng: mine.Lng, TimestampMs: now, FineCell: uint64(m.Layout().FineCell(mine))},
		update(m, "d1", mine, now-1),
	}}
	resp, err := apply(a, context.Background(), req)
	if err != nil {
		t.Fatal(err)
	}
	want := []matcherv1.Outcome{
		matcherv1.Outcome_OUTCOME_APPLIED, matcherv1.Outcome_OUTCOME_NOT_OWNER, matcherv1.Outcome_OUTCOME_INVALID,
		matcherv1.Outcome_OUTCOME_INVALID, matcherv1.Outcome_OUTCOME_STALE,
	}
	got := outcomes(resp, len(want))
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("update %d: %v, want %v", i, got[i], want[i])
		}
	}
	if resp.GetSeq() != 7 || resp.GetEpoch() != m.Epoch() || len(resp.GetClaimed()) != 1 || resp.GetClaimed()[0] != 0 {
		t.Errorf("response header %v", resp)
	}
	if a.Index().Len() != 1 {
		t.Errorf("node holds %d drivers, want 1", a.Index().Len())
	}
}

// TestEpochRules checks the ownership rules of the package doc for a caller
// at epoch E and a node at epoch N.
func TestEpochRules(t *testing.T) {
	src := twoNodeRing(t)
	m1, _ := src.Current()
	a := newNode(t, "a", src)
	runNode(t, a) // Apply and Nearby follow ring changes, which Run owns
	_, mineAt1 := shardOwnedBy(t, m1, "a")
	_, theirsAt1 := shardOwnedBy(t, m1, "b")
	// Epoch 2: b is drained, a owns everything.
	m2, err := src.Update(func(d *shardmap.Doc) error { d.Drained = []string{"b"}; return nil })
	if err != nil {
		t.Fatal(err)
	}
	nearby := func(epoch uint64, shard h3.Cell) error {
		_, err := nearbyWire(a, context.Background(), &matcherv1.NearbyRequest{
			Epoch: epoch, Lat: nyc.Lat, Lng: nyc.Lng, RadiusM: 1000, Limit: 5, Shards: []uint64{uint64(shard)},
		})
		return err
	}
	tests := []struct {
		name        string
		epoch       uint64
		shard       h3.Cell
		wantRefused bool
	}{
		{"same epoch, owned", m2.Epoch(), mineAt1, false},
		{"same epoch, owned after the change", m2.Epoch(), theirsAt1, false},
		{"caller behind, owned now", m1.Epoch(), theirsAt1, false},
		{"node behind the caller", m2.Epoch() + 5, mineAt1, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := nearby(tt.epoch, tt.shard)
			no, refused := fleet.AsNotOwner(err)
			if refused != tt.wantRefused {
				t.Fatalf("err = %v, want refused=%v", err, tt.wantRefused)
			}
			if no != nil && no.Epoch != m2.Epoch() {
				t.Fatalf("NotOwner carries epoch %d, want the node's %d", no.Epoch, m2.Epoch())
			}
		})
	}
	// Epoch 3: b is back; a caller at epoch 3 asking a for b's shard is refused.
	m3, err := src.Update(func(d *shardmap.Doc) error { d.Drained = nil; return nil })
	if err != nil {
		t.Fatal(err)
	}
	_, theirs := shardOwnedBy(t, m3, "b")
	if no, ok := fleet.AsNotOwner(nearby(m3.Epoch(), theirs)); !ok || no.Epoch != m3.Epoch() || len(no.Shards) != 1 || no.Shards[0] != theirs {
		t.Fatalf("asking a for b's shard: %v, want NotOwner at epoch %d naming the shard", err, m3.Epoch())
	}
}

// TestNotOwnerTravelsOverGRPC: the typed error survives the gRPC status
// round trip with its epoch and shards.
func TestNotOwnerTravelsOverGRPC(t *testing.T) {
	orig := &shardmap.NotOwnerError{NodeID: "m2", Epoch: 9, Shards: []h3.Cell{h3.LatLngToCell(h3.LatLng{Lat: 1, Lng: 2}, 7)}}
	got, ok := fleet.AsNotOwner(toStatus(orig))
	if !ok || got.NodeID != "m2" || got.Epoch != 9 || len(got.Shards) != 1 || got.Shards[0] != orig.Shards[0] {
		t.Fatalf("AsNotOwner(status) = %+v, %v", got, ok)
	}
	if _, ok := fleet.AsNotOwner(errors.New("other")); ok {
		t.Fatal("a plain error is not NotOwner")
	}
}

// TestNodeDropsShardsItLoses: when the ring moves a shard away, the node
// forgets its drivers.
func TestNodeDropsShardsItLoses(t *testing.T) {
	src := twoNodeRing(t)
	m, _ := src.Current()
	a := newNode(t, "a", src)
	ctx := runNode(t, a)
	p, _ := shardOwnedBy(t, m, "a")
	if _, err := apply(a, ctx, &matcherv1.ApplyRequest{Epoch: m.Epoch(), Updates: []*matcherv1.Update{update(m, "d1", p, 1)}}); err != nil {
		t.Fatal(err)
	}
	if _, err := src.Update(func(d *shardmap.Doc) error { d.Drained = []string{"a"}; return nil }); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for a.Index().Len() != 0 {
		if time.Now().After(deadline) {
			t.Fatal("node kept the drivers of a shard it no longer owns")
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// TestNearbyRejectsMalformedRequests: the internal API checks its bounds too.
func TestNearbyRejectsMalformedRequests(t *testing.T) {
	src := twoNodeRing(t)
	a := newNode(t, "a", src)
	runNode(t, a) // Apply and Nearby follow ring changes, which Run owns
	for _, req := range []*matcherv1.NearbyRequest{
		{Lat: 91, Limit: 1, RadiusM: 1},
		{Limit: 0, RadiusM: 1},
		{Limit: MaxLimit + 1, RadiusM: 1},
		{Limit: 1, RadiusM: -1},
		{Limit: 1, RadiusM: MaxRadiusM + 1},
		{Limit: 1, RadiusM: 1, Status: 99},
	} {
		if _, err := nearbyWire(a, context.Background(), req); status.Code(err) != codes.InvalidArgument {
			t.Errorf("Nearby(%v) = %v, want invalid", req, err)
		}
	}
}

// TestPositionsAreWrittenBehind: applied positions reach the store grouped
// by shard, and a driver that moves to another shard leaves the old one.
func TestPositionsAreWrittenBehind(t *testing.T) {
	src := twoNodeRing(t)
	m, _ := src.Current()
	st := store.NewMemory()
	cfg := DefaultConfig("a")
	cfg.Store = st
	a, err := NewNode(cfg, src, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	ctx := runNode(t, a)
	var shards []h3.Cell
	var points []geo.LatLng
	for i := 0; i < 400 && len(shards) < 2; i++ {
		p := geo.LatLng{Lat: nyc.Lat + float64(i%20)*0.01, Lng: nyc.Lng + float64(i/20)*0.01}
		_, shard, owner, ok := m.Locate(p)
		if ok && owner.ID == "a" && (len(shards) == 0 || shards[0] != shard) {
			shards, points = append(shards, shard), append(points, p)
		}
	}
	apply := func(p geo.LatLng, ts int64) {
		if _, err := apply(a, ctx, &matcherv1.ApplyRequest{Epoch: m.Epoch(), Updates: []*matcherv1.Update{update(m, "d1", p, ts)}}); err != nil {
			t.Fatal(err)
		}
	}
	has := func(shard h3.Cell) bool {
		ps, err := st.Positions(ctx, uint64(shard))
		return err == nil && len(ps) == 1 && ps[0].DriverID == "d1"
	}
	apply(points[0], 1)
	waitUntil(t, func() bool { return has(shards[0]) })
	apply(points[1], 2)
	waitUntil(t, func() bool { return has(shards[1]) && !has(shards[0]) })
}

func waitUntil(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not met in 5 s")
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestEvictionMeetsANewerCopy: an eviction asked by a claim that was
// answered late (the driver has moved on to this node since) leaves this
// node's newer copy alone and reports it, with the claimer, in
// ApplyResponse.newer; an eviction of an older copy evicts it.
func TestEvictionMeetsANewerCopy(t *testing.T) {
	src := twoNodeRing(t)
	m, _ := src.Current()
	a := newNode(t, "a", src)
	runNode(t, a)
	mine, _ := shardOwnedBy(t, m, "a")
	now := time.Now().UnixMilli()
	if _, err := apply(a, context.Background(), &matcherv1.ApplyRequest{Epoch: m.Epoch(), Updates: []*matcherv1.Update{
		update(m, "d1", mine, now), update(m, "d2", mine, now),
	}}); err != nil {
		t.Fatal(err)
	}
	resp, err := apply(a, context.Background(), &matcherv1.ApplyRequest{Epoch: m.Epoch(), Evictions: []*matcherv1.Eviction{
		{DriverId: "d1", OlderThanMs: now - 1000, ClaimedBy: "b"}, // b's claim came late: a holds d1 newer
		{DriverId: "d2", OlderThanMs: now + 1000, ClaimedBy: "b"}, // b's claim is newer: d2 goes
	}})
	if err != nil {
		t.Fatal(err)
	}
	if n := resp.GetNewer(); len(n) != 1 || n[0].GetDriverId() != "d1" || n[0].GetOlderThanMs() != now || n[0].GetClaimedBy() != "b" {
		t.Fatalf("newer %v, want d1 at %d claimed by b", n, now)
	}
	if _, ok := a.Index().Get("d1"); !ok {
		t.Error("d1, newer here, was evicted")
	}
	if _, ok := a.Index().Get("d2"); ok {
		t.Error("d2, older here, was not evicted")
	}
}

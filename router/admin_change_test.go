package router_test

import (
	"context"
	"fmt"
	"log/slog"
	"math"
	"net"
	"slices"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"

	"github.com/geomatch/geomatch/auth"
	"github.com/geomatch/geomatch/cluster"
	"github.com/geomatch/geomatch/fleet"
	"github.com/geomatch/geomatch/internal/geo"
	"github.com/geomatch/geomatch/membership"
	geomatchv1 "github.com/geomatch/geomatch/proto/geomatch/v1"
	"github.com/geomatch/geomatch/router"
	"github.com/geomatch/geomatch/shardmap"
)

// manhattanFleet is n drivers within 6 km of Times Square: some tens of
// resolution-7 shards.
func manhattanFleet(n int) []fleetDriver {
	r := newRand()
	ts := time.Now().UnixMilli() - 1000
	fleet := make([]fleetDriver, n)
	for i := range fleet {
		fleet[i] = fleetDriver{id: fmt.Sprintf("d%05d", i), pos: jitter(r, geo.LatLng{Lat: 40.7580, Lng: -73.9855}, 6000), ts: ts}
	}
	return fleet
}

// ring returns the router's ring document.
func (c *testCluster) ring(t *testing.T) *geomatchv1.RingDocument {
	t.Helper()
	d, err := c.admin.GetRing(ctxT(t), &geomatchv1.GetRingRequest{})
	if err != nil {
		t.Fatalf("GetRing: %v", err)
	}
	return d
}

// shards returns the shards holding drivers, by cell, once ListShards
// agrees with want (every cell of want owned as it says; nil: at once),
// failing after a deadline.
func (c *testCluster) shards(t *testing.T, want func(*geomatchv1.ListShardsResponse) string) map[string]*geomatchv1.ShardInfo {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for {
		resp, err := c.admin.ListShards(ctxT(t), &geomatchv1.ListShardsRequest{Limit: 100000})
		if err != nil {
			t.Fatalf("ListShards: %v", err)
		}
		why := ""
		if want != nil {
			why = want(resp)
		}
		if why == "" {
			out := map[string]*geomatchv1.ShardInfo{}
			for _, s := range resp.GetShards() {
				if s.GetDrivers() > 0 {
					out[s.GetCell()] = s
				}
			}
			return out
		}
		if time.Now().After(deadline) {
			t.Fatalf("ListShards at epoch %d: %s", resp.GetEpoch(), why)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// ownedBy is a ListShards condition: the epoch is at least epoch, the
// shards hold the whole fleet of n drivers (none in transit between
// nodes), and each cell of owners holds drivers on the node given.
func ownedBy(epoch uint64, n int, owners map[string]string) func(*geomatchv1.ListShardsResponse) string {
	return func(resp *geomatchv1.ListShardsResponse) string {
		if resp.GetEpoch() < epoch {
			return fmt.Sprintf("epoch %d, want %d", resp.GetEpoch(), epoch)
		}
		got := map[string][]string{}
		total := 0
		for _, s := range resp.GetShards() {
			if s.GetDrivers() > 0 {
				got[s.GetCell()] = append(got[s.GetCell()], s.GetOwner())
				total += int(s.GetDrivers())
			}
		}
		if total != n {
			return fmt.Sprintf("shards hold %d drivers, want %d", total, n)
		}
		for cell, o := range owners {
			if !slices.Equal(got[cell], []string{o}) {
				return fmt.Sprintf("shard %s held by %v, want %s", cell, got[cell], o)
			}
		}
		return ""
	}
}

// wantChange checks a RingChange: one epoch on from epoch, and the shards
// it lists with the owners given ("" for any).
func wantChange(t *testing.T, what string, rc *geomatchv1.RingChange, err error, epoch uint64, shards map[string]string) {
	t.Helper()
	if err != nil {
		t.Fatalf("%s: %v", what, err)
	}
	if rc.GetEpochBefore() != epoch || rc.GetEpoch() != epoch+1 || rc.GetDescription() == "" {
		t.Fatalf("%s: %+v, want epoch %d -> %d", what, rc, epoch, epoch+1)
	}
	if len(rc.GetShards()) != len(shards) {
		t.Fatalf("%s: shards %v, want %v", what, rc.GetShards(), shards)
	}
	for _, s := range rc.GetShards() {
		o, ok := shards[s.GetCell()]
		if !ok || (o != "" && s.GetOwner() != o) {
			t.Fatalf("%s: shard %v, want owners %v", what, s, shards)
		}
	}
}

// TestAdminChangesOverGRPC makes every ring change of the admin service
// over gRPC on the in-process cluster: each is answered at the next epoch,
// shows in GetRing and in ListShards (the drivers follow their shards),
// and no driver is lost on the way.
func TestAdminChangesOverGRPC(t *testing.T) {
	c := startCluster(t, cluster.DevConfig{Matchers: 3})
	fleet := manhattanFleet(2000)
	c.upload(t, fleet)
	c.waitSettled(t, fleet)
	ctx := ctxT(t)
	epoch := c.ring(t).GetEpoch()

	// Move the busiest shard to another node.
	var hot *geomatchv1.ShardInfo
	for _, s := range c.shards(t, nil) {
		if hot == nil || s.GetDrivers() > hot.GetDrivers() {
			hot = s
		}
	}
	to := map[string]string{"m1": "m2", "m2": "m3", "m3": "m1"}[hot.GetOwner()]
	rc, err := c.admin.MoveShard(ctx, &geomatchv1.MoveShardRequest{Cell: hot.GetCell(), NodeId: to})
	wantChange(t, "MoveShard", rc, err, epoch, map[string]string{hot.GetCell(): to})
	if rc.GetShards()[0].GetOwnerBefore() != hot.GetOwner() {
		t.Fatalf("MoveShard: owner before %q, want %q", rc.GetShards()[0].GetOwnerBefore(), hot.GetOwner())
	}
	epoch++
	if d := c.ring(t); d.GetEpoch() != epoch || d.GetPins()[hot.GetCell()] != to {
		t.Fatalf("GetRing after the move: epoch %d pins %v", d.GetEpoch(), d.GetPins())
	}
	c.shards(t, ownedBy(epoch, len(fleet), map[string]string{hot.GetCell(): to}))

	// Unpin it: the ring places it again.
	rc, err = c.admin.Unpin(ctx, &geomatchv1.UnpinRequest{Cell: hot.GetCell()})
	wantChange(t, "Unpin", rc, err, epoch, map[string]string{hot.GetCell(): hot.GetOwner()})
	epoch++
	if d := c.ring(t); d.GetEpoch() != epoch || len(d.GetPins()) != 0 {
		t.Fatalf("GetRing after the unpin: epoch %d pins %v", d.GetEpoch(), d.GetPins())
	}
	c.shards(t, ownedBy(epoch, len(fleet), map[string]string{hot.GetCell(): hot.GetOwner()}))

	// Split it into 7 shards of the next resolution, then merge it back.
	rc, err = c.admin.SplitShard(ctx, &geomatchv1.SplitShardRequest{Cell: hot.GetCell()})
	kids := map[string]string{}
	parent := cellFromString(t, hot.GetCell())
	for _, k := range parent.ImmediateChildren() {
		kids[k.String()] = ""
	}
	wantChange(t, "SplitShard", rc, err, epoch, kids)
	epoch++
	for _, s := range rc.GetShards() {
		kids[s.GetCell()] = s.GetOwner()
		if s.GetResolution() != int32(parent.Resolution()+1) || s.GetOwnerBefore() != "" {
			t.Fatalf("SplitShard: child %v", s)
		}
	}
	if d := c.ring(t); d.GetEpoch() != epoch || !slices.Equal(d.GetSplits(), []string{hot.GetCell()}) {
		t.Fatalf("GetRing after the split: epoch %d splits %v", d.GetEpoch(), d.GetSplits())
	}
	held := c.shards(t, func(resp *geomatchv1.ListShardsResponse) string {
		if why := ownedBy(epoch, len(fleet), nil)(resp); why != "" {
			return why
		}
		n := 0
		for _, s := range resp.GetShards() {
			if s.GetCell() == hot.GetCell() && s.GetDrivers() > 0 {
				return "the split shard still holds drivers"
			}
			if o, ok := kids[s.GetCell()]; ok && s.GetDrivers() > 0 {
				if s.GetOwner() != o {
					return fmt.Sprintf("child %s held by %s, want %s", s.GetCell(), s.GetOwner(), o)
				}
				n += int(s.GetDrivers())
			}
		}
		if n != int(hot.GetDrivers()) {
			return fmt.Sprintf("children hold %d drivers, the shard held %d", n, hot.GetDrivers())
		}
		return ""
	})
	if _, ok := held[hot.GetCell()]; ok {
		t.Fatal("split shard listed")
	}
	rc, err = c.admin.MergeShard(ctx, &geomatchv1.MergeShardRequest{Cell: hot.GetCell()})
	wantChange(t, "MergeShard", rc, err, epoch, map[string]string{hot.GetCell(): hot.GetOwner()})
	epoch++
	if d := c.ring(t); d.GetEpoch() != epoch || len(d.GetSplits()) != 0 {
		t.Fatalf("GetRing after the merge: epoch %d splits %v", d.GetEpoch(), d.GetSplits())
	}
	c.shards(t, ownedBy(epoch, len(fleet), map[string]string{hot.GetCell(): hot.GetOwner()}))

	// Drain m1: it ends with nothing; the change lists its shards.
	before := c.shards(t, nil)
	rc, err = c.admin.DrainNode(ctx, &geomatchv1.DrainNodeRequest{NodeId: "m1"})
	moved := map[string]string{}
	for cell, s := range before {
		if s.GetOwner() == "m1" {
			moved[cell] = ""
		}
	}
	wantChange(t, "DrainNode", rc, err, epoch, moved)
	epoch++
	for _, s := range rc.GetShards() {
		if s.GetOwnerBefore() != "m1" || s.GetOwner() == "m1" || s.GetOwner() == "" {
			t.Fatalf("DrainNode: shard %v", s)
		}
	}
	if d := c.ring(t); d.GetEpoch() != epoch || !d.GetMembers()[0].GetDrained() {
		t.Fatalf("GetRing after the drain: %v", d)
	}
	c.shards(t, func(resp *geomatchv1.ListShardsResponse) string {
		for _, s := range resp.GetShards() {
			if s.GetOwner() == "m1" && s.GetDrivers() > 0 {
				return "drained m1 holds " + s.GetCell()
			}
		}
		return ownedBy(epoch, len(fleet), nil)(resp)
	})
	if n := c.Nodes[0].Index().Len(); n != 0 {
		t.Fatalf("drained m1 holds %d drivers", n)
	}
	rc, err = c.admin.UndrainNode(ctx, &geomatchv1.UndrainNodeRequest{NodeId: "m1"})
	wantChange(t, "UndrainNode", rc, err, epoch, moved) // the same shards come back
	epoch++
	if d := c.ring(t); d.GetEpoch() != epoch || d.GetMembers()[0].GetDrained() {
		t.Fatalf("GetRing after the undrain: %v", d)
	}
	c.shards(t, ownedBy(epoch, len(fleet), map[string]string{}))
	c.waitSettled(t, fleet)
	assertNearbyExact(t, c, newRand(), fleet, 30)
}

// TestAdminRebalance: with every shard pinned to one node, a dry run plans
// moves and changes nothing; applying the plan pins the moved shards to
// their new nodes at the next epoch, and the drivers follow.
func TestAdminRebalance(t *testing.T) {
	c := startCluster(t, cluster.DevConfig{Matchers: 3})
	fleet := manhattanFleet(2000)
	c.upload(t, fleet)
	c.waitSettled(t, fleet)
	ctx := ctxT(t)
	for cell, s := range c.shards(t, nil) {
		if s.GetOwner() != "m1" {
			if _, err := c.admin.MoveShard(ctx, &geomatchv1.MoveShardRequest{Cell: cell, NodeId: "m1"}); err != nil {
				t.Fatal(err)
			}
		}
	}
	ring := c.ring(t)
	c.shards(t, func(resp *geomatchv1.ListShardsResponse) string {
		for _, s := range resp.GetShards() {
			if s.GetOwner() != "m1" && s.GetDrivers() > 0 {
				return s.GetCell() + " is not on m1 yet"
			}
		}
		return ownedBy(ring.GetEpoch(), len(fleet), nil)(resp)
	})

	plan, err := c.admin.Rebalance(ctx, &geomatchv1.RebalanceRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if plan.GetApplied() || plan.GetEpoch() != ring.GetEpoch() || plan.GetEpochBefore() != ring.GetEpoch() || len(plan.GetMoves()) == 0 || plan.GetDriversTotal() != int64(len(fleet)) {
		t.Fatalf("dry run: %v", plan)
	}
	if math.Abs(plan.GetMaxOverAvgBefore()-3) > 1e-9 || plan.GetMaxOverAvgAfter() > 1.2 || plan.GetDriversMovedFraction() < 0.5 {
		t.Fatalf("dry run figures: %v", plan)
	}
	var moved int64
	for _, mv := range plan.GetMoves() {
		if mv.GetFrom() != "m1" || (mv.GetTo() != "m2" && mv.GetTo() != "m3") {
			t.Fatalf("dry run move %v", mv)
		}
		moved += mv.GetDrivers()
	}
	if got := float64(moved) / float64(len(fleet)); math.Abs(got-plan.GetDriversMovedFraction()) > 1e-9 {
		t.Fatalf("moved fraction %v, moves add up to %v", plan.GetDriversMovedFraction(), got)
	}
	if after := c.ring(t); after.GetEpoch() != ring.GetEpoch() || len(after.GetPins()) != len(ring.GetPins()) {
		t.Fatalf("a dry run changed the ring: epoch %d -> %d", ring.GetEpoch(), after.GetEpoch())
	}

	applied, err := c.admin.Rebalance(ctx, &geomatchv1.RebalanceRequest{Apply: true, Target: 1.2, MaxMoves: 1000})
	if err != nil {
		t.Fatal(err)
	}
	if !applied.GetApplied() || applied.GetEpochBefore() != ring.GetEpoch() || applied.GetEpoch() != ring.GetEpoch()+1 || len(applied.GetMoves()) == 0 {
		t.Fatalf("apply: %v", applied)
	}
	d := c.ring(t)
	want := map[string]string{}
	for _, mv := range applied.GetMoves() {
		want[mv.GetCell()] = mv.GetTo()
		if d.GetPins()[mv.GetCell()] != mv.GetTo() {
			t.Fatalf("after apply, %s pinned to %q, want %s", mv.GetCell(), d.GetPins()[mv.GetCell()], mv.GetTo())
		}
	}
	if d.GetEpoch() != applied.GetEpoch() {
		t.Fatalf("GetRing epoch %d, plan applied at %d", d.GetEpoch(), applied.GetEpoch())
	}
	c.shards(t, ownedBy(applied.GetEpoch(), len(fleet), want))
	again, err := c.admin.Rebalance(ctx, &geomatchv1.RebalanceRequest{Target: 1.2})
	if err != nil || again.GetMaxOverAvgBefore() > 1.2 {
		t.Fatalf("after apply, a new plan: %v %v", again, err)
	}
	c.waitSettled(t, fleet)
}

// TestAdminChangeBadArguments: bad arguments get INVALID_ARGUMENT and
// changes the ring's state forbids FAILED_PRECONDITION, each naming the
// field, and none of them changes the ring.
func TestAdminChangeBadArguments(t *testing.T) {
	c := startCluster(t, cluster.DevConfig{Matchers: 2, Doc: shardmap.Doc{Drained: []string{"m2"}}})
	ctx := ctxT(t)
	ring := c.ring(t)
	const shard = "872a1072bffffff"
	child, fine := cellFromString(t, shard).ImmediateChildren()[0].String(), cellFromString(t, shard).ImmediateChildren()[0].ImmediateChildren()[0].String()
	cases := []struct {
		name  string
		call  func() error
		code  codes.Code
		field string
	}{
		{"move: empty cell", func() error { return call(c.admin.MoveShard(ctx, &geomatchv1.MoveShardRequest{NodeId: "m1"})) }, codes.InvalidArgument, "cell"},
		{"move: garbage cell", func() error {
			return call(c.admin.MoveShard(ctx, &geomatchv1.MoveShardRequest{Cell: "not-a-cell", NodeId: "m1"}))
		}, codes.InvalidArgument, "cell"},
		{"move: huge cell", func() error {
			return call(c.admin.MoveShard(ctx, &geomatchv1.MoveShardRequest{Cell: string(make([]byte, 1<<16)), NodeId: "m1"}))
		}, codes.InvalidArgument, "cell"},
		{"move: a cell that is not a shard", func() error {
			return call(c.admin.MoveShard(ctx, &geomatchv1.MoveShardRequest{Cell: child, NodeId: "m1"}))
		}, codes.InvalidArgument, "cell"},
		{"move: an unknown node", func() error {
			return call(c.admin.MoveShard(ctx, &geomatchv1.MoveShardRequest{Cell: shard, NodeId: "m9"}))
		}, codes.InvalidArgument, "node_id"},
		{"move: no node", func() error { return call(c.admin.MoveShard(ctx, &geomatchv1.MoveShardRequest{Cell: shard})) }, codes.InvalidArgument, "node_id"},
		{"move: to a drained node", func() error {
			return call(c.admin.MoveShard(ctx, &geomatchv1.MoveShardRequest{Cell: shard, NodeId: "m2"}))
		}, codes.FailedPrecondition, "node_id"},
		{"unpin: a shard not pinned", func() error { return call(c.admin.Unpin(ctx, &geomatchv1.UnpinRequest{Cell: shard})) }, codes.FailedPrecondition, "cell"},
		{"unpin: garbage", func() error { return call(c.admin.Unpin(ctx, &geomatchv1.UnpinRequest{Cell: "0x"})) }, codes.InvalidArgument, "cell"},
		{"drain: an unknown node", func() error { return call(c.admin.DrainNode(ctx, &geomatchv1.DrainNodeRequest{NodeId: "m9"})) }, codes.InvalidArgument, "node_id"},
		{"drain: the last active node", func() error { return call(c.admin.DrainNode(ctx, &geomatchv1.DrainNodeRequest{NodeId: "m1"})) }, codes.FailedPrecondition, "node_id"},
		{"drain: a drained node", func() error { return call(c.admin.DrainNode(ctx, &geomatchv1.DrainNodeRequest{NodeId: "m2"})) }, codes.FailedPrecondition, "node_id"},
		{"undrain: an active node", func() error { return call(c.admin.UndrainNode(ctx, &geomatchv1.UndrainNodeRequest{NodeId: "m1"})) }, codes.FailedPrecondition, "node_id"},
		{"undrain: no node", func() error { return call(c.admin.UndrainNode(ctx, &geomatchv1.UndrainNodeRequest{})) }, codes.InvalidArgument, "node_id"},
		{"split: a cell that is not a shard", func() error { return call(c.admin.SplitShard(ctx, &geomatchv1.SplitShardRequest{Cell: fine})) }, codes.InvalidArgument, "cell"},
		{"split: empty cell", func() error { return call(c.admin.SplitShard(ctx, &geomatchv1.SplitShardRequest{})) }, codes.InvalidArgument, "cell"},
		{"merge: a shard never split", func() error { return call(c.admin.MergeShard(ctx, &geomatchv1.MergeShardRequest{Cell: shard})) }, codes.FailedPrecondition, "cell"},
		{"merge: garbage", func() error {
			return call(c.admin.MergeShard(ctx, &geomatchv1.MergeShardRequest{Cell: "ffffffffffffffff"}))
		}, codes.InvalidArgument, "cell"},
		{"rebalance: target below 1", func() error { return call(c.admin.Rebalance(ctx, &geomatchv1.RebalanceRequest{Target: 0.5})) }, codes.InvalidArgument, "target"},
		{"rebalance: target NaN", func() error { return call(c.admin.Rebalance(ctx, &geomatchv1.RebalanceRequest{Target: math.NaN()})) }, codes.InvalidArgument, "target"},
		{"rebalance: negative max moves", func() error {
			return call(c.admin.Rebalance(ctx, &geomatchv1.RebalanceRequest{Apply: true, MaxMoves: -1}))
		}, codes.InvalidArgument, "max_moves"},
		{"rebalance: too many moves", func() error {
			return call(c.admin.Rebalance(ctx, &geomatchv1.RebalanceRequest{MaxMoves: router.MaxRebalanceMoves + 1}))
		}, codes.InvalidArgument, "max_moves"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			wantCode(t, tc.name, tc.call(), tc.code, tc.field+":")
			if d := c.ring(t); d.GetEpoch() != ring.GetEpoch() || len(d.GetPins()) != 0 || len(d.GetSplits()) != 0 || len(d.GetMembers()) != 2 || !d.GetMembers()[1].GetDrained() {
				t.Fatalf("the ring changed: %v", d)
			}
		})
	}
}

// call drops a response, keeping the error.
func call[T any](_ T, err error) error { return err }

// TestAdminChangesNeedTheAdminRole: with authentication on, drivers and
// riders get PERMISSION_DENIED on every ring change, which changes nothing;
// an admin token changes the ring.
func TestAdminChangesNeedTheAdminRole(t *testing.T) {
	c, k := startAuthCluster(t, cluster.DevConfig{Matchers: 2})
	const shard = "872a1072bffffff"
	calls := map[string]func(ctx context.Context, a geomatchv1.AdminServiceClient) error{
		"MoveShard": func(ctx context.Context, a geomatchv1.AdminServiceClient) error {
			return call(a.MoveShard(ctx, &geomatchv1.MoveShardRequest{Cell: shard, NodeId: "m2"}))
		},
		"Unpin": func(ctx context.Context, a geomatchv1.AdminServiceClient) error {
			return call(a.Unpin(ctx, &geomatchv1.UnpinRequest{Cell: shard}))
		},
		"DrainNode": func(ctx context.Context, a geomatchv1.AdminServiceClient) error {
			return call(a.DrainNode(ctx, &geomatchv1.DrainNodeRequest{NodeId: "m1"}))
		},
		"UndrainNode": func(ctx context.Context, a geomatchv1.AdminServiceClient) error {
			return call(a.UndrainNode(ctx, &geomatchv1.UndrainNodeRequest{NodeId: "m1"}))
		},
		"SplitShard": func(ctx context.Context, a geomatchv1.AdminServiceClient) error {
			return call(a.SplitShard(ctx, &geomatchv1.SplitShardRequest{Cell: shard}))
		},
		"MergeShard": func(ctx context.Context, a geomatchv1.AdminServiceClient) error {
			return call(a.MergeShard(ctx, &geomatchv1.MergeShardRequest{Cell: shard}))
		},
		"Rebalance": func(ctx context.Context, a geomatchv1.AdminServiceClient) error {
			return call(a.Rebalance(ctx, &geomatchv1.RebalanceRequest{Apply: true}))
		},
	}
	if len(calls) != 7 {
		t.Fatal("a ring change is missing from the table")
	}
	epoch, _ := c.Membership.Current()
	for _, who := range []struct {
		subject string
		role    auth.Role
	}{{"cab-1", auth.RoleDriver}, {"alice", auth.RoleRider}} {
		cl := as(t, c, k, who.subject, who.role)
		for name, f := range calls {
			wantCode(t, string(who.role)+" "+name, f(ctxT(t), cl.admin), codes.PermissionDenied, "needs role admin")
		}
	}
	if m, _ := c.Membership.Current(); m.Epoch() != epoch.Epoch() {
		t.Fatalf("refused calls changed the ring: epoch %d -> %d", epoch.Epoch(), m.Epoch())
	}
	ops := as(t, c, k, "ops", auth.RoleAdmin)
	rc, err := ops.admin.MoveShard(ctxT(t), &geomatchv1.MoveShardRequest{Cell: shard, NodeId: "m2"})
	if err != nil || rc.GetEpoch() != epoch.Epoch()+1 {
		t.Fatalf("admin MoveShard: %v %v", rc, err)
	}
}

// TestAdminChangesOfAStaticRing: a router without a settings store (a
// static --peers cluster) refuses every ring change with
// FAILED_PRECONDITION, and still plans a rebalance.
func TestAdminChangesOfAStaticRing(t *testing.T) {
	src, err := membership.NewStatic(shardmap.DefaultDoc([]shardmap.Member{{ID: "m1", Addr: "127.0.0.1:1"}, {ID: "m2", Addr: "127.0.0.1:2"}}))
	if err != nil {
		t.Fatal(err)
	}
	fc, err := fleet.New(fleet.Config{}, src, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	fctx, stop := context.WithCancel(context.Background())
	fleetDone := make(chan error, 1)
	go func() { fleetDone <- fc.Run(fctx) }()
	t.Cleanup(func() { stop(); <-fleetDone })
	rt, err := router.New(router.Config{}, fc, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := grpc.NewServer()
	rt.Register(srv)
	go func() { _ = srv.Serve(lis) }()
	t.Cleanup(srv.Stop)
	cl := dialAPI(t, lis.Addr().String())
	ctx := ctxT(t)
	wantCode(t, "MoveShard", call(cl.admin.MoveShard(ctx, &geomatchv1.MoveShardRequest{Cell: "872a1072bffffff", NodeId: "m2"})), codes.FailedPrecondition, "static")
	wantCode(t, "DrainNode", call(cl.admin.DrainNode(ctx, &geomatchv1.DrainNodeRequest{NodeId: "m2"})), codes.FailedPrecondition, "static")
	wantCode(t, "Rebalance apply", call(cl.admin.Rebalance(ctx, &geomatchv1.RebalanceRequest{Apply: true})), codes.FailedPrecondition, "static")
	plan, err := cl.admin.Rebalance(ctx, &geomatchv1.RebalanceRequest{})
	if err != nil || plan.GetApplied() || len(plan.GetMoves()) != 0 {
		t.Fatalf("dry run on a static ring: %v %v", plan, err)
	}
}

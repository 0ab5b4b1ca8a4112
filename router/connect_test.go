package router_test

import (
	"errors"
	"io"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/geomatch/geomatch/cluster"
	geomatchv1 "github.com/geomatch/geomatch/proto/geomatch/v1"
)

// TestConnectStreamsLocations: a driver app's stream starts with a hello,
// streams positions that become visible to riders, and hears about the
// updates that were refused (another driver's id, bad coordinates, stale).
func TestConnectStreamsLocations(t *testing.T) {
	c := startCluster(t, cluster.DevConfig{Matchers: 3})
	stream, err := c.drivers.Connect(ctxT(t))
	if err != nil {
		t.Fatal(err)
	}
	send := func(m *geomatchv1.DriverMessage) {
		t.Helper()
		if err := stream.Send(m); err != nil {
			t.Fatal(err)
		}
	}
	send(&geomatchv1.DriverMessage{Msg: &geomatchv1.DriverMessage_Hello{Hello: &geomatchv1.DriverHello{DriverId: "cab-1", VehicleClass: "xl"}}})
	ev, err := stream.Recv()
	if err != nil || ev.GetConnected().GetDriverId() != "cab-1" {
		t.Fatalf("first event %v, %v; want a ConnectAck for cab-1", ev, err)
	}
	now := time.Now().UnixMilli()
	loc := func(id string, lat float64, ts int64) *geomatchv1.DriverMessage {
		return &geomatchv1.DriverMessage{Msg: &geomatchv1.DriverMessage_Location{Location: &geomatchv1.LocationUpdate{
			DriverId: id, Position: ll(lat, -73.98), TimestampMs: ts}}}
	}
	send(loc("", 40.75, now-3000))        // id taken from the hello
	send(loc("cab-1", 40.7501, now-2000)) // same id
	send(loc("cab-2", 40.75, now-1000))   // somebody else's id
	send(loc("cab-1", 95, now-500))       // bad latitude
	send(loc("cab-1", 40.70, now-2500))   // stale
	var rejected []*geomatchv1.Rejection
	for len(rejected) < 3 {
		ev, err := stream.Recv()
		if err != nil {
			t.Fatalf("recv: %v (rejections so far %v)", err, rejected)
		}
		if rj := ev.GetRejected(); rj != nil {
			rejected = append(rejected, rj)
		}
	}
	reasons := map[geomatchv1.RejectReason]int{}
	for _, rj := range rejected {
		reasons[rj.GetReason()]++
	}
	if reasons[geomatchv1.RejectReason_REJECT_REASON_INVALID_ARGUMENT] != 2 || reasons[geomatchv1.RejectReason_REJECT_REASON_STALE] != 1 {
		t.Fatalf("rejections %v, want 2 invalid and 1 stale", rejected)
	}
	resp, err := c.riders.NearbyDrivers(ctxT(t), &geomatchv1.NearbyDriversRequest{Position: ll(40.7501, -73.98), Limit: 5, RadiusM: 100, VehicleClass: "xl"})
	if err != nil {
		t.Fatal(err)
	}
	if len(resp.GetDrivers()) != 1 || resp.GetDrivers()[0].GetDriverId() != "cab-1" || resp.GetDrivers()[0].GetDistanceM() != 0 {
		t.Fatalf("nearby %v, want cab-1 (class from the hello) at its newest position", resp.GetDrivers())
	}
	if err := stream.CloseSend(); err != nil {
		t.Fatal(err)
	}
	for {
		if _, err := stream.Recv(); errors.Is(err, io.EOF) {
			break
		} else if err != nil {
			t.Fatalf("stream ended with %v, want a clean end", err)
		}
	}
}

// TestConnectNeedsHello: a stream that does not start with a hello naming a
// valid driver is refused with InvalidArgument.
func TestConnectNeedsHello(t *testing.T) {
	c := startCluster(t, cluster.DevConfig{Matchers: 1})
	for _, tc := range []struct {
		name  string
		first *geomatchv1.DriverMessage
		field string
	}{
		{"location first", &geomatchv1.DriverMessage{Msg: &geomatchv1.DriverMessage_Location{Location: &geomatchv1.LocationUpdate{DriverId: "x"}}}, "hello"},
		{"empty id", &geomatchv1.DriverMessage{Msg: &geomatchv1.DriverMessage_Hello{Hello: &geomatchv1.DriverHello{}}}, "hello.driver_id"},
		{"long id", &geomatchv1.DriverMessage{Msg: &geomatchv1.DriverMessage_Hello{Hello: &geomatchv1.DriverHello{DriverId: strings.Repeat("i", 200)}}}, "hello.driver_id"},
	} {
		stream, err := c.drivers.Connect(ctxT(t))
		if err != nil {
			t.Fatal(err)
		}
		if err := stream.Send(tc.first); err != nil {
			t.Fatal(err)
		}
		_, err = stream.Recv()
		st, _ := status.FromError(err)
		if st.Code() != codes.InvalidArgument || !strings.HasPrefix(st.Message(), tc.field) {
			t.Errorf("%s: got %v, want InvalidArgument naming %s", tc.name, err, tc.field)
		}
	}
}

// TestAdminShowsClusterAndShards: the admin API lists every node with its
// drivers, and the loaded shards with their owners.
func TestAdminShowsClusterAndShards(t *testing.T) {
	c := startCluster(t, cluster.DevConfig{Matchers: 3})
	r := newRand()
	fleet := makeFleet(r, 500, 7, time.Now().UnixMilli())
	c.upload(t, fleet)
	c.waitSettled(t, fleet)
	st, err := c.admin.GetClusterStatus(ctxT(t), &geomatchv1.GetClusterStatusRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if len(st.GetNodes()) != 3 || st.GetDrivers() != 500 || st.GetEpoch() != 1 || st.GetMembership() != "local" {
		t.Fatalf("cluster status %v", st)
	}
	for _, n := range st.GetNodes() {
		if n.GetState() != geomatchv1.NodeState_NODE_STATE_SERVING {
			t.Errorf("node %s is %v", n.GetId(), n.GetState())
		}
	}
	shards, err := c.admin.ListShards(ctxT(t), &geomatchv1.ListShardsRequest{})
	if err != nil {
		t.Fatal(err)
	}
	total := int64(0)
	for i, s := range shards.GetShards() {
		total += s.GetDrivers()
		if i > 0 && s.GetDrivers() > shards.GetShards()[i-1].GetDrivers() {
			t.Fatalf("shards not sorted by load: %v", shards.GetShards()[:i+1])
		}
		m, _ := c.Membership.Current()
		owner, _ := m.Owner(cellFromString(t, s.GetCell()))
		if owner.ID != s.GetOwner() {
			t.Errorf("shard %s reported on %s, ring owner is %s", s.GetCell(), s.GetOwner(), owner.ID)
		}
	}
	if total != 500 {
		t.Fatalf("shards hold %d drivers, want 500", total)
	}
	ring, err := c.admin.GetRing(ctxT(t), &geomatchv1.GetRingRequest{})
	if err != nil || len(ring.GetMembers()) != 3 || ring.GetShardResolution() != 7 {
		t.Fatalf("ring %v, %v", ring, err)
	}
}

// TestConnectAcksUpdates: a hello with want_acks gets coalesced UpdatesAck
// events: every update ends up covered by an ack, the count of applied
// updates is exact, a rejected update's Rejection comes before the ack
// that covers it, and the acks are far fewer than the updates.
func TestConnectAcksUpdates(t *testing.T) {
	c := startCluster(t, cluster.DevConfig{Matchers: 2})
	stream, err := c.drivers.Connect(ctxT(t))
	if err != nil {
		t.Fatal(err)
	}
	if err := stream.Send(&geomatchv1.DriverMessage{Msg: &geomatchv1.DriverMessage_Hello{Hello: &geomatchv1.DriverHello{DriverId: "cab-ack", WantAcks: true}}}); err != nil {
		t.Fatal(err)
	}
	if ev, err := stream.Recv(); err != nil || ev.GetConnected() == nil {
		t.Fatalf("first event %v, %v; want the ConnectAck", ev, err)
	}
	const n = 600
	base := time.Now().UnixMilli() - 10*n
	badTS := base + 300
	for i := range n {
		ts := base + int64(i)
		lat := 40.75 + float64(i)*1e-6
		if ts == badTS {
			lat = 95 // rejected: bad latitude
		}
		if err := stream.Send(&geomatchv1.DriverMessage{Msg: &geomatchv1.DriverMessage_Location{Location: &geomatchv1.LocationUpdate{
			Position: ll(lat, -73.98), TimestampMs: ts}}}); err != nil {
			t.Fatal(err)
		}
	}
	last := base + n - 1
	acks, rejectedAt := 0, -1
	var through, applied int64
	for through < last || applied < n-1 {
		ev, err := stream.Recv()
		if err != nil {
			t.Fatalf("recv: %v (acked through %d of %d, applied %d)", err, through-base, n-1, applied)
		}
		switch {
		case ev.GetRejected() != nil:
			if ev.GetRejected().GetTimestampMs() != badTS || through >= badTS {
				t.Fatalf("rejection %v after an ack through %d; want only the bad update's, before its ack", ev.GetRejected(), through-base)
			}
			rejectedAt = acks
		case ev.GetUpdatesAck() != nil:
			a := ev.GetUpdatesAck()
			if a.GetThroughTimestampMs() < through || a.GetApplied() < applied {
				t.Fatalf("ack %v goes back from through %d applied %d", a, through, applied)
			}
			through, applied = a.GetThroughTimestampMs(), a.GetApplied()
			acks++
		}
	}
	if rejectedAt < 0 {
		t.Fatal("no rejection for the bad update")
	}
	if applied != n-1 || through != last {
		t.Fatalf("acked through %d applied %d; want %d and %d", through, applied, last, n-1)
	}
	if acks >= n/10 {
		t.Fatalf("%d acks for %d updates; want them coalesced", acks, n)
	}
	if err := stream.CloseSend(); err != nil {
		t.Fatal(err)
	}
	for {
		ev, err := stream.Recv()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatalf("stream ended with %v, want a clean end", err)
		}
		if a := ev.GetUpdatesAck(); a != nil && (a.GetApplied() != applied || a.GetThroughTimestampMs() != last) {
			t.Fatalf("late ack %v says something new", a)
		}
	}
}

// TestConnectNoAcksUnasked: without want_acks the stream carries no
// UpdatesAck, only the rejections.
func TestConnectNoAcksUnasked(t *testing.T) {
	c := startCluster(t, cluster.DevConfig{Matchers: 1})
	stream, err := c.drivers.Connect(ctxT(t))
	if err != nil {
		t.Fatal(err)
	}
	if err := stream.Send(&geomatchv1.DriverMessage{Msg: &geomatchv1.DriverMessage_Hello{Hello: &geomatchv1.DriverHello{DriverId: "cab-quiet"}}}); err != nil {
		t.Fatal(err)
	}
	now := time.Now().UnixMilli()
	for i := range 20 {
		if err := stream.Send(&geomatchv1.DriverMessage{Msg: &geomatchv1.DriverMessage_Location{Location: &geomatchv1.LocationUpdate{
			Position: ll(40.75, -73.98), TimestampMs: now - 100 + int64(i)}}}); err != nil {
			t.Fatal(err)
		}
	}
	if err := stream.CloseSend(); err != nil {
		t.Fatal(err)
	}
	for {
		ev, err := stream.Recv()
		if errors.Is(err, io.EOF) {
			return
		}
		if err != nil {
			t.Fatal(err)
		}
		if ev.GetUpdatesAck() != nil || ev.GetRejected() != nil {
			t.Fatalf("unexpected event %v", ev)
		}
	}
}

package fleet

import (
	"context"
	"net"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc"

	"github.com/geomatch/geomatch/driver"
	"github.com/geomatch/geomatch/internal/geo"
	matcherv1 "github.com/geomatch/geomatch/proto/geomatch/matcher/v1"
	"github.com/geomatch/geomatch/shardmap"
)

// applyRecorder is a fake matcher that applies every update and records
// the newest timestamp it received of each driver.
type applyRecorder struct {
	matcherv1.UnimplementedMatcherServiceServer
	mu  sync.Mutex
	got map[string]int64
}

func (f *applyRecorder) Apply(stream matcherv1.MatcherService_ApplyServer) error {
	for {
		req, err := stream.Recv()
		if err != nil {
			return nil
		}
		f.mu.Lock()
		if f.got == nil {
			f.got = map[string]int64{}
		}
		for _, u := range req.GetUpdates() {
			f.got[u.GetDriverId()] = max(f.got[u.GetDriverId()], u.GetTimestampMs())
		}
		f.mu.Unlock()
		if err := stream.Send(&matcherv1.ApplyResponse{Seq: req.GetSeq(), Epoch: req.GetEpoch()}); err != nil {
			return err
		}
	}
}

func (f *applyRecorder) newest(id string) int64 {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.got[id]
}

// TestDepartedMatchersUpdatesAreReplayed: the updates a matcher
// acknowledged last are sent again, the newest of each driver, to the new
// owner when the matcher leaves the ring, so the new owner does not start
// from an older position (what Redis's write-behind holds).
func TestDepartedMatchersUpdatesAreReplayed(t *testing.T) {
	leaving, staying := &applyRecorder{}, &applyRecorder{}
	src := twoMembers(t, serveFake(t, staying), serveFake(t, leaving)) // m1 stays, m2 leaves
	c := runClient(t, Config{}, src)
	m, _ := src.Current()
	pos := positionOwnedBy(t, m, "m2")
	r := newResults(6)
	for i, id := range []string{"a", "b", "c"} {
		for j := range 2 {
			c.Send(context.Background(), Update{DriverID: id, Pos: pos, TimestampMs: int64(1000*(j+1) + i)}, r, int32(2*i+j), time.Now().Add(5*time.Second))
		}
	}
	for i, res := range r.wait(t) {
		if res.Outcome != driver.Applied {
			t.Fatalf("update %d: %v", i, res.Outcome)
		}
	}
	if staying.newest("a") != 0 {
		t.Fatal("m1 got m2's updates before the failover")
	}
	removeMember(t, src, "m2")
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		if staying.newest("a") == 2000 && staying.newest("b") == 2001 && staying.newest("c") == 2002 {
			if c.Replayed() != 3 {
				t.Fatalf("replayed %d updates, want 3 (the newest of each driver)", c.Replayed())
			}
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatalf("the new owner holds a=%d b=%d c=%d, want the last acknowledged 2000, 2001, 2002", staying.newest("a"), staying.newest("b"), staying.newest("c"))
}

// standbyRecorder is an applyRecorder that also records Standby calls.
type standbyRecorder struct {
	applyRecorder
	smu     sync.Mutex
	standby []*matcherv1.StandbyRequest
}

func (f *standbyRecorder) Standby(_ context.Context, req *matcherv1.StandbyRequest) (*matcherv1.StandbyResponse, error) {
	f.smu.Lock()
	defer f.smu.Unlock()
	f.standby = append(f.standby, req)
	return &matcherv1.StandbyResponse{Held: int32(len(req.GetUpdates()))}, nil
}

func (f *standbyRecorder) handed() map[string]int64 {
	f.smu.Lock()
	defer f.smu.Unlock()
	got := map[string]int64{}
	for _, req := range f.standby {
		for _, u := range req.GetUpdates() {
			got[u.GetDriverId()] = max(got[u.GetDriverId()], u.GetTimestampMs())
		}
	}
	return got
}

// TestLostMatchersUpdatesGoToItsSuccessorAtOnce: when a matcher's stream
// breaks (it died), what it acknowledged in the redo window goes at once,
// the newest of each driver, to the node that owns its shards on the ring
// without it, ahead of the ring change (Standby).
func TestLostMatchersUpdatesGoToItsSuccessorAtOnce(t *testing.T) {
	succ := &standbyRecorder{}
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	lost := grpc.NewServer()
	matcherv1.RegisterMatcherServiceServer(lost, &applyRecorder{})
	served := make(chan struct{})
	go func() { defer close(served); _ = lost.Serve(lis) }()
	t.Cleanup(func() { lost.Stop(); <-served })
	src := twoMembers(t, serveFake(t, succ), lis.Addr().String()) // m2 is lost
	c := runClient(t, Config{}, src)
	m, _ := src.Current()
	pos := positionOwnedBy(t, m, "m2")
	r := newResults(4)
	for i, id := range []string{"a", "b"} {
		for j := range 2 {
			c.Send(context.Background(), Update{DriverID: id, Pos: pos, TimestampMs: int64(1000*(j+1) + i)}, r, int32(2*i+j), time.Now().Add(5*time.Second))
		}
	}
	r.wait(t)
	lost.Stop() // the stream breaks; the ring still names m2
	waitFor(t, func() bool { return len(succ.handed()) == 2 })
	if got := succ.handed(); got["a"] != 2000 || got["b"] != 2001 {
		t.Fatalf("handed over %v, want a at 2000 and b at 2001", got)
	}
	if c.StandbySent() != 2 {
		t.Fatalf("StandbySent %d, want 2", c.StandbySent())
	}
}

// TestWithoutMemberMovesOnlyItsShards: the successor ring gives each
// shard of the lost member to another member and leaves the others where
// they are (what the ring writer composes when the member's check lapses).
func TestWithoutMemberMovesOnlyItsShards(t *testing.T) {
	m, err := shardmap.NewMap(shardmap.DefaultDoc([]shardmap.Member{
		{ID: "a", Addr: "127.0.0.1:1", Weight: 1}, {ID: "b", Addr: "127.0.0.1:2", Weight: 1}, {ID: "c", Addr: "127.0.0.1:3", Weight: 1},
	}))
	if err != nil {
		t.Fatal(err)
	}
	succ, err := withoutMember(m, "b")
	if err != nil {
		t.Fatal(err)
	}
	moved := 0
	for i := range 2000 { // shards under a grid of points over the city and beyond
		p := geo.LatLng{Lat: 40 + float64(i%50)*0.02, Lng: -75 + float64(i/50)*0.05}
		s := m.Layout().ShardOf(p)
		before, _ := m.Owner(s)
		after, ok := succ.Owner(s)
		switch {
		case !ok || after.ID == "b":
			t.Fatalf("shard %v: owner %v on the ring without b", s, after)
		case before.ID != "b" && after.ID != before.ID:
			t.Fatalf("shard %v moved from %s to %s, though b never owned it", s, before.ID, after.ID)
		case before.ID == "b":
			moved++
		}
	}
	if moved == 0 {
		t.Fatal("b owned no shard: the test proves nothing")
	}
}

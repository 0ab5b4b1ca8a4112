package fleet

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/geomatch/geomatch/driver"
	matcherv1 "github.com/geomatch/geomatch/proto/geomatch/matcher/v1"
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

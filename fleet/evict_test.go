package fleet

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/geomatch/geomatch/driver"
	matcherv1 "github.com/geomatch/geomatch/proto/geomatch/matcher/v1"
)

// evictRecorder is a fake matcher that claims every update it applies,
// records the evictions it receives, and answers those asked by a claim
// with a newer copy of its own when newerMs is set.
type evictRecorder struct {
	matcherv1.UnimplementedMatcherServiceServer
	newerMs int64
	mu      sync.Mutex
	got     []*matcherv1.Eviction
}

func (f *evictRecorder) Apply(stream matcherv1.MatcherService_ApplyServer) error {
	for {
		req, err := stream.Recv()
		if err != nil {
			return nil
		}
		resp := &matcherv1.ApplyResponse{Seq: req.GetSeq(), Epoch: req.GetEpoch()}
		for i := range req.GetUpdates() {
			resp.Claimed = append(resp.Claimed, uint32(i))
		}
		f.mu.Lock()
		for _, e := range req.GetEvictions() {
			f.got = append(f.got, e)
			if f.newerMs != 0 && e.GetClaimedBy() != "" {
				resp.Newer = append(resp.Newer, &matcherv1.Eviction{DriverId: e.GetDriverId(), OlderThanMs: f.newerMs, ClaimedBy: e.GetClaimedBy()})
			}
		}
		f.mu.Unlock()
		if err := stream.Send(resp); err != nil {
			return err
		}
	}
}

func (f *evictRecorder) evictions() []*matcherv1.Eviction {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]*matcherv1.Eviction(nil), f.got...)
}

// TestLateClaimEvictsTheClaimersCopy: a claim's eviction that meets a
// newer copy on another node (the driver moved on while the claim was
// answered late) comes back as ApplyResponse.newer, and the client evicts
// the claimer's older copy instead.
func TestLateClaimEvictsTheClaimersCopy(t *testing.T) {
	claimer, holder := &evictRecorder{}, &evictRecorder{newerMs: 5000}
	src := twoMembers(t, serveFake(t, claimer), serveFake(t, holder))
	c := runClient(t, Config{}, src)
	m, _ := src.Current()
	r := newResults(1)
	c.Send(context.Background(), Update{DriverID: "d1", Pos: positionOwnedBy(t, m, "m1"), TimestampMs: 1000}, r, 0, time.Now().Add(5*time.Second))
	r.wait(t)
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		if got := claimer.evictions(); len(got) > 0 {
			if e := got[0]; e.GetDriverId() != "d1" || e.GetOlderThanMs() != 5000 || e.GetClaimedBy() != "m2" {
				t.Fatalf("claimer got eviction %v, want d1 older than 5000 on behalf of m2", e)
			}
			if h := holder.evictions(); len(h) != 1 || h[0].GetClaimedBy() != "m1" || h[0].GetOlderThanMs() != 1000 {
				t.Fatalf("holder got evictions %v, want one for d1 older than 1000 claimed by m1", h)
			}
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatal("the claimer's older copy was never evicted")
}

// breakOnFirstEviction is an evictRecorder whose first stream breaks, with
// no answer, on the first batch carrying an eviction.
type breakOnFirstEviction struct {
	evictRecorder
	broke atomic.Bool
}

func (f *breakOnFirstEviction) Apply(stream matcherv1.MatcherService_ApplyServer) error {
	req, err := stream.Recv()
	if err != nil {
		return nil
	}
	if len(req.GetEvictions()) > 0 && f.broke.CompareAndSwap(false, true) {
		return status.Error(codes.Unavailable, "connection lost with the batch")
	}
	// Not this one: answer it and the rest as the recorder does.
	f.mu.Lock()
	f.got = append(f.got, req.GetEvictions()...)
	f.mu.Unlock()
	if err := stream.Send(&matcherv1.ApplyResponse{Seq: req.GetSeq(), Epoch: req.GetEpoch()}); err != nil {
		return err
	}
	return f.evictRecorder.Apply(stream)
}

// TestEvictionOfABrokenStreamIsSentAgain: an eviction whose batch was
// never answered (the stream broke) reaches the matcher on the next
// stream; lost, it would leave the driver's older copy there, shown in
// answers until the driver's next claim.
func TestEvictionOfABrokenStreamIsSentAgain(t *testing.T) {
	f := &breakOnFirstEviction{}
	src := oneMember(t, serveFake(t, f))
	c := runClient(t, Config{}, src)
	waitFor(t, func() bool { return len(c.otherPeers("elsewhere")) == 1 })
	c.evictElsewhere("elsewhere", "d1", 42)
	waitFor(t, func() bool {
		for _, e := range f.evictions() {
			if e.GetDriverId() == "d1" && e.GetOlderThanMs() == 42 {
				return true
			}
		}
		return false
	})
}

// gatedHolder is a fake matcher that records evictions and holds back
// its answer to a batch carrying any until release is closed.
type gatedHolder struct {
	evictRecorder
	release chan struct{}
}

func (f *gatedHolder) Apply(stream matcherv1.MatcherService_ApplyServer) error {
	for {
		req, err := stream.Recv()
		if err != nil {
			return nil
		}
		if len(req.GetEvictions()) > 0 {
			f.mu.Lock()
			f.got = append(f.got, req.GetEvictions()...)
			f.mu.Unlock()
			<-f.release
		}
		if err := stream.Send(&matcherv1.ApplyResponse{Seq: req.GetSeq(), Epoch: req.GetEpoch()}); err != nil {
			return err
		}
	}
}

// TestClaimIsAcknowledgedOnceTheOlderCopyIsGone: an update that claims
// its driver (it crossed to a shard of another matcher) is acknowledged
// only after the matcher holding the driver's older copy has applied the
// eviction. Acknowledged before, a search of the old shard on a matcher
// whose eviction queue is behind showed the position before the
// acknowledged one (the stale answers of a saturated 20,000 updates/s
// chaos run).
func TestClaimIsAcknowledgedOnceTheOlderCopyIsGone(t *testing.T) {
	claimer, holder := &evictRecorder{}, &gatedHolder{release: make(chan struct{})}
	src := twoMembers(t, serveFake(t, claimer), serveFake(t, holder))
	c := runClient(t, Config{}, src)
	m, _ := src.Current()
	r := newResults(1)
	c.Send(context.Background(), Update{DriverID: "d1", Pos: positionOwnedBy(t, m, "m1"), TimestampMs: 1000}, r, 0, time.Now().Add(10*time.Second))
	waitFor(t, func() bool { return len(holder.evictions()) == 1 })
	select {
	case <-r.done:
		t.Fatal("the claim was acknowledged while the older copy was still held elsewhere")
	case <-time.After(100 * time.Millisecond):
	}
	close(holder.release)
	if got := r.wait(t)[0]; got.Outcome != driver.Applied {
		t.Fatalf("result %+v, want applied", got)
	}
	if e := holder.evictions()[0]; e.GetDriverId() != "d1" || e.GetOlderThanMs() != 1000 || e.GetClaimedBy() != "m1" {
		t.Fatalf("holder got eviction %v, want d1 older than 1000 claimed by m1", e)
	}
}

// TestClaimIsNotHeldByABrokenStream: when the stream carrying a claim's
// eviction breaks, the acknowledgement waits no longer (the matcher is
// out of reach and serves nothing); the eviction is still sent again.
func TestClaimIsNotHeldByABrokenStream(t *testing.T) {
	claimer, holder := &evictRecorder{}, &breakOnFirstEviction{}
	src := twoMembers(t, serveFake(t, claimer), serveFake(t, holder))
	c := runClient(t, Config{}, src)
	m, _ := src.Current()
	r := newResults(1)
	c.Send(context.Background(), Update{DriverID: "d1", Pos: positionOwnedBy(t, m, "m1"), TimestampMs: 1000}, r, 0, time.Now().Add(10*time.Second))
	if got := r.wait(t)[0]; got.Outcome != driver.Applied {
		t.Fatalf("result %+v, want applied", got)
	}
	waitFor(t, func() bool { return len(holder.evictions()) > 0 })
}

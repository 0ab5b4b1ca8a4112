package fleet

import (
	"context"
	"errors"
	"io"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/geomatch/geomatch/driver"
	"github.com/geomatch/geomatch/internal/geo"
	"github.com/geomatch/geomatch/membership"
	matcherv1 "github.com/geomatch/geomatch/proto/geomatch/matcher/v1"
	"github.com/geomatch/geomatch/shardmap"
)

// fakeMatcher is a scripted MatcherService: it counts the Apply streams it
// serves and answers every update with outcome(epoch of the batch).
type fakeMatcher struct {
	matcherv1.UnimplementedMatcherServiceServer
	id      string
	streams atomic.Int32
	batches atomic.Int32
	outcome func(reqEpoch uint64) matcherv1.Outcome
	epoch   uint64
}

func (f *fakeMatcher) Apply(stream matcherv1.MatcherService_ApplyServer) error {
	f.streams.Add(1)
	for {
		req, err := stream.Recv()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return err
		}
		f.batches.Add(1)
		resp := &matcherv1.ApplyResponse{Seq: req.GetSeq(), Epoch: f.epoch}
		for i := range req.GetUpdates() {
			if o := f.outcome(req.GetEpoch()); o != matcherv1.Outcome_OUTCOME_APPLIED {
				resp.Exceptions = append(resp.Exceptions, &matcherv1.Exception{Index: uint32(i), Outcome: o})
			}
		}
		if err := stream.Send(resp); err != nil {
			return err
		}
	}
}

func (f *fakeMatcher) Nearby(context.Context, *matcherv1.NearbyRequest) (*matcherv1.NearbyResponse, error) {
	return &matcherv1.NearbyResponse{Epoch: f.epoch}, nil
}

// serveFake serves f on a loopback port until the test ends.
func serveFake(t *testing.T, f matcherv1.MatcherServiceServer) string {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := grpc.NewServer()
	matcherv1.RegisterMatcherServiceServer(s, f)
	done := make(chan struct{})
	go func() { defer close(done); _ = s.Serve(lis) }()
	t.Cleanup(func() { s.Stop(); <-done })
	return lis.Addr().String()
}

// runClient runs a fleet client over src until the test ends.
func runClient(t *testing.T, cfg Config, src membership.Source) *Client {
	t.Helper()
	c, err := New(cfg, src, nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- c.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	})
	return c
}

// results collects the results of sent updates.
type results struct {
	mu   sync.Mutex
	got  map[int32]Result
	done chan struct{}
	want int
}

func newResults(want int) *results {
	return &results{got: map[int32]Result{}, done: make(chan struct{}), want: want}
}

func (r *results) Done(idx int32, res Result) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.got[idx] = res
	if len(r.got) == r.want {
		close(r.done)
	}
}

func (r *results) wait(t *testing.T) map[int32]Result {
	t.Helper()
	select {
	case <-r.done:
	case <-time.After(10 * time.Second):
		t.Fatal("results did not arrive")
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.got
}

func oneMember(t *testing.T, addr string) *membership.Local {
	t.Helper()
	src, err := membership.NewLocal(shardmap.DefaultDoc([]shardmap.Member{{ID: "m1", Addr: addr, Weight: 1}}))
	if err != nil {
		t.Fatal(err)
	}
	return src
}

var times = geo.LatLng{Lat: 40.758, Lng: -73.9855}

// TestNoApplyStreamUntilThereIsAnUpdate: a client that only searches (a
// matcher's ride coordinator) opens no update stream; the first update
// opens one, and later ones reuse it.
func TestNoApplyStreamUntilThereIsAnUpdate(t *testing.T) {
	f := &fakeMatcher{id: "m1", epoch: 1, outcome: func(uint64) matcherv1.Outcome { return matcherv1.Outcome_OUTCOME_APPLIED }}
	src := oneMember(t, serveFake(t, f))
	c := runClient(t, Config{}, src)
	for range 5 {
		if _, err := c.Nearby(context.Background(), Query{Pos: times, RadiusM: 1000, K: 5}); err != nil {
			t.Fatal(err)
		}
	}
	time.Sleep(50 * time.Millisecond)
	if n := f.streams.Load(); n != 0 {
		t.Fatalf("%d Apply streams opened by a client that only searched", n)
	}
	for i := range 3 {
		r := newResults(1)
		c.Send(context.Background(), Update{DriverID: "d1", Pos: times, TimestampMs: int64(i + 1)}, r, 0, time.Now().Add(5*time.Second))
		if got := r.wait(t)[0]; got.Outcome != driver.Applied {
			t.Fatalf("update %d: %+v", i, got)
		}
	}
	if n := f.streams.Load(); n != 1 {
		t.Fatalf("%d Apply streams for three updates, want 1", n)
	}
}

// TestUpdateRefusedAsNotOwnerIsRetriedThenReported: an update the owner
// keeps refusing is routed again, MaxAttempts times in all, and then
// reported NotOwner with the node's reason.
func TestUpdateRefusedAsNotOwnerIsRetriedThenReported(t *testing.T) {
	f := &fakeMatcher{id: "m1", epoch: 1, outcome: func(uint64) matcherv1.Outcome { return matcherv1.Outcome_OUTCOME_NOT_OWNER }}
	src := oneMember(t, serveFake(t, f))
	c := runClient(t, Config{MaxAttempts: 3}, src)
	r := newResults(1)
	c.Send(context.Background(), Update{DriverID: "d1", Pos: times, TimestampMs: 1}, r, 7, time.Now().Add(10*time.Second))
	got := r.wait(t)[7]
	if got.Outcome != driver.NotOwner || got.Msg == "" {
		t.Fatalf("result %+v, want NotOwner with a reason", got)
	}
	if n := f.batches.Load(); n != 3 {
		t.Fatalf("%d attempts, want 3", n)
	}
}

// TestUnreachableOwnerIsUnavailableNamingIt: updates and searches for a
// matcher nobody listens at fail with UNAVAILABLE naming the matcher,
// within their deadline.
func TestUnreachableOwnerIsUnavailableNamingIt(t *testing.T) {
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := lis.Addr().String()
	lis.Close()
	c := runClient(t, Config{QueryTimeout: 2 * time.Second}, oneMember(t, addr))
	r := newResults(1)
	c.Send(context.Background(), Update{DriverID: "d1", Pos: times, TimestampMs: 1}, r, 0, time.Now().Add(3*time.Second))
	if got := r.wait(t)[0]; got.Outcome != driver.Unavailable {
		t.Fatalf("update to a dead matcher: %+v, want Unavailable", got)
	}
	_, err = c.Nearby(context.Background(), Query{Pos: times, RadiusM: 1000, K: 5})
	if status.Code(err) != codes.Unavailable && status.Code(err) != codes.DeadlineExceeded {
		t.Fatalf("search of a dead matcher: %v, want UNAVAILABLE", err)
	}
	if err == nil || !strings.Contains(err.Error(), "m1") {
		t.Fatalf("error %v does not name the matcher", err)
	}
}

// TestConfigRule: zero fields take the defaults, negative ones are an
// error naming the field.
func TestConfigRule(t *testing.T) {
	c := Config{}
	if err := c.fill(); err != nil || c.QueueLen != DefaultConfig().QueueLen || c.MaxAttempts != 5 {
		t.Fatalf("zero config: %+v, %v", c, err)
	}
	bad := Config{QueueLen: -1, BatchMax: 20000}
	err := bad.fill()
	if err == nil || !strings.Contains(err.Error(), "QueueLen") || !strings.Contains(err.Error(), "BatchMax") {
		t.Fatalf("bad config: %v", err)
	}
}

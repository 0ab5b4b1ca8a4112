package fleet

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	matcherv1 "github.com/geomatch/geomatch/proto/geomatch/matcher/v1"
)

// syncMatcher answers SyncFences slowly, recording the revisions asked.
type syncMatcher struct {
	fakeMatcher
	calls   atomic.Int32
	maxSeen atomic.Uint64
}

func (s *syncMatcher) SyncFences(_ context.Context, req *matcherv1.SyncFencesRequest) (*matcherv1.SyncFencesResponse, error) {
	s.calls.Add(1)
	time.Sleep(20 * time.Millisecond)
	rev := req.GetMinRevision()
	for {
		old := s.maxSeen.Load()
		if rev <= old || s.maxSeen.CompareAndSwap(old, rev) {
			break
		}
	}
	return &matcherv1.SyncFencesResponse{Revision: s.maxSeen.Load()}, nil
}

// TestSyncFencesGroupsConcurrentCalls: 200 concurrent calls cost the
// matcher a few rounds, not 200 calls, and each returns only once a round
// at or past its revision was confirmed.
func TestSyncFencesGroupsConcurrentCalls(t *testing.T) {
	m := &syncMatcher{}
	c := runClient(t, Config{}, oneMember(t, serveFake(t, m)))
	var wg sync.WaitGroup
	errs := make(chan error, 200)
	for i := range 200 {
		wg.Go(func() {
			rev := uint64(i + 1)
			if err := c.SyncFences(context.Background(), rev); err != nil {
				errs <- err
				return
			}
			if got := m.maxSeen.Load(); got < rev {
				t.Errorf("SyncFences(%d) returned with the matcher at %d", rev, got)
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	if n := m.calls.Load(); n > 20 {
		t.Fatalf("200 concurrent calls made %d SyncFences calls, want a few rounds", n)
	}
	t.Logf("200 concurrent calls: %d rounds", m.calls.Load())

	// A call whose context ends while it waits says so; later calls work.
	ctx, cancel := context.WithTimeout(context.Background(), time.Millisecond)
	defer cancel()
	_ = c.SyncFences(ctx, 1000)
	if err := c.SyncFences(context.Background(), 1001); err != nil {
		t.Fatal(err)
	}
}

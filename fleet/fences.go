package fleet

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"
	"time"

	matcherv1 "github.com/geomatch/geomatch/proto/geomatch/matcher/v1"
	geomatchv1 "github.com/geomatch/geomatch/proto/geomatch/v1"
	"github.com/geomatch/geomatch/shardmap"
)

// Fence definitions live in the durable store; every matcher follows
// them. The client's part is to make sure every member has applied a
// change before the public call that made it returns, and to sum fence
// counts over the members.

// SyncFences asks every member of the current ring to apply the fence
// changes up to revision rev, in parallel. It fails, naming the members,
// when some do not confirm (the change is stored: they apply it when they
// next read the store).
//
// Concurrent calls are grouped (a group commit): one round at a time
// runs, and the calls that arrive meanwhile share the next round, which
// asks for the highest revision among them. A burst of fence writes so
// costs each matcher one call and one read of the store's changes per
// round, not one per write. A round runs under the context of the call
// that starts it, without its cancellation, for at most syncRoundTimeout;
// each call waits for its round within its own deadline.
func (c *Client) SyncFences(ctx context.Context, rev uint64) error {
	s := &c.fenceSync
	s.mu.Lock()
	r := s.next
	if r == nil {
		r = &syncRound{done: make(chan struct{})}
		s.next = r
	}
	r.rev = max(r.rev, rev)
	s.mu.Unlock()
	for {
		select {
		case <-r.done:
			return r.err
		case <-ctx.Done():
			return fmt.Errorf("fence revision %d is stored; waiting for the matchers to confirm it: %w", rev, ctx.Err())
		case s.slot <- struct{}{}:
		}
		// This call holds the slot: it runs the round collecting now
		// (its own, unless another call ran that one already).
		s.mu.Lock()
		run := s.next
		s.next = nil
		s.mu.Unlock()
		if run != nil {
			rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), syncRoundTimeout)
			run.err = c.syncFencesRound(rctx, run.rev)
			cancel()
			close(run.done)
		}
		<-s.slot
	}
}

// syncRoundTimeout bounds one round of SyncFences.
const syncRoundTimeout = 10 * time.Second

// fenceSync groups concurrent SyncFences calls.
type fenceSync struct {
	mu   sync.Mutex
	next *syncRound    // the round collecting calls; nil: none yet
	slot chan struct{} // held by the call running a round
}

// syncRound is one SyncFences round: the revision asked of every member
// and, once done is closed, the outcome.
type syncRound struct {
	rev  uint64
	done chan struct{}
	err  error
}

// syncFencesRound is one round of SyncFences.
func (c *Client) syncFencesRound(ctx context.Context, rev uint64) error {
	m, _ := c.src.Current()
	var mu sync.Mutex
	var failed []string
	c.eachMember(ctx, m, func(ctx context.Context, mem shardmap.Member, p *peer, err error) {
		var resp *matcherv1.SyncFencesResponse
		if err == nil {
			resp, err = p.rpc.SyncFences(ctx, &matcherv1.SyncFencesRequest{MinRevision: rev})
		}
		if err == nil && resp.GetRevision() < rev {
			err = fmt.Errorf("holds revision %d", resp.GetRevision())
		}
		if err != nil {
			mu.Lock()
			failed = append(failed, fmt.Sprintf("%s: %v", mem.ID, err))
			mu.Unlock()
		}
	})
	if len(failed) > 0 {
		slices.Sort(failed)
		return fmt.Errorf("fence revision %d is stored but not confirmed by %d of %d matchers (they apply it when they next read the store): %s",
			rev, len(failed), len(m.Members()), strings.Join(failed, "; "))
	}
	return nil
}

// FenceCounts sums the counts of the listed fences over every member of
// the ring, each counting the shards it owns. Fences no member knows are
// left out. Members must answer at one ring epoch, so that every shard is
// counted once; the call retries once when the ring moved meanwhile.
func (c *Client) FenceCounts(ctx context.Context, ids []string) (map[string]*geomatchv1.FenceCount, error) {
	var err error
	for range 3 {
		var out map[string]*geomatchv1.FenceCount
		out, err = c.fenceCountsOnce(ctx, ids)
		if err == nil {
			return out, nil
		}
		if ctx.Err() != nil {
			break
		}
		c.refresh(ctx)
	}
	return nil, err
}

func (c *Client) fenceCountsOnce(ctx context.Context, ids []string) (map[string]*geomatchv1.FenceCount, error) {
	m, _ := c.src.Current()
	var mu sync.Mutex
	var failed []string
	epochs := map[uint64]bool{}
	out := make(map[string]*geomatchv1.FenceCount)
	c.eachMember(ctx, m, func(ctx context.Context, mem shardmap.Member, p *peer, err error) {
		var resp *matcherv1.FenceCountsResponse
		if err == nil {
			resp, err = p.rpc.FenceCounts(ctx, &matcherv1.FenceCountsRequest{FenceIds: ids})
		}
		mu.Lock()
		defer mu.Unlock()
		if err != nil {
			failed = append(failed, fmt.Sprintf("%s: %v", mem.ID, err))
			return
		}
		epochs[resp.GetEpoch()] = true
		for _, fc := range resp.GetCounts() {
			sum := out[fc.GetFenceId()]
			if sum == nil {
				sum = &geomatchv1.FenceCount{FenceId: fc.GetFenceId(), ByVehicleClass: map[string]int64{}}
				out[fc.GetFenceId()] = sum
			}
			sum.Inside += fc.GetInside()
			sum.Available += fc.GetAvailable()
			for k, v := range fc.GetByVehicleClass() {
				sum.ByVehicleClass[k] += v
			}
		}
	})
	switch {
	case len(failed) > 0:
		slices.Sort(failed)
		return nil, fmt.Errorf("fence counts incomplete: %d matchers did not answer: %s", len(failed), strings.Join(failed, "; "))
	case len(epochs) > 1:
		return nil, fmt.Errorf("fence counts: matchers answered at epochs %v; the ring moved while counting", slices.Sorted(maps.Keys(epochs)))
	}
	return out, nil
}

// eachMember calls f for every member of m in parallel, with the peer
// to reach it (or the error that made it unreachable), and waits.
func (c *Client) eachMember(ctx context.Context, m *shardmap.Map, f func(context.Context, shardmap.Member, *peer, error)) {
	var wg sync.WaitGroup
	for _, mem := range m.Members() {
		p, err := c.peer(mem)
		wg.Add(1)
		go func() { defer wg.Done(); f(ctx, mem, p, err) }()
	}
	wg.Wait()
}

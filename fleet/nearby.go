package fleet

import (
	"context"
	"errors"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/uber/h3-go/v4"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/geomatch/geomatch/driver"
	"github.com/geomatch/geomatch/internal/geo"
	matcherv1 "github.com/geomatch/geomatch/proto/geomatch/matcher/v1"
	geomatchv1 "github.com/geomatch/geomatch/proto/geomatch/v1"
	"github.com/geomatch/geomatch/shardmap"
)

func cellOf(v uint64) h3.Cell { return h3.Cell(v) }

// geomatchStatus is the wire form of a driver status (equal values).
func geomatchStatus(s driver.Status) geomatchv1.DriverStatus { return geomatchv1.DriverStatus(s) }

// Query is one nearby search.
type Query struct {
	// Pos is the search centre.
	Pos geo.LatLng
	// RadiusM bounds the search, in meters.
	RadiusM float64
	// K is the most drivers returned.
	K int
	// Status filters by dispatch status (Unspecified: any but offline).
	Status driver.Status
	// VehicleClass filters by class ("": any).
	VehicleClass string
	// OnStreamOnly keeps drivers whose last update came on their Connect
	// stream only: those a ride offer can reach.
	OnStreamOnly bool
}

// Answer is the answer of Search.
type Answer struct {
	// Drivers are the nearest drivers found, nearest first, ties by id.
	Drivers []*matcherv1.Neighbor
	// Missing are the shards (sorted) whose owner could not be reached
	// before the search had to answer: their drivers are not in Drivers.
	// Empty for an exact answer.
	Missing []shardmap.Cell
	// cause is the first failure that left shards out, naming its owner.
	cause error
}

// Partial reports whether the answer left shards out.
func (r Answer) Partial() bool { return len(r.Missing) > 0 }

// Nearby returns the q.K drivers nearest to q.Pos within q.RadiusM that
// match q's filters, nearest first with ties by id, exactly as a
// brute-force search over every driver would. It is Search without partial
// answers: when an owner stays unreachable it fails with UNAVAILABLE
// naming the node and the shards left out.
func (c *Client) Nearby(ctx context.Context, q Query) ([]*matcherv1.Neighbor, error) {
	res, err := c.Search(ctx, q)
	if err != nil {
		return nil, err
	}
	if res.Partial() {
		return nil, status.Errorf(codes.Unavailable, "nearby: %d shards left out, an exact answer is not possible: %s", len(res.Missing),
			strings.TrimPrefix(status.Convert(res.cause).Message(), "nearby: "))
	}
	return res.Drivers, nil
}

// Search is Nearby that answers even when some owners cannot be reached:
// exact when every owner answers, else the best answer of the owners that
// did, with the shards left out in Answer.Missing (never silently).
//
// It retries, within the query's time budget (QueryTimeout or the
// caller's earlier deadline), on NotOwner (the ring moved: at most
// MaxAttempts times) and on owners that cannot be reached (a node died
// or restarts: its shards move to another owner when the ring changes,
// and the search is routed again then, or after a short backoff). It
// answers with what it has once only partialReserve of the budget is
// left, so the answer reaches the caller before its deadline. Errors that
// no retry can cure (a bad query, an internal error) fail the search.
func (c *Client) Search(ctx context.Context, q Query) (Answer, error) {
	deadline := time.Now().Add(c.cfg.QueryTimeout)
	if d, ok := ctx.Deadline(); ok && d.Before(deadline) {
		deadline = d
	}
	// Calls to owners end reserve before the deadline, so that an owner
	// that hangs (stopped, partitioned) still leaves time to answer
	// without it.
	reserve := partialReserve(time.Until(deadline))
	callCtx, cancel := context.WithDeadline(ctx, deadline.Add(-reserve))
	defer cancel()
	notOwners := 0
	for attempt := 1; ; attempt++ {
		m, changed := c.src.Current()
		res, err := c.scatter(callCtx, ctx, m, q)
		no, isNotOwner := AsNotOwner(err)
		switch {
		case isNotOwner:
			if notOwners++; notOwners >= c.cfg.MaxAttempts {
				return Answer{}, status.Errorf(codes.Unavailable, "nearby: gave up after %d attempts, the ring kept changing: %v", notOwners, err)
			}
			if no.Epoch > m.Epoch() {
				c.refresh(ctx)
				continue
			}
		case err != nil:
			return Answer{}, err
		case !res.Partial():
			return res, nil
		default:
			// Owners left out: if the ring moved on where this client
			// cannot see it (cut off from Consul), the members know.
			c.askPeersForRing()
		}
		// Wait for the ring to move (a failover), or a backoff, while the
		// budget allows another try; else answer with what we have.
		wait := backoff(attempt)
		if time.Until(deadline)-wait < 2*reserve {
			if isNotOwner {
				return Answer{}, status.Errorf(codes.Unavailable, "nearby: the ring kept changing: %v", err)
			}
			return res, nil
		}
		t := time.NewTimer(wait)
		select {
		case <-t.C:
		case <-changed:
			t.Stop()
		case <-callCtx.Done():
			t.Stop()
			if ctx.Err() != nil {
				return Answer{}, status.FromContextError(ctx.Err()).Err()
			}
			if isNotOwner {
				return Answer{}, status.Errorf(codes.Unavailable, "nearby: the ring kept changing: %v", err)
			}
			return res, nil
		}
	}
}

// partialReserve is the part of a search's budget kept for answering with
// what it has after owners failed to answer: a tenth, at least 20 ms and at
// most 200 ms.
func partialReserve(budget time.Duration) time.Duration {
	return min(max(budget/10, 20*time.Millisecond), 200*time.Millisecond)
}

// retryable reports whether a failed call to an owner may succeed on
// another try (the owner is down, restarting, slow or still warming up),
// as opposed to a refusal no retry cures.
func retryable(err error) bool {
	switch status.Code(err) {
	case codes.Unavailable, codes.DeadlineExceeded, codes.Canceled, codes.ResourceExhausted:
		return true
	}
	return false
}

// scatter answers a search in two steps, its calls bounded by ctx; parent
// is the caller's context (a call that fails after the caller gave up is
// not a missing shard but the search's end). First it asks the owner of the
// query point's own shard, over all of that owner's shards in the cover.
// If that already gives k drivers, the k-th distance d bounds the answer:
// only owners with shards within d of the query (the first answer's
// targets narrowed to d by the shards' fine cells: shardmap.Narrow) can
// still hold a better driver, and they are asked for drivers within d:
// remote owners in parallel, owners in this process in turn on the
// calling goroutine (their work is CPU, which more goroutines would not
// add). In a dense city the second step usually asks nobody (at 100k
// drivers over New York, 0.4 other owners per query on average, against
// 1.7 with the cached cover of d), so most queries cost one internal call
// instead of one per owner around the circle. The answer is the same as
// asking everyone.
//
// An owner that cannot be reached (retryable) leaves its shards in
// Answer.Missing and the others' answers stand; a NotOwner refusal or
// any other error fails the whole search.
func (c *Client) scatter(ctx, parent context.Context, m *shardmap.Map, q Query) (Answer, error) {
	k := q.K
	targets, home := m.RouteHome(q.Pos, q.RadiusM)
	if len(targets) == 0 {
		return Answer{}, nil
	}
	var (
		missing []shardmap.Cell
		cause   error
	)
	ask := func(t shardmap.Target, radiusM float64) ([]*matcherv1.Neighbor, error) {
		p, err := c.peer(t.Member)
		if err != nil {
			return nil, status.Errorf(codes.Unavailable, "nearby: %v", err)
		}
		req := &matcherv1.NearbyRequest{
			Epoch: m.Epoch(), Lat: q.Pos.Lat, Lng: q.Pos.Lng, RadiusM: radiusM, Limit: int32(k),
			Shards: make([]uint64, len(t.Shards)), Status: geomatchStatus(q.Status), VehicleClass: q.VehicleClass,
			OnStreamOnly: q.OnStreamOnly,
		}
		for i, c := range t.Shards {
			req.Shards[i] = uint64(c)
		}
		resp, err := p.nearby(ctx, req)
		if err != nil {
			if _, ok := AsNotOwner(err); ok {
				return nil, err
			}
			return nil, unreachable("nearby", t.Member, err)
		}
		return resp.GetNeighbors(), nil
	}
	var first []*matcherv1.Neighbor
	rest, bound := targets, q.RadiusM
	if home >= 0 {
		var err error
		first, err = ask(targets[home], q.RadiusM)
		switch {
		case err == nil:
			if len(first) >= k {
				bound = first[k-1].GetDistanceM()
			}
			if len(targets) == 1 {
				return Answer{Drivers: first}, nil // one owner's answer: sorted, at most k
			}
			// Narrow's answer is ours to change: the shards of the first
			// answer that come within bound by their fine cells, usually
			// one or two members fewer than a cover of bound, without
			// routing again.
			rest = slices.DeleteFunc(m.Narrow(targets, q.Pos, bound), func(t shardmap.Target) bool { return t.Member.ID == targets[home].Member.ID })
			if len(rest) == 0 {
				return Answer{Drivers: first}, nil
			}
		case retryable(err) && parent.Err() == nil:
			missing, cause = append(missing, targets[home].Shards...), err
			rest = slices.Delete(slices.Clone(targets), home, home+1)
			if len(rest) == 0 {
				return Answer{Missing: missing, cause: cause}, nil
			}
		default:
			return Answer{}, err
		}
	}
	var (
		wg      sync.WaitGroup
		results = make([][]*matcherv1.Neighbor, len(rest)+1)
		errs    = make([]error, len(rest))
	)
	results[len(rest)] = first
	// Remote owners are asked in parallel, but the last of them on this
	// goroutine (the common second step asks one owner, and a new
	// goroutine would grow its stack for the call every time); owners in
	// this process are asked in turn here too.
	lastRemote := -1
	for i, t := range rest {
		if !c.inProcess(t.Member.ID) {
			lastRemote = i
		}
	}
	for i, t := range rest {
		if i == lastRemote || c.inProcess(t.Member.ID) {
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			results[i], errs[i] = ask(t, bound)
		}()
	}
	for i, t := range rest {
		if i == lastRemote || c.inProcess(t.Member.ID) {
			results[i], errs[i] = ask(t, bound)
		}
	}
	wg.Wait()
	// A NotOwner wins over other errors: the retry may route around them.
	for _, err := range errs {
		if _, ok := AsNotOwner(err); ok {
			return Answer{}, err
		}
	}
	var fatal []error
	for i, err := range errs {
		switch {
		case err == nil:
		case retryable(err) && parent.Err() == nil:
			missing = append(missing, rest[i].Shards...)
			if cause == nil {
				cause = err
			}
		default:
			fatal = append(fatal, err)
		}
	}
	if err := errors.Join(fatal...); err != nil {
		return Answer{}, err
	}
	slices.Sort(missing)
	return Answer{Drivers: merge(results, k), Missing: missing, cause: cause}, nil
}

// inProcess reports whether the member runs in this process.
func (c *Client) inProcess(id string) bool { return c.cfg.InProcess[id] != nil }

// merge combines per-owner answers into the global top k, nearest first,
// ties by id. A driver that shows up twice (its copy on the old node not yet
// evicted after it crossed to another node's shard) keeps its newest fix.
func merge(parts [][]*matcherv1.Neighbor, k int) []*matcherv1.Neighbor {
	total := 0
	for _, p := range parts {
		total += len(p)
	}
	all := make([]*matcherv1.Neighbor, 0, total)
	for _, p := range parts {
		all = append(all, p...)
	}
	if len(parts) > 1 {
		all = dedupeNewest(all)
	}
	slices.SortFunc(all, func(a, b *matcherv1.Neighbor) int {
		return geo.CompareHits(geo.Hit{ID: a.GetDriverId(), DistanceM: a.GetDistanceM()}, geo.Hit{ID: b.GetDriverId(), DistanceM: b.GetDistanceM()})
	})
	if len(all) > k {
		all = all[:k]
	}
	return all
}

// mergeScanMax is the largest merge that looks for duplicates by scanning
// instead of through a map: a few hundred comparisons of short ids cost
// less than building the map.
const mergeScanMax = 64

// dedupeNewest keeps one entry per driver id, the one with the newest fix
// (the first of equal ones), in the order of all.
func dedupeNewest(all []*matcherv1.Neighbor) []*matcherv1.Neighbor {
	if len(all) > mergeScanMax {
		newest := make(map[string]int, len(all)) // id → index in all
		dup := false
		for i, n := range all {
			j, ok := newest[n.GetDriverId()]
			if !ok {
				newest[n.GetDriverId()] = i
				continue
			}
			dup = true
			if n.GetTimestampMs() > all[j].GetTimestampMs() {
				all[j], newest[n.GetDriverId()] = nil, i
			} else {
				all[i] = nil
			}
		}
		if dup {
			all = slices.DeleteFunc(all, func(n *matcherv1.Neighbor) bool { return n == nil })
		}
		return all
	}
	out := all[:0]
	for _, n := range all {
		j := slices.IndexFunc(out, func(o *matcherv1.Neighbor) bool { return o.GetDriverId() == n.GetDriverId() })
		switch {
		case j < 0:
			out = append(out, n)
		case n.GetTimestampMs() > out[j].GetTimestampMs():
			out[j] = n
		}
	}
	clear(all[len(out):])
	return out
}

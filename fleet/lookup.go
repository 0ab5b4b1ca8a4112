package fleet

import (
	"cmp"
	"context"
	"math"
	"slices"
	"sync"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	matcherv1 "github.com/geomatch/geomatch/proto/geomatch/matcher/v1"
	"github.com/geomatch/geomatch/shardmap"
)

// Drivers by id. A driver lives on the owner of its position's shard, so
// the client asks every member of the ring; a driver that crossed to
// another node's shard may briefly have a copy on each (the old one is on
// its way out), and the newest copy wins, as in a nearby answer.

// Lookup returns the drivers of ids the fleet holds, by id, each its
// newest copy. Every member must answer (UNAVAILABLE naming the first one
// that did not): an answer without a member could miss a driver.
func (c *Client) Lookup(ctx context.Context, ids []string) (map[string]*matcherv1.Neighbor, error) {
	out := make(map[string]*matcherv1.Neighbor, len(ids))
	for lo := 0; lo < len(ids); lo += maxLookupIDs {
		req := &matcherv1.LookupRequest{DriverIds: ids[lo:min(lo+maxLookupIDs, len(ids))]}
		err := c.askAll(ctx, "lookup", func(ctx context.Context, p *peer) ([]*matcherv1.Neighbor, error) {
			resp, err := p.lookup(ctx, req)
			return resp.GetDrivers(), err
		}, func(ds []*matcherv1.Neighbor) { keepNewest(out, ds) })
		if err != nil {
			return nil, err
		}
	}
	return out, nil
}

// Scan returns one page of the whole fleet in id order: at most limit
// drivers whose ids sort after after, of class ("" any), each its newest
// copy. The last id of a full page is the next page's after.
func (c *Client) Scan(ctx context.Context, after string, limit int, class string) ([]*matcherv1.Neighbor, error) {
	if limit <= 0 || limit > maxScanLimit {
		return nil, status.Errorf(codes.InvalidArgument, "limit: must be within [1, %d], got %d", maxScanLimit, limit)
	}
	req := &matcherv1.ScanRequest{After: after, Limit: int32(limit), VehicleClass: class}
	newest := make(map[string]*matcherv1.Neighbor)
	err := c.askAll(ctx, "scan", func(ctx context.Context, p *peer) ([]*matcherv1.Neighbor, error) {
		resp, err := p.scan(ctx, req)
		return resp.GetDrivers(), err
	}, func(ds []*matcherv1.Neighbor) { keepNewest(newest, ds) })
	if err != nil {
		return nil, err
	}
	page := make([]*matcherv1.Neighbor, 0, len(newest))
	for _, d := range newest {
		page = append(page, d)
	}
	slices.SortFunc(page, func(a, b *matcherv1.Neighbor) int { return cmp.Compare(a.GetDriverId(), b.GetDriverId()) })
	if len(page) > limit {
		page = page[:limit]
	}
	return page, nil
}

// keepNewest adds ds to byID, keeping each driver's newest copy.
func keepNewest(byID map[string]*matcherv1.Neighbor, ds []*matcherv1.Neighbor) {
	for _, d := range ds {
		if o, ok := byID[d.GetDriverId()]; !ok || d.GetTimestampMs() > o.GetTimestampMs() {
			byID[d.GetDriverId()] = d
		}
	}
}

// Remove takes driver id out of every matcher's index (it comes back with
// its next update). Best effort, like the evictions of a crossing driver:
// a matcher whose eviction queue is full keeps its copy until the
// driver's TTL.
func (c *Client) Remove(id string) {
	c.evictElsewhere("", id, math.MaxInt64)
}

// Bounds of the matchers' Lookup and Scan (matcher.MaxLookupIDs,
// matcher.MaxScanLimit).
const (
	maxLookupIDs = 1000
	maxScanLimit = 1000
)

// askAll calls ask on every member of the current ring in parallel and
// hands each answer to take (one at a time), within QueryTimeout. The
// first member that fails fails the call, named.
func (c *Client) askAll(ctx context.Context, what string, ask func(context.Context, *peer) ([]*matcherv1.Neighbor, error), take func([]*matcherv1.Neighbor)) error {
	ctx, cancel := context.WithTimeout(ctx, c.cfg.QueryTimeout)
	defer cancel()
	m, _ := c.src.Current()
	var (
		wg   sync.WaitGroup
		mu   sync.Mutex
		errs []error
	)
	for _, mem := range m.Members() {
		wg.Add(1)
		go func(mem shardmap.Member) {
			defer wg.Done()
			p, err := c.peer(mem)
			var ds []*matcherv1.Neighbor
			if err == nil {
				ds, err = ask(ctx, p)
			}
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				errs = append(errs, unreachable(what, mem, err))
				return
			}
			take(ds)
		}(mem)
	}
	wg.Wait()
	if len(errs) > 0 {
		return errs[0] // UNAVAILABLE (or another code) naming the member
	}
	return nil
}

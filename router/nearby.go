package router

import (
	"context"
	"errors"
	"slices"
	"sync"

	"github.com/uber/h3-go/v4"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/geomatch/geomatch/internal/geo"
	"github.com/geomatch/geomatch/matcher"
	matcherv1 "github.com/geomatch/geomatch/proto/geomatch/matcher/v1"
	geomatchv1 "github.com/geomatch/geomatch/proto/geomatch/v1"
	"github.com/geomatch/geomatch/shardmap"
)

func cellOf(v uint64) h3.Cell { return h3.Cell(v) }

// riderService implements geomatchv1.RiderServiceServer. Ride requests need
// the matching layer and answer Unimplemented until it runs.
type riderService struct {
	geomatchv1.UnimplementedRiderServiceServer
	r *Router
}

// NearbyDrivers implements RiderServiceServer: available drivers only.
func (s *riderService) NearbyDrivers(ctx context.Context, req *geomatchv1.NearbyDriversRequest) (*geomatchv1.NearbyDriversResponse, error) {
	if err := ValidateNearby(req); err != nil {
		return nil, status.Error(codes.InvalidArgument, err.Error())
	}
	q := geo.LatLng{Lat: req.GetPosition().GetLat(), Lng: req.GetPosition().GetLng()}
	found, err := s.r.Nearby(ctx, q, req.GetRadiusM(), int(req.GetLimit()), geomatchv1.DriverStatus_DRIVER_STATUS_AVAILABLE, req.GetVehicleClass())
	if err != nil {
		return nil, err
	}
	// Three allocations for the whole answer instead of two per driver.
	resp := &geomatchv1.NearbyDriversResponse{Drivers: make([]*geomatchv1.NearbyDriver, len(found))}
	drivers := make([]geomatchv1.NearbyDriver, len(found))
	positions := make([]geomatchv1.LatLng, len(found))
	for i, n := range found {
		p, d := &positions[i], &drivers[i]
		p.Lat, p.Lng = n.GetLat(), n.GetLng()
		d.DriverId, d.Position, d.DistanceM = n.GetDriverId(), p, n.GetDistanceM()
		d.VehicleClass, d.TimestampMs = n.GetVehicleClass(), n.GetTimestampMs()
		resp.Drivers[i] = d
	}
	return resp, nil
}

// Nearby returns the k drivers nearest to q within radiusM that have the
// given status (UNSPECIFIED: any but offline) and class ("" any), nearest
// first with ties by id, exactly as a brute-force search over every driver
// would. It retries on NotOwner and fails with UNAVAILABLE naming the node
// when an owner cannot be reached: a partial answer would not be exact.
func (r *Router) Nearby(ctx context.Context, q geo.LatLng, radiusM float64, k int, st geomatchv1.DriverStatus, class string) ([]*matcherv1.Neighbor, error) {
	ctx, cancel := context.WithTimeout(ctx, r.cfg.QueryTimeout)
	defer cancel()
	var found []*matcherv1.Neighbor
	err := r.retryNotOwner(ctx, "nearby", func(m *shardmap.Map) error {
		var err error
		found, err = r.scatter(ctx, m, q, radiusM, k, st, class)
		return err
	})
	return found, err
}

// scatter answers a search in two steps. First it asks the owner of the
// query point's own shard, over all of that owner's shards in the cover.
// If that already gives k drivers, the k-th distance d bounds the answer:
// only owners with shards within d of the query (the first answer's
// targets narrowed to d by the shards' fine cells: shardmap.Narrow) can
// still hold a better driver, and they are asked, in parallel, for drivers
// within d. In a dense city the second step usually asks nobody (at 100k drivers
// over New York, 0.4 other owners per query on average, against 1.7 with
// the cached cover of d), so most queries cost one internal call instead of
// one per owner around the circle. The answer is the same as asking
// everyone.
func (r *Router) scatter(ctx context.Context, m *shardmap.Map, q geo.LatLng, radiusM float64, k int, st geomatchv1.DriverStatus, class string) ([]*matcherv1.Neighbor, error) {
	targets := m.Route(q, radiusM)
	ask := func(t shardmap.Target, radiusM float64) ([]*matcherv1.Neighbor, error) {
		p, err := r.peer(t.Member)
		if err != nil {
			return nil, status.Errorf(codes.Unavailable, "nearby: %v", err)
		}
		req := &matcherv1.NearbyRequest{
			Epoch: m.Epoch(), Lat: q.Lat, Lng: q.Lng, RadiusM: radiusM, Limit: int32(k),
			Shards: make([]uint64, len(t.Shards)), Status: st, VehicleClass: class,
		}
		for i, c := range t.Shards {
			req.Shards[i] = uint64(c)
		}
		resp, err := p.nearby(ctx, req)
		if err != nil {
			if _, ok := matcher.AsNotOwner(err); ok {
				return nil, err
			}
			return nil, unreachable("nearby", t.Member, err)
		}
		return resp.GetNeighbors(), nil
	}
	switch len(targets) {
	case 0:
		return nil, nil
	case 1:
		return ask(targets[0], radiusM)
	}
	home := -1
	if _, _, owner, ok := m.Locate(q); ok {
		home = slices.IndexFunc(targets, func(t shardmap.Target) bool { return t.Member.ID == owner.ID })
	}
	var first []*matcherv1.Neighbor
	rest, bound := targets, radiusM
	if home >= 0 {
		var err error
		if first, err = ask(targets[home], radiusM); err != nil {
			return nil, err
		}
		if len(first) >= k {
			bound = first[k-1].GetDistanceM()
		}
		// Narrow's answer is ours to change: the shards of the first
		// answer that come within bound by their fine cells, usually one
		// or two members fewer than a cover of bound, without routing
		// again.
		rest = slices.DeleteFunc(m.Narrow(targets, q, bound), func(t shardmap.Target) bool { return t.Member.ID == targets[home].Member.ID })
	}
	if home >= 0 && len(rest) == 0 {
		return first, nil // one owner's answer: already sorted, at most k
	}
	var (
		wg      sync.WaitGroup
		results = make([][]*matcherv1.Neighbor, len(rest)+1)
		errs    = make([]error, len(rest))
	)
	results[len(rest)] = first
	// The last owner is asked on this goroutine: the common second step
	// asks one owner, and a new goroutine would grow its stack for the
	// call every time.
	for i, t := range rest[:len(rest)-1] {
		wg.Add(1)
		go func() {
			defer wg.Done()
			results[i], errs[i] = ask(t, bound)
		}()
	}
	last := len(rest) - 1
	results[last], errs[last] = ask(rest[last], bound)
	wg.Wait()
	// A NotOwner wins over other errors: the retry may route around them.
	for _, err := range errs {
		if _, ok := matcher.AsNotOwner(err); ok {
			return nil, err
		}
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return merge(results, k), nil
}

// unreachable turns a failed call to a matcher into the client's error,
// naming the matcher; what says which operation failed. Transport failures
// become UNAVAILABLE or DEADLINE_EXCEEDED; any other status keeps its code.
func unreachable(what string, mem shardmap.Member, err error) error {
	st := status.Convert(err)
	switch st.Code() {
	case codes.DeadlineExceeded:
		return status.Errorf(codes.DeadlineExceeded, "%s: matcher %s at %s did not answer in time: %s", what, mem.ID, mem.Addr, st.Message())
	case codes.Canceled:
		return status.Errorf(codes.Canceled, "%s: canceled: %s", what, st.Message())
	case codes.Unavailable:
		return status.Errorf(codes.Unavailable, "%s: matcher %s at %s unreachable: %s", what, mem.ID, mem.Addr, st.Message())
	}
	return status.Errorf(st.Code(), "%s: matcher %s at %s: %s", what, mem.ID, mem.Addr, st.Message())
}

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

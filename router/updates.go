package router

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/geomatch/geomatch/internal/geo"
	matcherv1 "github.com/geomatch/geomatch/proto/geomatch/matcher/v1"
	geomatchv1 "github.com/geomatch/geomatch/proto/geomatch/v1"
)

// driverService implements geomatchv1.DriverServiceServer.
type driverService struct {
	geomatchv1.UnimplementedDriverServiceServer
	r *Router
}

// route sends one update towards the owner of its shard on the current
// ring. block says whether to wait for room in a full queue (callers) or to
// fail at once (retries from the router's own goroutines).
func (r *Router) route(ctx context.Context, it item, block bool) {
	m, _ := r.src.Current()
	layout := m.Layout()
	pos := geo.LatLng{Lat: it.u.GetLat(), Lng: it.u.GetLng()}
	if it.u.GetFineCell() == 0 || it.epoch != m.Epoch() {
		// New update, or the layout may have changed since it was routed.
		it.u.FineCell = uint64(layout.FineCell(pos))
	}
	shard := layout.ShardOfFine(cellOf(it.u.GetFineCell()))
	owner, ok := m.Owner(shard)
	if !ok {
		r.finish(it, outcome{unavailable: true, msg: fmt.Sprintf("no matcher owns shard %s at epoch %d", shard, m.Epoch())})
		return
	}
	p, err := r.peer(owner)
	if err != nil {
		r.finish(it, outcome{unavailable: true, msg: err.Error()})
		return
	}
	it.epoch = m.Epoch()
	if !block {
		select {
		case p.queue <- it:
		default:
			r.finish(it, outcome{unavailable: true, msg: fmt.Sprintf("queue to matcher %s is full", owner.ID)})
		}
		return
	}
	select {
	case p.queue <- it:
	case <-ctx.Done():
		r.finish(it, outcome{unavailable: true, msg: fmt.Sprintf("queue to matcher %s is full: %v", owner.ID, ctx.Err())})
	}
}

// retry routes an update again after its owner refused it or its stream
// broke, until it runs out of attempts or time. nodeEpoch is the refusing
// node's epoch (0 when unknown).
func (r *Router) retry(it item, why string, nodeEpoch uint64) {
	it.attempt++
	if it.attempt >= r.cfg.MaxAttempts || time.Now().After(it.deadline) {
		o := outcome{unavailable: true, msg: why}
		if nodeEpoch != 0 {
			o = outcome{code: matcherv1.Outcome_OUTCOME_NOT_OWNER, msg: why}
		}
		r.finish(it, o)
		return
	}
	r.mu.Lock()
	closed := r.closed
	ctx := r.ctx
	r.mu.Unlock()
	if closed {
		r.finish(it, outcome{unavailable: true, msg: "router is shutting down"})
		return
	}
	if m, _ := r.src.Current(); nodeEpoch > m.Epoch() {
		go r.refresh(ctx)
	}
	time.AfterFunc(backoff(it.attempt), func() { r.route(ctx, it, false) })
}

// finish delivers the final outcome of an update to its caller.
func (r *Router) finish(it item, o outcome) { it.sink.done(it.idx, o) }

// evictElsewhere tells every matcher but owner to drop copies of driver id
// older than ts: the driver has crossed to a shard of owner. Best effort:
// a full queue drops the eviction and the stale copy expires by TTL.
func (r *Router) evictElsewhere(owner, id string, ts int64) {
	for _, p := range r.otherPeers(owner) {
		select {
		case p.evictions <- &matcherv1.Eviction{DriverId: id, OlderThanMs: ts}:
		default:
			n := r.evictionsDropped.Add(1)
			// A queue that overflows does so by the thousand.
			r.dropWarning.Do(func() {
				p.log.Warn("eviction queue full, dropping evictions", "driver", id, "dropped_total", n)
			})
		}
	}
}

func toInternal(u *geomatchv1.LocationUpdate) *matcherv1.Update {
	return &matcherv1.Update{
		DriverId:     u.GetDriverId(),
		Lat:          u.GetPosition().GetLat(),
		Lng:          u.GetPosition().GetLng(),
		TimestampMs:  u.GetTimestampMs(),
		Status:       u.GetStatus(),
		VehicleClass: u.GetVehicleClass(),
	}
}

// rejection turns a final outcome into the public rejection record.
func rejection(idx int32, u *geomatchv1.LocationUpdate, o outcome) *geomatchv1.Rejection {
	rj := &geomatchv1.Rejection{Index: idx, DriverId: u.GetDriverId(), TimestampMs: u.GetTimestampMs(), Message: o.msg}
	switch {
	case o.unavailable:
		rj.Reason = geomatchv1.RejectReason_REJECT_REASON_UNAVAILABLE
	case o.code == matcherv1.Outcome_OUTCOME_STALE:
		rj.Reason = geomatchv1.RejectReason_REJECT_REASON_STALE
		rj.Message = "older than the last update applied for this driver"
	case o.code == matcherv1.Outcome_OUTCOME_FULL:
		rj.Reason = geomatchv1.RejectReason_REJECT_REASON_RESOURCE_EXHAUSTED
		if rj.Message == "" {
			rj.Message = "the matcher holds as many drivers as it may"
		}
	case o.code == matcherv1.Outcome_OUTCOME_NOT_OWNER:
		rj.Reason = geomatchv1.RejectReason_REJECT_REASON_NOT_OWNER
	default:
		rj.Reason = geomatchv1.RejectReason_REJECT_REASON_INVALID_ARGUMENT
		if rj.Message == "" {
			rj.Message = "refused by the matcher as invalid"
		}
	}
	return rj
}

// batchCall collects the outcomes of one UpdateLocations call.
type batchCall struct {
	updates   []*geomatchv1.LocationUpdate
	remaining atomic.Int32
	accepted  atomic.Int32
	allDone   chan struct{}

	mu       sync.Mutex
	rejected []*geomatchv1.Rejection
}

func (c *batchCall) done(idx int32, o outcome) {
	if o.accepted() {
		c.accepted.Add(1)
	} else {
		rj := rejection(idx, c.updates[idx], o)
		c.mu.Lock()
		c.rejected = append(c.rejected, rj)
		c.mu.Unlock()
	}
	if c.remaining.Add(-1) == 0 {
		close(c.allDone)
	}
}

// UpdateLocations implements DriverServiceServer.
func (s *driverService) UpdateLocations(ctx context.Context, req *geomatchv1.UpdateLocationsRequest) (*geomatchv1.UpdateLocationsResponse, error) {
	if err := ValidateUpdateLocations(req); err != nil {
		return nil, status.Error(codes.InvalidArgument, err.Error())
	}
	ups := req.GetUpdates()
	if len(ups) == 0 {
		return &geomatchv1.UpdateLocationsResponse{}, nil
	}
	ctx, cancel := context.WithTimeout(ctx, s.r.cfg.UpdateTimeout)
	defer cancel()
	deadline, _ := ctx.Deadline()
	call := &batchCall{updates: ups, allDone: make(chan struct{})}
	call.remaining.Store(int32(len(ups)))
	now := time.Now()
	for i, u := range ups {
		if err := ValidateLocationUpdate(u, now); err != nil {
			call.done(int32(i), outcome{code: matcherv1.Outcome_OUTCOME_INVALID, msg: err.Error()})
			continue
		}
		s.r.route(ctx, item{u: toInternal(u), sink: call, idx: int32(i), deadline: deadline}, true)
	}
	select {
	case <-call.allDone:
	case <-ctx.Done():
		return nil, status.Errorf(codes.DeadlineExceeded, "update locations: %d of %d updates unanswered: %v", call.remaining.Load(), len(ups), ctx.Err())
	}
	call.mu.Lock()
	defer call.mu.Unlock()
	return &geomatchv1.UpdateLocationsResponse{Accepted: call.accepted.Load(), Rejected: call.rejected}, nil
}

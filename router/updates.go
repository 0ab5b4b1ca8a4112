package router

import (
	"context"
	"sync"
	"sync/atomic"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/geomatch/geomatch/driver"
	"github.com/geomatch/geomatch/fleet"
	"github.com/geomatch/geomatch/internal/geo"
	geomatchv1 "github.com/geomatch/geomatch/proto/geomatch/v1"
)

// driverService implements geomatchv1.DriverServiceServer.
type driverService struct {
	geomatchv1.UnimplementedDriverServiceServer
	r *Router
}

// toFleet is a validated public update as the fleet client takes it.
func toFleet(u *geomatchv1.LocationUpdate) fleet.Update {
	return fleet.Update{
		DriverID:     u.GetDriverId(),
		Pos:          geo.LatLng{Lat: u.GetPosition().GetLat(), Lng: u.GetPosition().GetLng()},
		TimestampMs:  u.GetTimestampMs(),
		Status:       driver.Status(u.GetStatus()),
		VehicleClass: u.GetVehicleClass(),
	}
}

// rejection turns the final result of an update that was not accepted into
// the public rejection record: the one place where the outcome vocabulary
// (package driver) meets the client's.
func rejection(idx int32, u *geomatchv1.LocationUpdate, res fleet.Result) *geomatchv1.Rejection {
	rj := &geomatchv1.Rejection{Index: idx, DriverId: u.GetDriverId(), TimestampMs: u.GetTimestampMs(), Message: res.Msg}
	switch res.Outcome {
	case driver.Unavailable:
		rj.Reason = geomatchv1.RejectReason_REJECT_REASON_UNAVAILABLE
	case driver.Stale:
		rj.Reason = geomatchv1.RejectReason_REJECT_REASON_STALE
		rj.Message = "older than the last update applied for this driver"
	case driver.Full:
		rj.Reason = geomatchv1.RejectReason_REJECT_REASON_RESOURCE_EXHAUSTED
		if rj.Message == "" {
			rj.Message = "the matcher holds as many drivers as it may"
		}
	case driver.NotOwner:
		rj.Reason = geomatchv1.RejectReason_REJECT_REASON_NOT_OWNER
	default:
		rj.Reason = geomatchv1.RejectReason_REJECT_REASON_INVALID_ARGUMENT
		if rj.Message == "" {
			rj.Message = "refused by the matcher as invalid"
		}
	}
	return rj
}

// batchCall collects the results of one UpdateLocations call.
type batchCall struct {
	updates   []*geomatchv1.LocationUpdate
	remaining atomic.Int32
	accepted  atomic.Int32
	allDone   chan struct{}

	mu       sync.Mutex
	rejected []*geomatchv1.Rejection
}

// Done implements fleet.Sink.
func (c *batchCall) Done(idx int32, res fleet.Result) {
	if res.Outcome.Accepted() {
		c.accepted.Add(1)
	} else {
		rj := rejection(idx, c.updates[idx], res)
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
	// Updates that wait for an unreachable owner give up a little before
	// the call does, so that the answer says which ones were refused and
	// why instead of the call failing as a whole.
	callDeadline, _ := ctx.Deadline()
	deadline := callDeadline.Add(-answerReserve(time.Until(callDeadline)))
	call := &batchCall{updates: ups, allDone: make(chan struct{})}
	call.remaining.Store(int32(len(ups)))
	now := time.Now()
	streaming := s.r.streaming(ups)
	for i, u := range ups {
		if err := ValidateLocationUpdate(u, now); err != nil {
			call.Done(int32(i), fleet.Result{Outcome: driver.Invalid, Msg: err.Error()})
			continue
		}
		fu := toFleet(u)
		fu.OnStream = streaming != nil && streaming[i]
		s.r.fleet.Send(ctx, fu, call, int32(i), deadline)
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

// answerReserve is the part of a call's time kept for answering after
// its updates' own deadline: a tenth, at least 250 ms (the fleet client
// looks at waiting updates every 100 ms) but never more than a quarter of
// a short call's time, at most a second.
func answerReserve(budget time.Duration) time.Duration {
	return min(max(budget/10, min(250*time.Millisecond, budget/4)), time.Second)
}

// streaming reports, for each update of a batch, whether its driver holds
// a Connect stream on this router (so it can see ride offers, though it
// reports positions through UpdateLocations); nil when no driver does.
// One lock for the whole batch.
func (r *Router) streaming(ups []*geomatchv1.LocationUpdate) []bool {
	r.sessMu.Lock()
	defer r.sessMu.Unlock()
	if len(r.sessions) == 0 {
		return nil
	}
	out := make([]bool, len(ups))
	for i, u := range ups {
		_, out[i] = r.sessions[u.GetDriverId()]
	}
	return out
}

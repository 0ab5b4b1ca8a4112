package router

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync"
	"sync/atomic"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/geomatch/geomatch/internal/geo"
	"github.com/geomatch/geomatch/internal/validate"
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
			p.log.Warn("eviction queue full, dropping eviction", "driver", id)
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
		rj.Message = "the matcher holds as many drivers as it may"
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

// streamSink reports the updates of one Connect stream that were not
// applied back to the driver app. Accepted updates are not acknowledged.
type streamSink struct {
	ctx     context.Context
	events  chan *geomatchv1.DriverEvent
	mu      sync.Mutex
	pending map[int32]*geomatchv1.LocationUpdate // by sequence number; bounded by MaxStreamInflight
	dropped atomic.Int64                         // rejection reports lost to a full event queue
	drained chan struct{}                        // signalled when pending becomes empty
}

// waitDrained waits, at most d, until every update of the stream has its
// outcome (pending is empty), so the app hears about rejections before its
// stream ends.
func (s *streamSink) waitDrained(d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	for {
		s.mu.Lock()
		n := len(s.pending)
		s.mu.Unlock()
		if n == 0 {
			return
		}
		select {
		case <-s.drained:
		case <-t.C:
			return
		}
	}
}

// MaxStreamInflight bounds the updates of one Connect stream that may be on
// their way to matchers at once; the stream stops reading beyond it.
const MaxStreamInflight = 1024

func (s *streamSink) done(idx int32, o outcome) {
	s.mu.Lock()
	u := s.pending[idx]
	delete(s.pending, idx)
	empty := len(s.pending) == 0
	s.mu.Unlock()
	if empty {
		select {
		case s.drained <- struct{}{}:
		default:
		}
	}
	if o.accepted() || u == nil {
		return
	}
	rj := rejection(0, u, o)
	// Never block: this runs on a matcher stream's receive path, which one
	// slow driver app must not stall. A full event queue drops the report.
	select {
	case s.events <- &geomatchv1.DriverEvent{Event: &geomatchv1.DriverEvent_Rejected{Rejected: rj}}:
	default:
		s.dropped.Add(1)
	}
}

// Connect implements DriverServiceServer: one stream per driver app.
func (s *driverService) Connect(stream geomatchv1.DriverService_ConnectServer) error {
	ctx := stream.Context()
	first, err := stream.Recv()
	if err != nil {
		return err
	}
	hello := first.GetHello()
	if hello == nil {
		return status.Error(codes.InvalidArgument, "hello: the first message on a Connect stream must be a hello")
	}
	if err := validate.ID("hello.driver_id", hello.GetDriverId()); err != nil {
		return status.Error(codes.InvalidArgument, err.Error())
	}
	if err := validate.VehicleClass("hello.vehicle_class", hello.GetVehicleClass()); err != nil {
		return status.Error(codes.InvalidArgument, err.Error())
	}
	driverID := hello.GetDriverId()
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	sk := &streamSink{ctx: ctx, events: make(chan *geomatchv1.DriverEvent, 64), pending: make(map[int32]*geomatchv1.LocationUpdate), drained: make(chan struct{}, 1)}
	sendErr := make(chan error, 1)
	sent := make(chan struct{})
	go func() {
		defer close(sent)
		ack := &geomatchv1.DriverEvent{Event: &geomatchv1.DriverEvent_Connected{Connected: &geomatchv1.ConnectAck{DriverId: driverID, ServerTimeMs: time.Now().UnixMilli()}}}
		if err := stream.Send(ack); err != nil {
			sendErr <- err
			cancel()
			return
		}
		for {
			select {
			case ev := <-sk.events:
				if err := stream.Send(ev); err != nil {
					sendErr <- err
					cancel()
					return
				}
			case <-ctx.Done():
				return
			}
		}
	}()
	defer func() {
		cancel()
		<-sent
		if n := sk.dropped.Load(); n > 0 {
			s.r.log.Warn("driver stream was too slow for its rejection reports", "driver", driverID, "dropped", n)
		}
	}()
	sess := &driverSession{events: sk.events}
	if err := s.r.register(driverID, sess); err != nil {
		return err
	}
	defer s.r.unregister(driverID, sess)
	s.r.onConnect(ctx, driverID, sess)
	slots := make(chan struct{}, MaxStreamInflight)
	var seq int32
	for {
		msg, err := stream.Recv()
		if errors.Is(err, io.EOF) {
			sk.waitDrained(s.r.cfg.UpdateTimeout)
			return nil
		}
		if err != nil {
			select {
			case err := <-sendErr:
				return err
			default:
			}
			return err
		}
		switch m := msg.GetMsg().(type) {
		case *geomatchv1.DriverMessage_Location:
			u := m.Location
			if u.GetDriverId() == "" {
				u.DriverId = driverID
			}
			seq++
			idx := seq
			sk.mu.Lock()
			sk.pending[idx] = u
			sk.mu.Unlock()
			if u.GetDriverId() != driverID {
				sk.done(idx, outcome{code: matcherv1.Outcome_OUTCOME_INVALID, msg: fmt.Sprintf("driver_id: %q does not match the stream's driver %q", u.GetDriverId(), driverID)})
				continue
			}
			if u.GetVehicleClass() == "" {
				u.VehicleClass = hello.GetVehicleClass()
			}
			if err := ValidateLocationUpdate(u, time.Now()); err != nil {
				sk.done(idx, outcome{code: matcherv1.Outcome_OUTCOME_INVALID, msg: err.Error()})
				continue
			}
			select {
			case slots <- struct{}{}:
			case <-ctx.Done():
				return ctx.Err()
			}
			s.r.route(ctx, item{u: toInternal(u), sink: releasing{sk, slots}, idx: idx, deadline: time.Now().Add(s.r.cfg.UpdateTimeout)}, true)
		case *geomatchv1.DriverMessage_Hello:
			return status.Error(codes.InvalidArgument, "hello: sent twice on one stream")
		default:
			if err := s.r.onDriverMessage(ctx, driverID, sess, msg); err != nil {
				return err
			}
		}
	}
}

// releasing frees one in-flight slot of a stream when an update completes.
type releasing struct {
	*streamSink
	slots chan struct{}
}

func (r releasing) done(idx int32, o outcome) {
	<-r.slots
	r.streamSink.done(idx, o)
}

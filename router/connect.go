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

	"github.com/geomatch/geomatch/driver"
	"github.com/geomatch/geomatch/fleet"
	"github.com/geomatch/geomatch/internal/metrics"
	"github.com/geomatch/geomatch/internal/validate"
	geomatchv1 "github.com/geomatch/geomatch/proto/geomatch/v1"
)

// Driver streams. Each driver app holds one Connect stream: positions and
// offer answers go up, offers, trip updates and reports of refused updates
// come down; a hello with want_acks also gets coalesced UpdatesAck events
// (streamSink). A stream has three goroutines: the handler, which waits for
// the stream's end; a reader, which receives the app's messages; a writer,
// which sends the queued events. The queue is bounded: an app that leaves
// its events unread is dropped with RESOURCE_EXHAUSTED (driverSession.push)
// instead of making the router buffer without bound. Reader and writer end
// with the stream: once the handler returns, gRPC ends the stream, which
// ends their Recv and Send.

// MaxStreamInflight bounds the updates of one Connect stream that may be on
// their way to matchers at once; the stream stops reading beyond it.
const MaxStreamInflight = 1024

const (
	// eventQueueLen bounds the events waiting to be sent on one stream.
	eventQueueLen = 64
	// criticalReserve is the part of the queue that reports of refused
	// updates may not take: offers and trip updates always find room in a
	// stream whose app keeps reading.
	criticalReserve = 16
	// streamFlushTimeout bounds the sending of the last queued events after
	// the app closed its side.
	streamFlushTimeout = 2 * time.Second
)

// errSlowStream ends the stream of an app that leaves its events unread.
var errSlowStream = status.Errorf(codes.ResourceExhausted,
	"driver stream ended: the app left %d events unread; reconnect (a pending offer is sent again)", eventQueueLen)

// driverSession is one driver's Connect stream on this router: the bounded
// queue of events to send it.
type driverSession struct {
	events chan *geomatchv1.DriverEvent
	// end ends the stream with a cause.
	end context.CancelCauseFunc
	// slowAfter is how long a send may stay blocked before a full queue
	// ends the stream even for a report.
	slowAfter time.Duration
	// sendingSince is when the send in progress began (Unix ns), 0 when
	// the writer is idle.
	sendingSince atomic.Int64
	// dropped counts reports of refused updates lost to a full queue.
	dropped atomic.Int64
	// lastOffer is the trace of the last offer delivered, nil untraced
	// (ridetrace.go).
	lastOffer atomic.Pointer[offerSpan]
}

func newDriverSession(end context.CancelCauseFunc, slowAfter time.Duration) *driverSession {
	return &driverSession{events: make(chan *geomatchv1.DriverEvent, eventQueueLen), end: end, slowAfter: slowAfter}
}

// push queues ev without ever blocking. A critical event (an offer, a trip
// update, the answer to the app's own message) that finds the queue full
// ends the stream: the app is not reading, and on reconnect it gets its
// pending offer again. A report of a refused update is dropped (and
// counted) instead, unless the app has not taken a single event for
// slowAfter, which ends the stream as well.
func (s *driverSession) push(ev *geomatchv1.DriverEvent, critical bool) bool {
	if critical || len(s.events) < eventQueueLen-criticalReserve {
		select {
		case s.events <- ev:
			return true
		default:
		}
	}
	if critical || s.stuck(time.Now()) {
		s.end(errSlowStream)
	} else {
		s.dropped.Add(1)
	}
	return false
}

// offer queues ev if the queue has room beyond the critical reserve,
// without ever blocking or ending the stream; it reports whether ev was
// queued.
func (s *driverSession) offer(ev *geomatchv1.DriverEvent) bool {
	if len(s.events) >= eventQueueLen-criticalReserve {
		return false
	}
	select {
	case s.events <- ev:
		return true
	default:
		return false
	}
}

// stuck reports whether a send has been blocked (on the app's flow
// control) for longer than slowAfter.
func (s *driverSession) stuck(now time.Time) bool {
	since := s.sendingSince.Load()
	return since != 0 && now.Sub(time.Unix(0, since)) > s.slowAfter
}

// write sends the connect ack, then the queued events until the stream's
// context ends or, once flush is closed, until the queue is empty. A
// failed send ends the stream.
func (s *driverSession) write(ctx context.Context, stream geomatchv1.DriverService_ConnectServer, ack *geomatchv1.DriverEvent, flush <-chan struct{}) {
	send := func(ev *geomatchv1.DriverEvent) bool {
		s.sendingSince.Store(time.Now().UnixNano())
		err := stream.Send(ev)
		s.sendingSince.Store(0)
		if err != nil {
			s.end(err)
			return false
		}
		return true
	}
	if !send(ack) {
		return
	}
	for {
		select {
		case ev := <-s.events:
			if !send(ev) {
				return
			}
		case <-flush:
			for {
				select {
				case ev := <-s.events:
					if !send(ev) {
						return
					}
				default:
					return
				}
			}
		case <-ctx.Done():
			return
		}
	}
}

// register makes s the session of driverID (a newer stream replaces an
// older one).
func (r *Router) register(driverID string, s *driverSession) error {
	r.sessMu.Lock()
	defer r.sessMu.Unlock()
	if _, ok := r.sessions[driverID]; !ok && len(r.sessions) >= r.cfg.MaxDriverStreams {
		metrics.CountRefused(metrics.RefusedDriverSessions)
		return status.Errorf(codes.ResourceExhausted, "this router holds %d driver streams, its limit", len(r.sessions))
	}
	r.sessions[driverID] = s
	return nil
}

func (r *Router) unregister(driverID string, s *driverSession) {
	r.sessMu.Lock()
	defer r.sessMu.Unlock()
	if r.sessions[driverID] == s {
		delete(r.sessions, driverID)
	}
}

func (r *Router) session(driverID string) *driverSession {
	r.sessMu.Lock()
	defer r.sessMu.Unlock()
	return r.sessions[driverID]
}

// streamSink reports the outcome of a Connect stream's updates back to the
// driver app: a Rejection for each update not applied and, when the hello
// asked for them (want_acks), coalesced UpdatesAck events.
type streamSink struct {
	sess    *driverSession
	mu      sync.Mutex
	pending map[int32]pendingUpdate // by sequence number; bounded by MaxStreamInflight
	drained chan struct{}           // signalled when pending becomes empty
	// acks is nil unless the hello asked for acknowledgements.
	acks *acker
	// newestSent is the latest timestamp of the updates handed to the
	// fleet on this stream so far.
	newestSent int64
}

// pendingUpdate is an update of a stream waiting for its outcome. inOrder
// says it was newer than every update the stream had sent before it: a
// STALE outcome then means a later update of this very stream overtook it
// on the way (applied first, on another node after a border crossing, say),
// so it is superseded, not refused. An update the app itself sent older
// than one before it is STALE, as the API says.
type pendingUpdate struct {
	u       *geomatchv1.LocationUpdate
	inOrder bool
}

// Acknowledgements of applied updates (DriverHello.want_acks) are
// coalesced: an UpdatesAck goes out once ackEvery updates completed since
// the last one, or ackDelay after the first update that no ack covers yet,
// whichever comes first; the delay also yields the last ack of a stream
// that falls quiet. Nothing is allocated per update: one timer per stream,
// one event per ack.
const (
	// ackEvery bounds the updates one ack waits for.
	ackEvery = 256
	// ackDelay bounds how long a completed update waits for its ack.
	ackDelay = 50 * time.Millisecond
)

// acker is the acknowledgement state of one stream; its fields are guarded
// by the streamSink's mutex.
type acker struct {
	timer   *time.Timer // fires delay after armed is set
	delay   time.Duration
	armed   bool  // the timer is running
	stopped bool  // the stream is over: the timer stays off
	since   int   // updates completed since the last ack
	applied int64 // updates applied on the stream so far
	maxDone int64 // newest timestamp of a completed update
	through int64 // through_timestamp_ms of the last ack sent
	sent    int64 // applied of the last ack sent
}

// newStreamSink returns the sink of one stream; with wantAcks it sends
// UpdatesAck events too.
func newStreamSink(sess *driverSession, wantAcks bool) *streamSink {
	sk := &streamSink{sess: sess, pending: make(map[int32]pendingUpdate), drained: make(chan struct{}, 1)}
	if wantAcks {
		sk.acks = &acker{delay: ackDelay}
		sk.acks.timer = time.AfterFunc(time.Hour, sk.ackDue)
		sk.acks.timer.Stop()
	}
	return sk
}

// stop stops the ack timer for good once the stream is over.
func (s *streamSink) stop() {
	if s.acks == nil {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.acks.stopped = true
	s.acks.timer.Stop()
}

// ackDue runs on the ack timer: send the ack the completed updates wait for.
func (s *streamSink) ackDue() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.acks.armed = false
	if !s.acks.stopped {
		s.sendAck()
	}
}

// flushAck sends the ack of the last completed updates at once (the app
// closed its side and every update has its outcome).
func (s *streamSink) flushAck() {
	if s.acks == nil {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.acks.timer.Stop()
	s.acks.armed = false
	s.sendAck()
}

// sendAck queues an UpdatesAck covering every update whose outcome is
// known, if it says anything new. s.mu is held. A full queue keeps the
// ack for later (the timer is armed again) rather than ending the stream:
// the next ack covers what this one would have.
func (s *streamSink) sendAck() {
	a := s.acks
	through := a.maxDone
	for _, p := range s.pending { // at most MaxStreamInflight, once per ack
		if ts := p.u.GetTimestampMs(); ts <= through {
			through = ts - 1
		}
	}
	through = max(through, a.through)
	if through == a.through && a.applied == a.sent {
		a.since = 0
		return
	}
	ev := &geomatchv1.DriverEvent{Event: &geomatchv1.DriverEvent_UpdatesAck{UpdatesAck: &geomatchv1.UpdatesAck{ThroughTimestampMs: through, Applied: a.applied}}}
	if !s.sess.offer(ev) {
		if !a.armed && !a.stopped {
			a.armed = true
			a.timer.Reset(a.delay)
		}
		return
	}
	a.through, a.sent, a.since = through, a.applied, 0
}

// completed records the outcome of an update with timestamp ts for the
// acks. s.mu is held.
func (s *streamSink) completed(ts int64, applied bool) {
	a := s.acks
	if applied {
		a.applied++
	}
	a.maxDone = max(a.maxDone, ts)
	a.since++
	if a.since >= ackEvery {
		s.sendAck()
		return
	}
	if !a.armed && !a.stopped {
		a.armed = true
		a.timer.Reset(a.delay)
	}
}

// waitDrained waits, at most d, until every update of the stream has its
// outcome (pending is empty), so the app hears about rejections before its
// stream ends.
func (s *streamSink) waitDrained(ctx context.Context, d time.Duration) {
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
		case <-ctx.Done():
			return
		}
	}
}

// Done implements fleet.Sink. It never blocks: it runs on a matcher
// stream's receive path, which one slow driver app must not stall. The
// rejection of an update is queued before any ack that covers it.
func (s *streamSink) Done(idx int32, res fleet.Result) {
	s.mu.Lock()
	p := s.pending[idx]
	u := p.u
	delete(s.pending, idx)
	empty := len(s.pending) == 0
	if u != nil {
		if res.Outcome == driver.Stale && p.inOrder {
			res = fleet.Result{Outcome: driver.Duplicate, Msg: "superseded by a newer update of the driver"}
		}
		if !res.Outcome.Accepted() {
			s.sess.push(&geomatchv1.DriverEvent{Event: &geomatchv1.DriverEvent_Rejected{Rejected: rejection(0, u, res)}}, false)
		}
		if s.acks != nil {
			s.completed(u.GetTimestampMs(), res.Outcome.Accepted())
		}
	}
	s.mu.Unlock()
	if empty {
		select {
		case s.drained <- struct{}{}:
		default:
		}
	}
}

// releasing frees one in-flight slot of a stream when an update completes.
type releasing struct {
	*streamSink
	slots chan struct{}
}

// Done implements fleet.Sink.
func (r releasing) Done(idx int32, res fleet.Result) {
	<-r.slots
	r.streamSink.Done(idx, res)
}

// Connect implements DriverServiceServer: one stream per driver app.
//
// The router-wide bound on streams (Limits.MaxStreams) is checked first,
// before anything is read and before the stream's reader and writer
// goroutines exist; per-client bounds were checked by the interceptors.
func (s *driverService) Connect(stream geomatchv1.DriverService_ConnectServer) error {
	ctx := stream.Context()
	release, err := s.r.limits.openServerStream()
	if err != nil {
		return err
	}
	defer release()
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
	c := callerFrom(ctx)
	if !c.actsFor(driverID) {
		return c.notSubject("hello.driver_id", driverID)
	}
	ctx, end := context.WithCancelCause(ctx)
	defer end(nil)
	sess := newDriverSession(end, s.r.cfg.SlowStreamAfter)
	if err := s.r.register(driverID, sess); err != nil {
		return err
	}
	defer s.r.unregister(driverID, sess)
	defer func() {
		if n := sess.dropped.Load(); n > 0 {
			s.r.log.Warn("driver stream was too slow for its rejection reports", "driver", driverID, "dropped", n)
		}
	}()

	flush, written := make(chan struct{}), make(chan struct{})
	ack := &geomatchv1.DriverEvent{Event: &geomatchv1.DriverEvent_Connected{Connected: &geomatchv1.ConnectAck{DriverId: driverID, ServerTimeMs: time.Now().UnixMilli()}}}
	go func() {
		defer close(written)
		sess.write(ctx, stream, ack, flush)
	}()
	s.r.onConnect(ctx, driverID, sess)
	read := make(chan error, 1)
	go func() { read <- s.read(ctx, stream, c, hello, sess) }()
	select {
	case err := <-read:
		if err != nil {
			return err
		}
		// The app closed its side: send what is queued (reports of its last
		// updates) before the stream ends.
		close(flush)
		t := time.NewTimer(streamFlushTimeout)
		defer t.Stop()
		select {
		case <-written:
		case <-t.C:
		case <-ctx.Done():
		}
		return nil
	case <-ctx.Done():
		return streamEnd(ctx)
	}
}

// streamEnd is the status a stream ends with once its context is done: the
// cause it was ended with, or what ended the call.
func streamEnd(ctx context.Context) error {
	cause := context.Cause(ctx)
	if _, ok := status.FromError(cause); ok && cause != nil {
		return cause
	}
	return status.FromContextError(ctx.Err()).Err()
}

// read receives the app's messages until the app closes its side (nil, once
// every update has its outcome) or the stream fails.
func (s *driverService) read(ctx context.Context, stream geomatchv1.DriverService_ConnectServer, c caller, hello *geomatchv1.DriverHello, sess *driverSession) error {
	driverID := hello.GetDriverId()
	sk := newStreamSink(sess, hello.GetWantAcks())
	defer sk.stop()
	slots := make(chan struct{}, MaxStreamInflight)
	var seq int32
	for {
		msg, err := stream.Recv()
		if errors.Is(err, io.EOF) {
			sk.waitDrained(ctx, s.r.cfg.UpdateTimeout)
			sk.flushAck()
			return nil
		}
		if err != nil {
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
			sk.pending[idx] = pendingUpdate{u: u, inOrder: u.GetTimestampMs() > sk.newestSent}
			sk.mu.Unlock()
			if u.GetDriverId() != driverID {
				sk.Done(idx, fleet.Result{Outcome: driver.Invalid, Msg: fmt.Sprintf("driver_id: %q does not match the stream's driver %q", u.GetDriverId(), driverID)})
				continue
			}
			if err := s.r.limits.admit(c, bucketUpdates, 1); err != nil {
				sk.Done(idx, fleet.Result{Outcome: driver.Full, Msg: status.Convert(err).Message()})
				continue
			}
			if u.GetVehicleClass() == "" {
				u.VehicleClass = hello.GetVehicleClass()
			}
			if err := ValidateLocationUpdate(u, time.Now()); err != nil {
				sk.Done(idx, fleet.Result{Outcome: driver.Invalid, Msg: err.Error()})
				continue
			}
			select {
			case slots <- struct{}{}:
			case <-ctx.Done():
				return ctx.Err()
			}
			fu := toFleet(u)
			fu.OnStream = true // this driver sees offers
			sk.mu.Lock()
			sk.newestSent = max(sk.newestSent, u.GetTimestampMs())
			sk.mu.Unlock()
			s.r.fleet.Send(ctx, fu, releasing{sk, slots}, idx, time.Now().Add(s.r.cfg.UpdateTimeout))
		case *geomatchv1.DriverMessage_Hello:
			return status.Error(codes.InvalidArgument, "hello: sent twice on one stream")
		default:
			// Offer answers and trip progress cost a store round trip each:
			// they are charged like calls.
			if err := s.r.limits.admit(c, bucketRequests, 1); err != nil {
				return err
			}
			if err := s.r.onDriverMessage(ctx, driverID, sess, msg); err != nil {
				return err
			}
		}
	}
}

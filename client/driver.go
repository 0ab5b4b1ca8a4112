package client

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	geomatchv1 "github.com/geomatch/geomatch/proto/geomatch/v1"
)

// ErrClosed is returned by the sends of a driver session that was closed
// or ended.
var ErrClosed = errors.New("client: driver session closed")

// ErrDisconnected is returned by Answer and Progress while a driver
// session is between streams (reconnecting): only location updates are
// kept for replay.
var ErrDisconnected = errors.New("client: driver session reconnecting")

// DriverConfig configures a driver session. DriverID is required; every
// other field has a working default. The callbacks run on the session's
// receive goroutine, one at a time, in the order the events came: a
// callback that blocks holds up the events after it (and the router ends a
// stream whose app leaves 64 events unread), so hand slow work to a
// goroutine of your own. A callback may send (SendLocation, Answer,
// Progress, CloseSend) but must not call Close, which waits for the
// goroutine the callback runs on.
type DriverConfig struct {
	// DriverID is the driver the session speaks for (a driver token must
	// name it), 1..128 bytes.
	DriverID string
	// VehicleClass is the driver's class, used for updates that leave it
	// empty.
	VehicleClass string

	// OnEvent, if set, sees every event first, as it came (the typed
	// callbacks below run after it).
	OnEvent func(*geomatchv1.DriverEvent)
	// OnOffer decides a ride offer: true accepts, false declines, and the
	// session sends the answer. Nil: offers are left to OnEvent, which
	// answers with Answer (or lets the offer expire).
	OnOffer func(*geomatchv1.RideOffer) bool
	// OnTrip hears of the driver's trips: assigned, cancelled, and the
	// router's confirmations of pickup and completion.
	OnTrip func(*geomatchv1.Trip)
	// OnRejected hears of location updates the router did not apply.
	OnRejected func(*geomatchv1.Rejection)
	// OnOfferClosed hears of answers and progress reports the router
	// refused (the offer expired, the trip was cancelled).
	OnOfferClosed func(*geomatchv1.OfferClosed)
	// OnConnected runs after each stream is open (hello acknowledged and
	// un-acknowledged updates replayed), the first one included.
	OnConnected func(*geomatchv1.ConnectAck)
	// OnDisconnected runs when a stream broke and the session will try
	// again after retryIn.
	OnDisconnected func(err error, retryIn time.Duration)
	// OnClose runs once when the session is over, with nil after a clean
	// Close and the reason otherwise. It runs only for a session that
	// ConnectDriver returned.
	OnClose func(err error)

	// NoReconnect ends the session when its stream breaks, instead of
	// opening another.
	NoReconnect bool
	// MaxReconnects bounds the attempts in a row to open a stream, and the
	// streams in a row that broke within a minute of opening; then the
	// session ends with the last error. Default 10.
	MaxReconnects int
	// MinBackoff and MaxBackoff bound the wait before a reconnect: it
	// starts at MinBackoff, doubles with each failure in a row up to
	// MaxBackoff, and is drawn from the upper half of that (jitter), so a
	// fleet of apps cut off together does not come back together.
	// Defaults 100 ms and 5 s.
	MinBackoff, MaxBackoff time.Duration
	// ConnectTimeout bounds each stream's opening (hello to its ack).
	// Default 20 s.
	ConnectTimeout time.Duration
	// DrainTimeout bounds Close's wait for the router to answer the last
	// updates and end the stream. Default 5 s.
	DrainTimeout time.Duration

	// NoAcks opens streams without want_acks: no UpdatesAck events, and
	// so nothing to replay after a reconnect.
	NoAcks bool
	// ReplayLimit bounds the un-acknowledged updates kept for replay;
	// beyond it the oldest is dropped (a newer position supersedes it).
	// Default 256.
	ReplayLimit int
	// ReplayAll sends every kept update again after a reconnect, oldest
	// first. Default: only the newest, which carries the driver's current
	// position and status; the older ones are superseded by it (the router
	// would apply them and then the newest, to the same end, or refuse
	// them as stale).
	ReplayAll bool
}

func (cfg *DriverConfig) defaults() error {
	if cfg.DriverID == "" || len(cfg.DriverID) > 128 {
		return fmt.Errorf("client: driver session: driver_id: %d bytes, want 1..128", len(cfg.DriverID))
	}
	if cfg.MaxReconnects <= 0 {
		cfg.MaxReconnects = 10
	}
	if cfg.MinBackoff <= 0 {
		cfg.MinBackoff = 100 * time.Millisecond
	}
	if cfg.MaxBackoff < cfg.MinBackoff {
		cfg.MaxBackoff = max(5*time.Second, cfg.MinBackoff)
	}
	if cfg.ConnectTimeout <= 0 {
		cfg.ConnectTimeout = 20 * time.Second
	}
	if cfg.DrainTimeout <= 0 {
		cfg.DrainTimeout = 5 * time.Second
	}
	if cfg.ReplayLimit <= 0 {
		cfg.ReplayLimit = 256
	}
	return nil
}

// stableAfter is how long a stream must have lived for its loss to count
// as a fresh start rather than one more failure in a row.
const stableAfter = time.Minute

// DriverSession is one driver app's session with the router: a Connect
// stream, opened again when it breaks, over which the app sends its
// positions, answers offers and reports trip progress, and hears of
// offers, trips and refused updates (through DriverConfig's callbacks).
//
// With acknowledgements (the default), the session keeps each location
// update until the router acknowledges it; after a reconnect it sends the
// newest un-acknowledged update again (DriverConfig.ReplayAll: all of
// them), so a position reported while the stream was down, or lost with
// it, still reaches the map.
//
// The session owns one goroutine, which receives events, runs the
// callbacks and reconnects; Close ends it and waits for it. Send methods
// are safe for concurrent use.
type DriverSession struct {
	c   *Conn
	cfg DriverConfig

	// base is the context of every stream; abort ends them all.
	base  context.Context
	abort context.CancelFunc

	// sendMu serializes sends (a gRPC stream takes one at a time) and
	// guards stream and halfClosed.
	sendMu     sync.Mutex
	stream     geomatchv1.DriverService_ConnectClient // nil between streams
	halfClosed bool
	closing    chan struct{} // closed by CloseSend

	// bufMu guards buf (nil without acks or reconnects).
	bufMu  sync.Mutex
	buf    *unacked
	ackSig chan struct{} // signalled after each ack

	done chan struct{}
	err  error // why the session ended; written before done closes

	sent, acked, rejected, replayed, reconnects atomic.Int64
	// ackedBefore is acked when the current stream opened.
	ackedBefore atomic.Int64
}

// DriverStats are a session's counters.
type DriverStats struct {
	// Sent counts location updates handed to a stream (replays included).
	Sent int64
	// Acked counts updates the router acknowledged as applied.
	Acked int64
	// Rejected counts updates the router refused.
	Rejected int64
	// Replayed counts updates sent again after a reconnect.
	Replayed int64
	// Dropped counts un-acknowledged updates pushed out of the replay
	// buffer by newer ones.
	Dropped int64
	// Pending is the un-acknowledged updates kept now.
	Pending int
	// Reconnects counts streams opened after the first.
	Reconnects int64
}

// ConnectDriver opens a driver session: it opens a Connect stream, says
// hello as cfg.DriverID and waits for the router's acknowledgement. ctx
// bounds this first opening only (unless cfg.NoReconnect, it tries again
// with backoff on UNAVAILABLE and the like, up to MaxReconnects times,
// until ctx ends); the session
// then lives until Close, Abort, or a failure it cannot recover from.
// INVALID_ARGUMENT, UNAUTHENTICATED and PERMISSION_DENIED are never
// retried.
func (c *Conn) ConnectDriver(ctx context.Context, cfg DriverConfig) (*DriverSession, error) {
	if err := cfg.defaults(); err != nil {
		return nil, err
	}
	base, abort := context.WithCancel(context.WithoutCancel(ctx))
	s := &DriverSession{c: c, cfg: cfg, base: base, abort: abort,
		closing: make(chan struct{}), ackSig: make(chan struct{}, 1), done: make(chan struct{})}
	if !cfg.NoAcks && !cfg.NoReconnect {
		s.buf = newUnacked(cfg.ReplayLimit)
	}
	var (
		st     geomatchv1.DriverService_ConnectClient
		ack    *geomatchv1.ConnectAck
		cancel context.CancelFunc
		err    error
	)
	for failures := 1; ; failures++ {
		st, ack, cancel, err = s.open(ctx)
		if err == nil {
			break
		}
		if cfg.NoReconnect || permanent(err) || ctx.Err() != nil || failures >= cfg.MaxReconnects {
			abort()
			return nil, err
		}
		if !s.sleep(ctx, s.backoff(failures)) {
			abort()
			return nil, err
		}
	}
	// The first stream is in place before ConnectDriver returns, so the
	// caller's first sends go out on it.
	s.sendMu.Lock()
	s.stream = st
	s.sendMu.Unlock()
	go s.run(st, ack, cancel)
	return s, nil
}

// open opens one stream: Connect, hello, and the router's ack, bounded by
// ConnectTimeout and by ctx. cancel ends the stream.
func (s *DriverSession) open(ctx context.Context) (geomatchv1.DriverService_ConnectClient, *geomatchv1.ConnectAck, context.CancelFunc, error) {
	sctx, cancel := context.WithCancel(s.base)
	stop := context.AfterFunc(ctx, cancel)
	defer stop()
	t := time.AfterFunc(s.cfg.ConnectTimeout, cancel)
	defer t.Stop()
	fail := func(err error) (geomatchv1.DriverService_ConnectClient, *geomatchv1.ConnectAck, context.CancelFunc, error) {
		cancel()
		return nil, nil, nil, fmt.Errorf("driver %s: connect: %w", s.cfg.DriverID, err)
	}
	st, err := s.c.drivers.Connect(sctx)
	if err != nil {
		return fail(err)
	}
	hello := &geomatchv1.DriverHello{DriverId: s.cfg.DriverID, VehicleClass: s.cfg.VehicleClass, WantAcks: !s.cfg.NoAcks}
	if err := st.Send(&geomatchv1.DriverMessage{Msg: &geomatchv1.DriverMessage_Hello{Hello: hello}}); err != nil {
		if _, rerr := st.Recv(); rerr != nil && !errors.Is(rerr, io.EOF) {
			err = rerr // the stream's status says more than Send's EOF
		}
		return fail(err)
	}
	ev, err := st.Recv()
	if err != nil {
		return fail(err)
	}
	ack := ev.GetConnected()
	if ack == nil {
		return fail(fmt.Errorf("first event is %T, not the connect ack", ev.GetEvent()))
	}
	return st, ack, cancel, nil
}

// permanent reports whether an error of opening a stream will not go away
// by trying again.
func permanent(err error) bool {
	switch status.Code(err) {
	case codes.InvalidArgument, codes.Unauthenticated, codes.PermissionDenied, codes.Unimplemented:
		return true
	}
	return false
}

// backoff is the wait before the reconnect after failures failures in a
// row.
func (s *DriverSession) backoff(failures int) time.Duration {
	p := RetryPolicy{MaxAttempts: 1, InitialBackoff: s.cfg.MinBackoff, MaxBackoff: s.cfg.MaxBackoff}
	return p.backoff(failures, rand.Float64())
}

// sleep waits d; false if ctx, Abort or CloseSend came first.
func (s *DriverSession) sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
	case <-s.base.Done():
	case <-s.closing:
	}
	return false
}

// run is the session's goroutine: it serves each stream until it breaks,
// then opens the next, until the session ends.
func (s *DriverSession) run(st geomatchv1.DriverService_ConnectClient, ack *geomatchv1.ConnectAck, cancel context.CancelFunc) {
	err := s.serve(st, ack, cancel)
	if s.cfg.OnClose != nil {
		s.cfg.OnClose(err)
	}
	s.err = err
	close(s.done)
	s.abort()
}

func (s *DriverSession) serve(st geomatchv1.DriverService_ConnectClient, ack *geomatchv1.ConnectAck, cancel context.CancelFunc) error {
	failures := 0
	for {
		opened := time.Now()
		err := s.stream1(st, ack, cancel)
		switch {
		case err == nil:
			return nil // closed cleanly
		case s.base.Err() != nil:
			return fmt.Errorf("driver %s: %w", s.cfg.DriverID, ErrClosed)
		case s.isHalfClosed():
			return nil // closed while the stream was failing: nothing to drain
		case s.cfg.NoReconnect || permanent(err):
			return err
		}
		if time.Since(opened) >= stableAfter {
			failures = 0
		}
		for {
			failures++
			if failures > s.cfg.MaxReconnects {
				return fmt.Errorf("driver %s: gave up after %d reconnects: %w", s.cfg.DriverID, s.cfg.MaxReconnects, err)
			}
			wait := s.backoff(failures)
			s.c.cfg.log.Info("driver stream lost; reconnecting", "driver", s.cfg.DriverID, "err", err, "in", wait)
			if s.cfg.OnDisconnected != nil {
				s.cfg.OnDisconnected(err, wait)
			}
			if !s.sleep(s.base, wait) {
				if s.isHalfClosed() {
					return nil
				}
				return fmt.Errorf("driver %s: %w", s.cfg.DriverID, ErrClosed)
			}
			st, ack, cancel, err = s.open(s.base)
			if err == nil {
				s.reconnects.Add(1)
				break
			}
			if permanent(err) {
				return err
			}
		}
	}
}

func (s *DriverSession) isHalfClosed() bool {
	s.sendMu.Lock()
	defer s.sendMu.Unlock()
	return s.halfClosed
}

// stream1 serves one open stream: replay, then events until it ends. It
// returns nil when the stream ended cleanly after CloseSend.
func (s *DriverSession) stream1(st geomatchv1.DriverService_ConnectClient, ack *geomatchv1.ConnectAck, cancel context.CancelFunc) error {
	defer cancel()
	s.ackedBefore.Store(s.acked.Load())
	s.sendMu.Lock()
	switch {
	case s.stream == st:
		// The first stream, put in place by ConnectDriver: nothing to
		// replay yet.
	case s.halfClosed:
		s.stream = st
		_ = st.CloseSend() // closed while connecting
	default:
		s.stream = st
		s.replay(st)
	}
	s.sendMu.Unlock()
	defer func() {
		s.sendMu.Lock()
		s.stream = nil
		s.sendMu.Unlock()
	}()
	if s.cfg.OnConnected != nil {
		s.cfg.OnConnected(ack)
	}
	for {
		ev, err := st.Recv()
		if err != nil {
			if errors.Is(err, io.EOF) {
				if s.isHalfClosed() {
					return nil
				}
				err = status.Error(codes.Unavailable, "the router ended the stream")
			}
			return fmt.Errorf("driver %s: stream: %w", s.cfg.DriverID, err)
		}
		s.dispatch(ev)
	}
}

// replay sends the kept updates on a new stream; sendMu is held. A failed
// send shows in the stream's Recv.
func (s *DriverSession) replay(st geomatchv1.DriverService_ConnectClient) {
	if s.buf == nil {
		return
	}
	s.bufMu.Lock()
	ups := s.buf.replay(!s.cfg.ReplayAll)
	s.bufMu.Unlock()
	for _, u := range ups {
		if err := st.Send(&geomatchv1.DriverMessage{Msg: &geomatchv1.DriverMessage_Location{Location: u}}); err != nil {
			return
		}
		s.replayed.Add(1)
		s.sent.Add(1)
	}
	if len(ups) > 0 {
		s.c.cfg.log.Debug("replayed un-acknowledged updates", "driver", s.cfg.DriverID, "updates", len(ups))
	}
}

// dispatch applies one event: acks and rejections to the replay buffer,
// then the callbacks.
func (s *DriverSession) dispatch(ev *geomatchv1.DriverEvent) {
	if s.cfg.OnEvent != nil {
		s.cfg.OnEvent(ev)
	}
	switch e := ev.GetEvent().(type) {
	case *geomatchv1.DriverEvent_UpdatesAck:
		s.ackThrough(e.UpdatesAck)
	case *geomatchv1.DriverEvent_Rejected:
		s.rejected.Add(1)
		if s.buf != nil {
			s.bufMu.Lock()
			s.buf.reject(e.Rejected.GetTimestampMs())
			s.bufMu.Unlock()
		}
		if s.cfg.OnRejected != nil {
			s.cfg.OnRejected(e.Rejected)
		}
	case *geomatchv1.DriverEvent_Offer:
		if s.cfg.OnOffer != nil {
			o := e.Offer
			accept := s.cfg.OnOffer(o)
			if err := s.Answer(o.GetOfferId(), o.GetTrip().GetTripId(), accept); err != nil {
				s.c.cfg.log.Warn("could not answer an offer", "driver", s.cfg.DriverID, "offer", o.GetOfferId(), "err", err)
			}
		}
	case *geomatchv1.DriverEvent_Trip:
		if s.cfg.OnTrip != nil {
			s.cfg.OnTrip(e.Trip)
		}
	case *geomatchv1.DriverEvent_OfferClosed:
		if s.cfg.OnOfferClosed != nil {
			s.cfg.OnOfferClosed(e.OfferClosed)
		}
	}
}

// ackThrough forgets the acknowledged updates. The stream's applied count
// starts at 0 on every stream; Acked adds up the streams.
func (s *DriverSession) ackThrough(a *geomatchv1.UpdatesAck) {
	s.bufMu.Lock()
	if s.buf != nil {
		s.buf.ack(a.GetThroughTimestampMs())
	}
	s.bufMu.Unlock()
	s.acked.Store(s.ackedBefore.Load() + a.GetApplied())
	select {
	case s.ackSig <- struct{}{}:
	default:
	}
}

// SendLocation sends one position report. DriverId may be left empty (the
// session's driver); TimestampMs must grow from one report to the next
// (the router ignores older ones). The session keeps u for replay until
// the router acknowledges it: do not change u after the call.
//
// It returns nil once u is on the stream, or kept for replay while the
// session reconnects; ErrClosed after Close or once the session ended;
// with NoReconnect, the error of a broken stream.
func (s *DriverSession) SendLocation(u *geomatchv1.LocationUpdate) error {
	return s.sendLocation(u, &geomatchv1.DriverMessage{Msg: &geomatchv1.DriverMessage_Location{Location: u}})
}

func (s *DriverSession) sendLocation(u *geomatchv1.LocationUpdate, msg *geomatchv1.DriverMessage) error {
	s.sendMu.Lock()
	defer s.sendMu.Unlock()
	if s.halfClosed || s.ended() {
		return fmt.Errorf("driver %s: %w", s.cfg.DriverID, ErrClosed)
	}
	if s.buf != nil {
		s.bufMu.Lock()
		s.buf.add(u)
		s.bufMu.Unlock()
	}
	if s.stream == nil {
		if s.buf != nil {
			return nil // replayed on the next stream
		}
		return fmt.Errorf("driver %s: %w", s.cfg.DriverID, ErrDisconnected)
	}
	if err := s.stream.Send(msg); err != nil {
		if s.buf != nil {
			return nil // the stream broke under it; replayed on the next
		}
		return fmt.Errorf("driver %s: send: %w", s.cfg.DriverID, err)
	}
	s.sent.Add(1)
	return nil
}

// Send sends one message of any kind but a hello: a location (as
// SendLocation does, kept for replay), an offer answer or a trip progress
// report (as Answer and Progress do). For callers that build the
// messages themselves.
func (s *DriverSession) Send(msg *geomatchv1.DriverMessage) error {
	switch m := msg.GetMsg().(type) {
	case *geomatchv1.DriverMessage_Location:
		return s.sendLocation(m.Location, msg)
	case *geomatchv1.DriverMessage_Hello, nil:
		return fmt.Errorf("driver %s: send: msg: want a location, an offer answer or trip progress, got %T", s.cfg.DriverID, m)
	}
	return s.send(msg)
}

// Answer accepts or declines a ride offer (the OnOffer callback does it
// for you).
func (s *DriverSession) Answer(offerID, tripID string, accept bool) error {
	return s.send(&geomatchv1.DriverMessage{Msg: &geomatchv1.DriverMessage_OfferAnswer{OfferAnswer: &geomatchv1.OfferAnswer{OfferId: offerID, TripId: tripID, Accept: accept}}})
}

// Progress reports the pickup (TRIP_STATE_PICKED_UP) or the drop-off
// (TRIP_STATE_COMPLETED) of the driver's trip; the router confirms with a
// Trip event (OnTrip) or refuses with OfferClosed.
func (s *DriverSession) Progress(tripID string, state geomatchv1.TripState) error {
	return s.send(&geomatchv1.DriverMessage{Msg: &geomatchv1.DriverMessage_TripProgress{TripProgress: &geomatchv1.TripProgress{TripId: tripID, State: state}}})
}

// send sends a message that is not kept for replay.
func (s *DriverSession) send(msg *geomatchv1.DriverMessage) error {
	s.sendMu.Lock()
	defer s.sendMu.Unlock()
	switch {
	case s.halfClosed || s.ended():
		return fmt.Errorf("driver %s: %w", s.cfg.DriverID, ErrClosed)
	case s.stream == nil:
		return fmt.Errorf("driver %s: %w", s.cfg.DriverID, ErrDisconnected)
	}
	if err := s.stream.Send(msg); err != nil {
		return fmt.Errorf("driver %s: send: %w", s.cfg.DriverID, err)
	}
	return nil
}

func (s *DriverSession) ended() bool {
	select {
	case <-s.done:
		return true
	default:
		return false
	}
}

// Flush waits until the router has acknowledged every location update
// sent so far (Pending is 0), the session ends, or ctx ends. It needs
// acknowledgements (not NoAcks, not NoReconnect).
func (s *DriverSession) Flush(ctx context.Context) error {
	if s.buf == nil {
		return errors.New("client: driver session: Flush needs acknowledgements (NoAcks and NoReconnect turn them off)")
	}
	for {
		s.bufMu.Lock()
		n := s.buf.len()
		s.bufMu.Unlock()
		if n == 0 {
			return nil
		}
		select {
		case <-s.ackSig:
		case <-s.done:
			return fmt.Errorf("driver %s: flush: %d updates not acknowledged: %w", s.cfg.DriverID, n, s.errOrClosed())
		case <-ctx.Done():
			return fmt.Errorf("driver %s: flush: %d updates not acknowledged: %w", s.cfg.DriverID, n, ctx.Err())
		}
	}
}

func (s *DriverSession) errOrClosed() error {
	if s.err != nil {
		return s.err
	}
	return ErrClosed
}

// CloseSend ends the session's sending side: no more reconnects; the
// router answers what it has (rejections, the last ack) and ends the
// stream, which ends the session (see Done). Later sends fail with
// ErrClosed.
func (s *DriverSession) CloseSend() {
	s.sendMu.Lock()
	defer s.sendMu.Unlock()
	if s.halfClosed {
		return
	}
	s.halfClosed = true
	close(s.closing)
	if s.stream != nil {
		_ = s.stream.CloseSend() // how the stream ends shows in its Recv
	}
}

// Close ends the session gracefully: CloseSend, then a wait (at most
// DrainTimeout) for the router to end the stream; past it the stream is
// cut. It returns when the session's goroutine is gone, with the session's
// error (nil after a clean end).
func (s *DriverSession) Close() error {
	s.CloseSend()
	t := time.NewTimer(s.cfg.DrainTimeout)
	defer t.Stop()
	select {
	case <-s.done:
	case <-t.C:
		s.abort()
		<-s.done
	}
	return s.Err()
}

// Abort cuts the session's stream at once, without waiting for the
// router's last answers; the session then ends (see Done).
func (s *DriverSession) Abort() { s.abort() }

// Done is closed when the session is over.
func (s *DriverSession) Done() <-chan struct{} { return s.done }

// Err is why the session ended: nil while it runs and after a clean
// Close.
func (s *DriverSession) Err() error {
	select {
	case <-s.done:
		return s.err
	default:
		return nil
	}
}

// DriverID is the session's driver.
func (s *DriverSession) DriverID() string { return s.cfg.DriverID }

// Stats returns the session's counters.
func (s *DriverSession) Stats() DriverStats {
	st := DriverStats{Sent: s.sent.Load(), Acked: s.acked.Load(), Rejected: s.rejected.Load(),
		Replayed: s.replayed.Load(), Reconnects: s.reconnects.Load()}
	if s.buf != nil {
		s.bufMu.Lock()
		st.Dropped, st.Pending = s.buf.dropped, s.buf.len()
		s.bufMu.Unlock()
	}
	return st
}

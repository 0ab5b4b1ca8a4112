package loadgen

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"time"

	"google.golang.org/grpc"

	"github.com/geomatch/geomatch/client"
	"github.com/geomatch/geomatch/internal/serve"
	geomatchv1 "github.com/geomatch/geomatch/proto/geomatch/v1"
)

// streamCloseTimeout bounds the wait for a stream's last rejections after
// the app closed its side.
const streamCloseTimeout = 5 * time.Second

// GRPCTarget is a geomatch cluster reached through its public gRPC API
// (package client): UpdateLocations, DriverService.Connect and
// NearbyDrivers. Calls are tried once: a load generator reports failures
// instead of hiding them behind retries.
type GRPCTarget struct {
	addr string
	conn *client.Conn
	// Nearby streams of the pipelined phases, kept open between round
	// trips: one per client at a time, at most maxPooledStreams idle.
	streams      chan *client.NearbyStream
	streamCtx    context.Context
	streamCancel context.CancelFunc
}

// maxPooledStreams bounds the idle nearby streams a GRPCTarget keeps.
const maxPooledStreams = 64

// NewGRPCTarget connects (lazily) to the public API at addr, which must be
// a loopback address. extra (TLS credentials, a token) come last and win;
// plaintext without them.
func NewGRPCTarget(addr string, extra ...grpc.DialOption) (*GRPCTarget, error) {
	if err := CheckLoopback(addr); err != nil {
		return nil, err
	}
	conn, err := client.Dial(addr, client.Insecure(), client.WithRetry(client.NoRetry),
		client.WithDialOptions(append(serve.DialOptions(), extra...)...))
	if err != nil {
		return nil, fmt.Errorf("grpc target %s: %w", addr, err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	return &GRPCTarget{addr: addr, conn: conn, streams: make(chan *client.NearbyStream, maxPooledStreams), streamCtx: ctx, streamCancel: cancel}, nil
}

// Name implements Target.
func (t *GRPCTarget) Name() string { return "geomatch grpc " + t.addr }

// Close implements Target.
func (t *GRPCTarget) Close() error {
	t.streamCancel()
	for {
		select {
		case ns := <-t.streams:
			_ = ns.Close()
		default:
			return t.conn.Close()
		}
	}
}

// NearbyPipelined implements Pipeliner over RiderService.NearbyStream:
// the searches of qs go out on one stream together and their answers
// come back tagged (client.NearbyStream.NearbyBatch). The stream stays
// open for the client's next round trip.
func (t *GRPCTarget) NearbyPipelined(ctx context.Context, qs []NearbyQuery) (int, error) {
	var ns *client.NearbyStream
	select {
	case ns = <-t.streams:
	default:
		var err error
		if ns, err = t.conn.OpenNearbyStream(t.streamCtx); err != nil {
			return len(qs), err
		}
	}
	reqs := make([]*geomatchv1.NearbyDriversRequest, len(qs))
	for i, q := range qs {
		reqs[i] = &geomatchv1.NearbyDriversRequest{Position: &geomatchv1.LatLng{Lat: q.Lat, Lng: q.Lng}, Limit: int32(q.Limit), RadiusM: q.RadiusM}
	}
	_, errs, err := ns.NearbyBatch(ctx, reqs)
	if err != nil {
		_ = ns.Close() // a stream cut mid-batch may still owe answers: not reused
		return len(qs), err
	}
	select {
	case t.streams <- ns:
	default:
		_ = ns.Close()
	}
	failed, first := 0, error(nil)
	for _, e := range errs {
		if e != nil {
			failed++
			first = cmp.Or(first, e)
		}
	}
	return failed, first
}

// StreamsNearby marks a target whose pipelining is a stream per client
// (RiderService.NearbyStream), so Run measures it with several clients
// too (NearbyStreamPhase).
func (t *GRPCTarget) StreamsNearby() {}

// Update implements Target with one UpdateLocations call.
func (t *GRPCTarget) Update(ctx context.Context, batch []Update) (int, error) {
	ups := make([]*geomatchv1.LocationUpdate, len(batch))
	for i, u := range batch {
		ups[i] = &geomatchv1.LocationUpdate{DriverId: u.ID,
			Position: &geomatchv1.LatLng{Lat: u.Lat, Lng: u.Lng}, TimestampMs: u.TimestampMs}
	}
	resp, err := t.conn.UpdateLocations(ctx, ups)
	if err != nil {
		return 0, err
	}
	if n := len(resp.GetRejected()); n > 0 {
		r := resp.GetRejected()[0]
		return n, fmt.Errorf("%d of %d updates rejected, first %s: %s %s", n, len(batch), r.GetDriverId(), r.GetReason(), r.GetMessage())
	}
	return 0, nil
}

// Nearby implements Target with one NearbyDrivers call.
func (t *GRPCTarget) Nearby(ctx context.Context, lat, lng, radiusM float64, limit int) error {
	_, err := t.conn.Nearby(ctx, &geomatchv1.NearbyDriversRequest{
		Position: &geomatchv1.LatLng{Lat: lat, Lng: lng}, Limit: int32(limit), RadiusM: radiusM})
	return err
}

// OpenStream implements Target with a driver session (one Connect
// stream, no reconnects, no acknowledgements); the session's goroutine
// counts the rejections coming down. The stream ends when ctx does.
func (t *GRPCTarget) OpenStream(ctx context.Context, driverID string) (Stream, error) {
	s := &grpcStream{ctx: ctx}
	sess, err := t.conn.ConnectDriver(ctx, client.DriverConfig{
		DriverID: driverID, NoReconnect: true, NoAcks: true, DrainTimeout: streamCloseTimeout,
		OnRejected: func(rj *geomatchv1.Rejection) {
			if rj.GetReason() == geomatchv1.RejectReason_REJECT_REASON_STALE {
				s.stale.Add(1)
				return
			}
			if s.rejected.Add(1) == 1 {
				s.firstRej.Store(fmt.Sprintf("%s: %s", rj.GetReason(), rj.GetMessage()))
			}
		},
	})
	if err != nil {
		return nil, fmt.Errorf("connect %s: %w", driverID, err)
	}
	s.sess = sess
	s.stop = context.AfterFunc(ctx, sess.Abort)
	return s, nil
}

type grpcStream struct {
	ctx      context.Context
	sess     *client.DriverSession
	stop     func() bool
	rejected atomic.Int64 // all but stale
	stale    atomic.Int64
	firstRej atomic.Value // string: the first rejection's reason and message
}

func (s *grpcStream) Send(u Update) error {
	return s.sess.SendLocation(&geomatchv1.LocationUpdate{
		Position: &geomatchv1.LatLng{Lat: u.Lat, Lng: u.Lng}, TimestampMs: u.TimestampMs})
}

func (s *grpcStream) Close() (int64, int64, error) {
	err := s.sess.Close()
	s.stop()
	if s.ctx.Err() != nil || errors.Is(err, client.ErrClosed) {
		err = nil // the run ended the stream, or it did not drain in time
	}
	n, stale := s.rejected.Load(), s.stale.Load()
	if rj, ok := s.firstRej.Load().(string); ok && err == nil {
		err = fmt.Errorf("%d updates rejected, first %s", n, rj)
	}
	return n + stale, stale, err
}

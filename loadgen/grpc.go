package loadgen

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync"
	"sync/atomic"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/geomatch/geomatch/internal/serve"
	geomatchv1 "github.com/geomatch/geomatch/proto/geomatch/v1"
)

// streamCloseTimeout bounds the wait for a stream's last rejections after
// the app closed its side.
const streamCloseTimeout = 5 * time.Second

// GRPCTarget is a geomatch cluster reached through its public gRPC API:
// UpdateLocations, DriverService.Connect and NearbyDrivers.
type GRPCTarget struct {
	addr    string
	conn    *grpc.ClientConn
	drivers geomatchv1.DriverServiceClient
	riders  geomatchv1.RiderServiceClient
}

// NewGRPCTarget connects (lazily) to the public API at addr, which must be
// a loopback address. extra (TLS credentials, a token) come last and win;
// plaintext without them.
func NewGRPCTarget(addr string, extra ...grpc.DialOption) (*GRPCTarget, error) {
	if err := CheckLoopback(addr); err != nil {
		return nil, err
	}
	opts := append(serve.DialOptions(), grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithDefaultCallOptions(grpc.MaxCallRecvMsgSize(serve.MaxMessageBytes)))
	conn, err := grpc.NewClient(addr, append(opts, extra...)...)
	if err != nil {
		return nil, fmt.Errorf("grpc target %s: %w", addr, err)
	}
	return &GRPCTarget{addr: addr, conn: conn,
		drivers: geomatchv1.NewDriverServiceClient(conn), riders: geomatchv1.NewRiderServiceClient(conn)}, nil
}

// Name implements Target.
func (t *GRPCTarget) Name() string { return "geomatch grpc " + t.addr }

// Close implements Target.
func (t *GRPCTarget) Close() error { return t.conn.Close() }

// Update implements Target with one UpdateLocations call.
func (t *GRPCTarget) Update(ctx context.Context, batch []Update) (int, error) {
	req := &geomatchv1.UpdateLocationsRequest{Updates: make([]*geomatchv1.LocationUpdate, len(batch))}
	for i, u := range batch {
		req.Updates[i] = &geomatchv1.LocationUpdate{DriverId: u.ID,
			Position: &geomatchv1.LatLng{Lat: u.Lat, Lng: u.Lng}, TimestampMs: u.TimestampMs}
	}
	resp, err := t.drivers.UpdateLocations(ctx, req)
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
	_, err := t.riders.NearbyDrivers(ctx, &geomatchv1.NearbyDriversRequest{
		Position: &geomatchv1.LatLng{Lat: lat, Lng: lng}, Limit: int32(limit), RadiusM: radiusM})
	return err
}

// OpenStream implements Target with a DriverService.Connect stream; a
// goroutine owned by the stream counts the rejections coming down.
func (t *GRPCTarget) OpenStream(ctx context.Context, driverID string) (Stream, error) {
	ctx, cancel := context.WithCancel(ctx)
	st, err := t.drivers.Connect(ctx)
	if err == nil {
		err = st.Send(&geomatchv1.DriverMessage{Msg: &geomatchv1.DriverMessage_Hello{Hello: &geomatchv1.DriverHello{DriverId: driverID}}})
	}
	if err != nil {
		cancel()
		return nil, fmt.Errorf("connect %s: %w", driverID, err)
	}
	s := &grpcStream{st: st, cancel: cancel}
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		for {
			ev, err := st.Recv()
			if err != nil {
				if !errors.Is(err, io.EOF) && ctx.Err() == nil {
					s.recvErr.Store(&err)
				}
				return
			}
			if rj := ev.GetRejected(); rj != nil {
				if rj.GetReason() == geomatchv1.RejectReason_REJECT_REASON_STALE {
					s.stale.Add(1)
					continue
				}
				if s.rejected.Add(1) == 1 {
					s.firstRej.Store(fmt.Sprintf("%s: %s", rj.GetReason(), rj.GetMessage()))
				}
			}
		}
	}()
	return s, nil
}

type grpcStream struct {
	st       geomatchv1.DriverService_ConnectClient
	cancel   context.CancelFunc
	wg       sync.WaitGroup
	rejected atomic.Int64 // all but stale
	stale    atomic.Int64
	recvErr  atomic.Pointer[error]
	firstRej atomic.Value // string: the first rejection's reason and message
}

func (s *grpcStream) Send(u Update) error {
	return s.st.Send(&geomatchv1.DriverMessage{Msg: &geomatchv1.DriverMessage_Location{Location: &geomatchv1.LocationUpdate{
		Position: &geomatchv1.LatLng{Lat: u.Lat, Lng: u.Lng}, TimestampMs: u.TimestampMs}}})
}

func (s *grpcStream) Close() (int64, int64, error) {
	err := s.st.CloseSend()
	done := make(chan struct{})
	go func() { s.wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(streamCloseTimeout):
		s.cancel()
		<-done
	}
	s.cancel()
	if p := s.recvErr.Load(); p != nil && err == nil {
		err = *p
	}
	n, stale := s.rejected.Load(), s.stale.Load()
	if rj, ok := s.firstRej.Load().(string); ok && err == nil {
		err = fmt.Errorf("%d updates rejected, first %s", n, rj)
	}
	return n + stale, stale, err
}

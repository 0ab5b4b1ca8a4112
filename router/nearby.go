package router

import (
	"context"
	"errors"
	"io"
	"runtime/debug"
	"sync"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/geomatch/geomatch/driver"
	"github.com/geomatch/geomatch/fleet"
	"github.com/geomatch/geomatch/internal/geo"
	"github.com/geomatch/geomatch/internal/metrics"
	geomatchv1 "github.com/geomatch/geomatch/proto/geomatch/v1"
)

// riderService implements geomatchv1.RiderServiceServer.
type riderService struct {
	geomatchv1.UnimplementedRiderServiceServer
	r *Router
}

// NearbyDrivers implements RiderServiceServer: available drivers only,
// exact across shard and node borders (fleet.Client.Search). When an
// owner cannot be reached within the query's budget, the answer holds the
// drivers of the others and says which shards it left out (partial,
// missing_shards) instead of failing.
func (s *riderService) NearbyDrivers(ctx context.Context, req *geomatchv1.NearbyDriversRequest) (*geomatchv1.NearbyDriversResponse, error) {
	if err := ValidateNearby(req); err != nil {
		return nil, status.Error(codes.InvalidArgument, err.Error())
	}
	return s.r.nearby(ctx, req)
}

// nearby answers a valid nearby request.
func (r *Router) nearby(ctx context.Context, req *geomatchv1.NearbyDriversRequest) (*geomatchv1.NearbyDriversResponse, error) {
	ans, err := r.fleet.Search(ctx, fleet.Query{
		Pos:     geo.LatLng{Lat: req.GetPosition().GetLat(), Lng: req.GetPosition().GetLng()},
		RadiusM: req.GetRadiusM(), K: int(req.GetLimit()),
		Status: driver.StatusAvailable, VehicleClass: req.GetVehicleClass(),
	})
	if err != nil {
		return nil, err
	}
	found := ans.Drivers
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
	if ans.Partial() {
		resp.Partial = true
		resp.MissingShards = make([]string, len(ans.Missing))
		for i, c := range ans.Missing {
			resp.MissingShards[i] = c.String()
		}
		metrics.CountPartialAnswer(len(ans.Missing))
	}
	return resp, nil
}

// NearbyStream limits.
const (
	// nearbyStreamInFlight bounds the requests of one NearbyStream being
	// answered at once: enough to keep every core of a router and the
	// matchers behind it busy from one connection, few enough that one
	// stream cannot hold more than a few MB of answers. A client that
	// sends faster waits (flow control pushes back on its sends).
	nearbyStreamInFlight = 64
	// MaxTagBytes bounds NearbyDriversRequest.tag.
	MaxTagBytes = 128
)

// NearbyStream implements RiderServiceServer: each request is answered by
// one response carrying its tag, as soon as it is ready (answers may come
// out of order). A request that fails (invalid, over the client's rate,
// nobody reachable) is answered with its error and the stream goes on;
// the stream itself ends when the client closes its side (after every
// answer is sent) or the connection ends. Each request costs one from the
// client's request rate, as a NearbyDrivers call does.
func (s *riderService) NearbyStream(stream geomatchv1.RiderService_NearbyStreamServer) error {
	ctx, cancel := context.WithCancel(stream.Context())
	c := callerFrom(stream.Context())
	var (
		wg      sync.WaitGroup
		slots   = make(chan struct{}, nearbyStreamInFlight)
		sendMu  sync.Mutex
		sendErr error
	)
	defer func() { cancel(); wg.Wait() }()
	send := func(resp *geomatchv1.NearbyDriversResponse) {
		sendMu.Lock()
		defer sendMu.Unlock()
		if sendErr != nil {
			return
		}
		if err := stream.Send(resp); err != nil {
			sendErr = err
			cancel()
		}
	}
	fail := func(tag string, err error) {
		st := status.Convert(err)
		send(&geomatchv1.NearbyDriversResponse{Tag: tag, Error: &geomatchv1.NearbyError{Code: int32(st.Code()), Message: st.Message()}})
	}
	for {
		req, err := stream.Recv()
		if errors.Is(err, io.EOF) {
			wg.Wait()
			sendMu.Lock()
			defer sendMu.Unlock()
			return sendErr
		}
		if err != nil {
			return err
		}
		tag := req.GetTag()
		if len(tag) > MaxTagBytes {
			fail(tag[:MaxTagBytes], status.Errorf(codes.InvalidArgument, "tag: at most %d bytes, got %d", MaxTagBytes, len(tag)))
			continue
		}
		if err := s.r.limits.admit(c, bucketRequests, 1); err != nil {
			fail(tag, err)
			continue
		}
		if err := ValidateNearby(req); err != nil {
			fail(tag, status.Error(codes.InvalidArgument, err.Error()))
			continue
		}
		select {
		case slots <- struct{}{}:
		case <-ctx.Done():
			return status.FromContextError(ctx.Err()).Err()
		}
		wg.Add(1)
		go func() { // owned: NearbyStream waits for it before returning
			defer wg.Done()
			defer func() { <-slots }()
			defer func() {
				if p := recover(); p != nil {
					s.r.log.Error("panic answering a NearbyStream request", "panic", p, "stack", string(debug.Stack()))
					fail(tag, status.Error(codes.Internal, "internal error answering the request"))
				}
			}()
			resp, err := s.r.nearby(ctx, req)
			if err != nil {
				fail(tag, err)
				return
			}
			resp.Tag = tag
			send(resp)
		}()
	}
}

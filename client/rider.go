package client

import (
	"context"
	"errors"

	"google.golang.org/grpc"

	geomatchv1 "github.com/geomatch/geomatch/proto/geomatch/v1"
)

// Nearby returns the available drivers nearest to req.Position (nearest
// first, exact). It retries under the connection's RetryPolicy, within
// ctx's deadline, when the router answers UNAVAILABLE (a matcher
// unreachable, a shard moving). A partial answer (resp.Partial, some
// shards unreachable) is returned as it is, not retried.
func (c *Conn) Nearby(ctx context.Context, req *geomatchv1.NearbyDriversRequest, opts ...grpc.CallOption) (*geomatchv1.NearbyDriversResponse, error) {
	return retry(ctx, c.cfg.retry, func(ctx context.Context) (*geomatchv1.NearbyDriversResponse, error) {
		return c.riders.NearbyDrivers(ctx, req, opts...)
	})
}

// RequestRide asks for a ride. The call is idempotent by req.RequestId,
// so it is retried like Nearby: a retry of a request the router did take
// returns the same trip. With req.WaitMs > 0 the call waits (at most that
// long) for a driver to be assigned or the trip to end; give ctx a
// deadline beyond the wait.
func (c *Conn) RequestRide(ctx context.Context, req *geomatchv1.RequestRideRequest, opts ...grpc.CallOption) (*geomatchv1.Trip, error) {
	if req.GetRequestId() == "" {
		return nil, errors.New("client: request ride: request_id: empty (it makes the call safe to retry)")
	}
	return retry(ctx, c.cfg.retry, func(ctx context.Context) (*geomatchv1.Trip, error) {
		return c.riders.RequestRide(ctx, req, opts...)
	})
}

// GetTrip returns a trip's current state, retrying like Nearby.
func (c *Conn) GetTrip(ctx context.Context, tripID string, opts ...grpc.CallOption) (*geomatchv1.Trip, error) {
	req := &geomatchv1.GetTripRequest{TripId: tripID}
	return retry(ctx, c.cfg.retry, func(ctx context.Context) (*geomatchv1.Trip, error) {
		return c.riders.GetTrip(ctx, req, opts...)
	})
}

// CancelTrip cancels a trip for its rider and releases its driver,
// retrying like Nearby (cancelling twice is harmless). A trip past its
// pickup answers FAILED_PRECONDITION.
func (c *Conn) CancelTrip(ctx context.Context, tripID, riderID, reason string, opts ...grpc.CallOption) (*geomatchv1.Trip, error) {
	req := &geomatchv1.CancelTripRequest{TripId: tripID, RiderId: riderID, Reason: reason}
	return retry(ctx, c.cfg.retry, func(ctx context.Context) (*geomatchv1.Trip, error) {
		return c.riders.CancelTrip(ctx, req, opts...)
	})
}

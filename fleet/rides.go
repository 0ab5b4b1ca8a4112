package fleet

import (
	"context"
	"sync"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/geomatch/geomatch/internal/geo"
	matcherv1 "github.com/geomatch/geomatch/proto/geomatch/matcher/v1"
	geomatchv1 "github.com/geomatch/geomatch/proto/geomatch/v1"
	"github.com/geomatch/geomatch/shardmap"
)

// RequestRide hands a validated ride request to the matcher that owns the
// pickup's shard, which coordinates the ride, and returns the trip as that
// matcher answered. It retries on NotOwner like every routed call.
func (c *Client) RequestRide(ctx context.Context, req *geomatchv1.RequestRideRequest) (*geomatchv1.Trip, error) {
	pickup := geo.LatLng{Lat: req.GetPickup().GetLat(), Lng: req.GetPickup().GetLng()}
	var out *geomatchv1.Trip
	err := c.retryNotOwner(ctx, "request ride", func(m *shardmap.Map) error {
		_, shard, owner, ok := m.Locate(pickup)
		if !ok {
			return status.Errorf(codes.Unavailable, "request ride: no matcher owns the pickup's shard at epoch %d", m.Epoch())
		}
		p, err := c.peer(owner)
		if err != nil {
			return status.Errorf(codes.Unavailable, "request ride: %v", err)
		}
		resp, err := p.ride.RequestRide(ctx, &matcherv1.RideRequest{Epoch: m.Epoch(), Shard: uint64(shard), Request: req})
		if err != nil {
			if _, ok := AsNotOwner(err); ok {
				return err
			}
			if status.Code(err) == codes.Canceled && ctx.Err() == nil {
				// Not the caller's cancellation: the connection to the
				// matcher was closed under the call, because the ring
				// dropped it. Routed again on the new ring; the request
				// id makes a second delivery harmless.
				return &shardmap.NotOwnerError{NodeID: owner.ID, Epoch: m.Epoch()}
			}
			return unreachable("request ride", owner, err)
		}
		out = resp.GetTrip()
		return nil
	})
	return out, err
}

// NodeStats is one member's answer to the status probe.
type NodeStats struct {
	Member shardmap.Member
	// Stats is the member's answer; nil when Err is set.
	Stats *matcherv1.StatsResponse
	Err   error
}

// Stats asks every member of m for its drivers and load per shard, in
// parallel, each within timeout.
func (c *Client) Stats(ctx context.Context, m *shardmap.Map, timeout time.Duration) []NodeStats {
	members := m.Members()
	out := make([]NodeStats, len(members))
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	var wg sync.WaitGroup
	for i, mem := range members {
		out[i].Member = mem
		wg.Add(1)
		go func() {
			defer wg.Done()
			p, err := c.peer(mem)
			if err != nil {
				out[i].Err = err
				return
			}
			out[i].Stats, out[i].Err = p.rpc.Stats(ctx, &matcherv1.StatsRequest{})
		}()
	}
	wg.Wait()
	return out
}

package dispatch

import (
	"context"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/geomatch/geomatch/internal/geo"
	matcherv1 "github.com/geomatch/geomatch/proto/geomatch/matcher/v1"
)

// OwnerCheck refuses (with the matcher's NotOwner error) a shard the node
// does not own at the caller's epoch.
type OwnerCheck func(ctx context.Context, epoch, shard uint64) error

// Server exposes a Coordinator as the internal DispatchService.
type Server struct {
	matcherv1.UnimplementedDispatchServiceServer
	c     *Coordinator
	check OwnerCheck
}

// NewServer returns the gRPC service of c.
func NewServer(c *Coordinator, check OwnerCheck) *Server { return &Server{c: c, check: check} }

// RequestRide implements DispatchServiceServer. The router has validated the
// public request; the node checks ownership and that the shard is the
// pickup's.
func (s *Server) RequestRide(ctx context.Context, req *matcherv1.RideRequest) (*matcherv1.RideResponse, error) {
	r := req.GetRequest()
	if r == nil {
		return nil, status.Error(codes.InvalidArgument, "request: required")
	}
	if err := ValidateRequestRide(r); err != nil {
		return nil, status.Error(codes.InvalidArgument, err.Error())
	}
	// Ownership first: a router routing by an older ring (a split or a
	// merge in flight) gets a NotOwner it retries on, not a refusal.
	if err := s.check(ctx, req.GetEpoch(), req.GetShard()); err != nil {
		return nil, err
	}
	pickup := geo.LatLng{Lat: r.GetPickup().GetLat(), Lng: r.GetPickup().GetLng()}
	if got := s.c.place.Shard(pickup); got != req.GetShard() {
		return nil, status.Errorf(codes.InvalidArgument, "shard: %x is not the pickup's shard %x", req.GetShard(), got)
	}
	t, created, err := s.c.RequestRide(ctx, Request{
		RequestID: r.GetRequestId(), RiderID: r.GetRiderId(), VehicleClass: r.GetVehicleClass(),
		Pickup: pickup, Dropoff: geo.LatLng{Lat: r.GetDropoff().GetLat(), Lng: r.GetDropoff().GetLng()},
	}, time.Duration(r.GetWaitMs())*time.Millisecond)
	if err != nil {
		return nil, Status(err)
	}
	return &matcherv1.RideResponse{Trip: ToProto(t), Created: created}, nil
}

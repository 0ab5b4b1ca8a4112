package router

import (
	"context"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/geomatch/geomatch/driver"
	"github.com/geomatch/geomatch/fleet"
	"github.com/geomatch/geomatch/internal/geo"
	geomatchv1 "github.com/geomatch/geomatch/proto/geomatch/v1"
)

// riderService implements geomatchv1.RiderServiceServer.
type riderService struct {
	geomatchv1.UnimplementedRiderServiceServer
	r *Router
}

// NearbyDrivers implements RiderServiceServer: available drivers only,
// exact across shard and node borders (fleet.Client.Nearby).
func (s *riderService) NearbyDrivers(ctx context.Context, req *geomatchv1.NearbyDriversRequest) (*geomatchv1.NearbyDriversResponse, error) {
	if err := ValidateNearby(req); err != nil {
		return nil, status.Error(codes.InvalidArgument, err.Error())
	}
	found, err := s.r.fleet.Nearby(ctx, fleet.Query{
		Pos:     geo.LatLng{Lat: req.GetPosition().GetLat(), Lng: req.GetPosition().GetLng()},
		RadiusM: req.GetRadiusM(), K: int(req.GetLimit()),
		Status: driver.StatusAvailable, VehicleClass: req.GetVehicleClass(),
	})
	if err != nil {
		return nil, err
	}
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
	return resp, nil
}

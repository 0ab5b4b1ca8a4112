package matcher

import (
	"context"
	"errors"

	"github.com/uber/h3-go/v4"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/geomatch/geomatch/driver"
	"github.com/geomatch/geomatch/internal/geo"
	"github.com/geomatch/geomatch/matcher/index"
	matcherv1 "github.com/geomatch/geomatch/proto/geomatch/matcher/v1"
	geomatchv1 "github.com/geomatch/geomatch/proto/geomatch/v1"
	"github.com/geomatch/geomatch/shardmap"
)

// Conversions between the node's domain types and the internal wire
// messages, shared by the gRPC service and the in-process adapter, and the
// one place where node errors become gRPC statuses.

// applyWire applies one wire batch through the node with scratch s.
func (n *Node) applyWire(ctx context.Context, req *matcherv1.ApplyRequest, s *ApplyScratch) (*matcherv1.ApplyResponse, error) {
	if len(req.GetUpdates()) > MaxBatch || len(req.GetEvictions()) > MaxBatch {
		return nil, toStatus(errBatchTooLarge(len(req.GetUpdates()), len(req.GetEvictions())))
	}
	if err := n.checkLease(); err != nil {
		return nil, err
	}
	b := Batch{Epoch: req.GetEpoch(), Updates: s.batch[:0]}
	for _, u := range req.GetUpdates() {
		b.Updates = append(b.Updates, wireUpdate(u))
	}
	b.Evictions = s.evicts[:0]
	for _, e := range req.GetEvictions() {
		b.Evictions = append(b.Evictions, Eviction{DriverID: e.GetDriverId(), OlderThanMs: e.GetOlderThanMs(), ClaimedBy: e.GetClaimedBy()})
	}
	s.batch, s.evicts = b.Updates, b.Evictions
	res, err := n.Apply(ctx, b, s)
	// No references to the request's strings between batches.
	clear(s.batch)
	clear(s.evicts)
	if err != nil {
		return nil, toStatus(err)
	}
	resp := &matcherv1.ApplyResponse{Seq: req.GetSeq(), Epoch: res.Epoch}
	if len(res.Exceptions) > 0 {
		resp.Exceptions = make([]*matcherv1.Exception, len(res.Exceptions))
		exc := make([]matcherv1.Exception, len(res.Exceptions))
		for i, e := range res.Exceptions {
			exc[i].Index, exc[i].Outcome = e.Index, matcherv1.Outcome(e.Outcome)
			resp.Exceptions[i] = &exc[i]
		}
	}
	if len(res.Claimed) > 0 {
		resp.Claimed = append([]uint32(nil), res.Claimed...)
	}
	for _, e := range res.Newer {
		resp.Newer = append(resp.Newer, &matcherv1.Eviction{DriverId: e.DriverID, OlderThanMs: e.OlderThanMs, ClaimedBy: e.ClaimedBy})
	}
	return resp, nil
}

// wireUpdate is the domain form of a wire update.
func wireUpdate(u *matcherv1.Update) Update {
	return Update{
		DriverID: u.GetDriverId(), Pos: geo.LatLng{Lat: u.GetLat(), Lng: u.GetLng()}, TimestampMs: u.GetTimestampMs(),
		Status: wireStatus(u.GetStatus()), VehicleClass: u.GetVehicleClass(), FineCell: h3.Cell(u.GetFineCell()),
		OnStream: u.GetOnStream(),
	}
}

// wireStatus is the domain form of a wire status; an unknown value stays
// unknown (and invalid).
func wireStatus(s geomatchv1.DriverStatus) driver.Status {
	if s < 0 || s > 255 {
		return driver.Status(255)
	}
	return driver.Status(s)
}

// nearbyWire answers one wire search through the node.
func (n *Node) nearbyWire(ctx context.Context, req *matcherv1.NearbyRequest) (*matcherv1.NearbyResponse, error) {
	if len(req.GetShards()) > MaxShardsPerQuery {
		return nil, toStatus(errTooManyShards(len(req.GetShards())))
	}
	if err := n.checkLease(); err != nil {
		return nil, err
	}
	q := Query{
		Epoch: req.GetEpoch(), Pos: geo.LatLng{Lat: req.GetLat(), Lng: req.GetLng()}, RadiusM: req.GetRadiusM(),
		Limit: int(req.GetLimit()), Shards: make([]h3.Cell, len(req.GetShards())),
		Status: wireStatus(req.GetStatus()), VehicleClass: req.GetVehicleClass(), OnStreamOnly: req.GetOnStreamOnly(),
	}
	for i, s := range req.GetShards() {
		q.Shards[i] = h3.Cell(s)
	}
	epoch, found, err := n.Nearby(ctx, q)
	if err != nil {
		return nil, toStatus(err)
	}
	return &matcherv1.NearbyResponse{Epoch: epoch, Neighbors: neighborsToWire(found)}, nil
}

// neighborsToWire converts search results, in two allocations.
func neighborsToWire(found []index.Neighbor) []*matcherv1.Neighbor {
	out := make([]*matcherv1.Neighbor, len(found))
	for i, nb := range found {
		out[i] = &matcherv1.Neighbor{
			DriverId:     nb.Driver.ID,
			Lat:          nb.Driver.Pos.Lat,
			Lng:          nb.Driver.Pos.Lng,
			DistanceM:    nb.DistanceM,
			TimestampMs:  nb.Driver.TimestampMs,
			Status:       geomatchv1.DriverStatus(nb.Driver.Status),
			VehicleClass: nb.Driver.VehicleClass,
		}
	}
	return out
}

// statsToWire converts a node's stats.
func statsToWire(st Stats) *matcherv1.StatsResponse {
	resp := &matcherv1.StatsResponse{NodeId: st.NodeID, Epoch: st.Epoch, Drivers: st.Drivers, Shards: make([]*matcherv1.ShardStats, len(st.Shards)), ConsulLease: st.ConsulLease}
	for i, s := range st.Shards {
		resp.Shards[i] = &matcherv1.ShardStats{Cell: uint64(s.Shard), Drivers: s.Drivers, UpdatesPerS: s.UpdatesPerS, QueriesPerS: s.QueriesPerS}
	}
	return resp
}

// NotOwnerStatus is the gRPC form of a NotOwner refusal: ABORTED with a
// NotOwner detail (fleet.AsNotOwner reads it back).
func NotOwnerStatus(e *shardmap.NotOwnerError) *status.Status {
	st := status.New(codes.Aborted, e.Error())
	d := &matcherv1.NotOwner{Epoch: e.Epoch, NodeId: e.NodeID, Shards: make([]uint64, len(e.Shards))}
	for i, c := range e.Shards {
		d.Shards[i] = uint64(c)
	}
	if withDetail, err := st.WithDetails(d); err == nil {
		return withDetail
	}
	return st
}

// StatusError maps an error of the node (or of a service that checks
// ownership through it, such as ride dispatch) to its gRPC status, in one
// place: NotOwner is ABORTED with its detail, a malformed request
// INVALID_ARGUMENT, a caller's cancellation or deadline their codes, a
// status error itself; anything else INTERNAL. Nil stays nil.
func StatusError(err error) error {
	if err == nil {
		return nil
	}
	return toStatus(err)
}

func toStatus(err error) error {
	var no *shardmap.NotOwnerError
	if _, ok := status.FromError(err); ok {
		return err
	}
	switch {
	case errors.As(err, &no):
		return NotOwnerStatus(no).Err()
	case errors.Is(err, errInvalid):
		return status.Error(codes.InvalidArgument, err.Error())
	case errors.Is(err, errUnavailable):
		return status.Error(codes.Unavailable, err.Error())
	case errors.Is(err, context.Canceled):
		return status.Error(codes.Canceled, err.Error())
	case errors.Is(err, context.DeadlineExceeded):
		return status.Error(codes.DeadlineExceeded, err.Error())
	}
	return status.Error(codes.Internal, err.Error())
}

// transferChunkToWire converts one part of a Transfer answer.
func transferChunkToWire(c TransferChunk) *matcherv1.TransferChunk {
	out := &matcherv1.TransferChunk{Drivers: make([]*matcherv1.Update, len(c.Drivers)), Covered: make([]uint64, len(c.Covered))}
	for i, d := range c.Drivers {
		out.Drivers[i] = &matcherv1.Update{
			DriverId: d.ID, Lat: d.Pos.Lat, Lng: d.Pos.Lng, TimestampMs: d.TimestampMs,
			Status: geomatchv1.DriverStatus(d.Status), VehicleClass: d.VehicleClass, OnStream: d.OnStream,
		}
	}
	for i, s := range c.Covered {
		out.Covered[i] = uint64(s)
	}
	return out
}

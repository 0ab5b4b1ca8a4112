package matcher

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"

	"github.com/uber/h3-go/v4"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/geomatch/geomatch/membership"
	matcherv1 "github.com/geomatch/geomatch/proto/geomatch/matcher/v1"
)

// Server exposes a Node as the internal gRPC MatcherService.
type Server struct {
	matcherv1.UnimplementedMatcherServiceServer
	node *Node
}

// NewServer returns the gRPC service of n.
func NewServer(n *Node) *Server { return &Server{node: n} }

// Apply serves one router's update stream: each batch is applied in order
// and answered with one response.
func (s *Server) Apply(stream matcherv1.MatcherService_ApplyServer) error {
	scratch := &ApplyScratch{}
	for {
		req, err := stream.Recv()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return err
		}
		resp, err := s.node.applyWire(stream.Context(), req, scratch)
		if err != nil {
			return err
		}
		if err := stream.Send(resp); err != nil {
			return err
		}
	}
}

// Nearby implements MatcherServiceServer.
func (s *Server) Nearby(ctx context.Context, req *matcherv1.NearbyRequest) (*matcherv1.NearbyResponse, error) {
	return s.node.nearbyWire(ctx, req)
}

// Stats implements MatcherServiceServer.
func (s *Server) Stats(context.Context, *matcherv1.StatsRequest) (*matcherv1.StatsResponse, error) {
	return statsToWire(s.node.Stats()), nil
}

// Transfer implements MatcherServiceServer.
func (s *Server) Transfer(req *matcherv1.TransferRequest, stream matcherv1.MatcherService_TransferServer) error {
	tr := TransferRequest{Epoch: req.GetEpoch(), To: req.GetNodeId(), SinceEpoch: req.GetSinceEpoch()}
	if len(req.GetShards()) > MaxShardsPerQuery {
		return toStatus(errTooManyShards(len(req.GetShards())))
	}
	for _, c := range req.GetShards() {
		tr.Shards = append(tr.Shards, h3.Cell(c))
	}
	send := func(c TransferChunk) error { return stream.Send(transferChunkToWire(c)) }
	if err := s.node.Transfer(stream.Context(), tr, send); err != nil {
		return toStatus(err)
	}
	return nil
}

// Holding implements MatcherServiceServer.
func (s *Server) Holding(_ context.Context, req *matcherv1.HoldingRequest) (*matcherv1.HoldingResponse, error) {
	held, err := s.node.Holding(req.GetDriverIds())
	if err != nil {
		return nil, toStatus(err)
	}
	resp := &matcherv1.HoldingResponse{Held: make([]*matcherv1.HoldingResponse_Held, len(held))}
	for i, h := range held {
		resp.Held[i] = &matcherv1.HoldingResponse_Held{DriverId: h.DriverID, TimestampMs: h.TimestampMs}
	}
	return resp, nil
}

// SyncFences implements MatcherServiceServer.
func (s *Server) SyncFences(ctx context.Context, req *matcherv1.SyncFencesRequest) (*matcherv1.SyncFencesResponse, error) {
	rev, n, err := s.node.SyncFences(ctx, req.GetMinRevision())
	if err != nil {
		return nil, toStatus(err)
	}
	return &matcherv1.SyncFencesResponse{Revision: rev, Fences: int64(n)}, nil
}

// FenceCounts implements MatcherServiceServer.
func (s *Server) FenceCounts(_ context.Context, req *matcherv1.FenceCountsRequest) (*matcherv1.FenceCountsResponse, error) {
	if len(req.GetFenceIds()) > MaxFenceCountIDs {
		return nil, toStatus(fmt.Errorf("fence_ids: %d listed, at most %d: %w", len(req.GetFenceIds()), MaxFenceCountIDs, errInvalid))
	}
	epoch, counts, err := s.node.FenceCounts(req.GetFenceIds())
	if err != nil {
		return nil, toStatus(err)
	}
	return &matcherv1.FenceCountsResponse{Epoch: epoch, Counts: counts, Revision: s.node.fence.rev.Load()}, nil
}

// Standby implements MatcherServiceServer: it keeps updates a lost
// matcher acknowledged for the shards this node takes over (Node.Standby).
func (s *Server) Standby(ctx context.Context, req *matcherv1.StandbyRequest) (*matcherv1.StandbyResponse, error) {
	ups := make([]Update, len(req.GetUpdates()))
	for i, u := range req.GetUpdates() {
		ups[i] = wireUpdate(u)
	}
	res, err := s.node.Standby(ctx, ups)
	if err != nil {
		return nil, toStatus(err)
	}
	return &matcherv1.StandbyResponse{Held: int32(res.Held), Applied: int32(res.Applied)}, nil
}

// Ring implements MatcherServiceServer: the node's epoch, and its ring
// record when that is newer than the caller's and the node follows a
// source of records (Consul). A node whose lease lapsed answers too: the
// ring it read is Consul's whatever its own contact, and the caller only
// adopts a newer one. With advance_to it first moves the node to that
// epoch, if it can (Node.release).
func (s *Server) Ring(ctx context.Context, req *matcherv1.RingRequest) (*matcherv1.RingResponse, error) {
	if to := req.GetAdvanceTo(); to > 0 {
		s.node.release(ctx, to)
	}
	m, _ := s.node.src.Current()
	resp := &matcherv1.RingResponse{Epoch: m.Epoch()}
	relay, ok := s.node.src.(membership.Relay)
	if !ok || m.Epoch() <= req.GetKnownEpoch() {
		return resp, nil
	}
	rec := relay.Record()
	if rec.Doc.Epoch <= req.GetKnownEpoch() {
		return resp, nil
	}
	data, err := json.Marshal(rec)
	if err != nil {
		return nil, status.Errorf(codes.Internal, "encode ring record: %v", err)
	}
	resp.Epoch, resp.Record = rec.Doc.Epoch, data
	return resp, nil
}

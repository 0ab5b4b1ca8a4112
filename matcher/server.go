package matcher

import (
	"context"
	"errors"
	"io"

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
	if err := s.node.Transfer(stream.Context(), req, stream.Send); err != nil {
		return toStatus(err)
	}
	return nil
}

// Holding implements MatcherServiceServer.
func (s *Server) Holding(_ context.Context, req *matcherv1.HoldingRequest) (*matcherv1.HoldingResponse, error) {
	resp, err := s.node.Holding(req)
	if err != nil {
		return nil, toStatus(err)
	}
	return resp, nil
}

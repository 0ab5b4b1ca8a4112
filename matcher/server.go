package matcher

import (
	"context"
	"errors"
	"io"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

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
	buf := &applyBuf{}
	for {
		req, err := stream.Recv()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return err
		}
		resp, err := s.node.Apply(stream.Context(), req, buf)
		if err != nil {
			return toStatus(err)
		}
		if err := stream.Send(resp); err != nil {
			return err
		}
	}
}

// Nearby implements MatcherServiceServer.
func (s *Server) Nearby(ctx context.Context, req *matcherv1.NearbyRequest) (*matcherv1.NearbyResponse, error) {
	resp, err := s.node.Nearby(ctx, req)
	if err != nil {
		return nil, toStatus(err)
	}
	return resp, nil
}

// Stats implements MatcherServiceServer.
func (s *Server) Stats(context.Context, *matcherv1.StatsRequest) (*matcherv1.StatsResponse, error) {
	return s.node.Stats(), nil
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

// toStatus maps node errors to gRPC codes, in one place.
func toStatus(err error) error {
	var no *NotOwnerError
	switch {
	case errors.As(err, &no):
		return no.GRPCStatus().Err()
	case errors.Is(err, errInvalid):
		return status.Error(codes.InvalidArgument, err.Error())
	case errors.Is(err, context.Canceled):
		return status.Error(codes.Canceled, err.Error())
	case errors.Is(err, context.DeadlineExceeded):
		return status.Error(codes.DeadlineExceeded, err.Error())
	}
	return status.Error(codes.Internal, err.Error())
}

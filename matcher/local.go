package matcher

import (
	"context"
	"runtime/debug"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	matcherv1 "github.com/geomatch/geomatch/proto/geomatch/matcher/v1"
)

// Local is a node's internal service for a fleet client in the same
// process (`geomatch dev`, and the searches of a matcher's own ride
// coordinator): the searches and update batches of the gRPC service as
// function calls, with the same answers and the same status errors, minus
// the encoding, the HTTP/2 framing and the loopback socket of a call to
// oneself. Through loopback gRPC, that hop cost more CPU than the search it
// carried. It satisfies fleet.LocalNode.
//
// Messages pass by pointer: the caller must not change a request after
// handing it over, and the node keeps no reference to a request or an
// answer once the call returns. A panic in the node becomes INTERNAL for
// that call, as the gRPC server's interceptor would make it.
type Local struct {
	node *Node
}

// NewLocal returns the in-process service of n.
func NewLocal(n *Node) *Local { return &Local{node: n} }

// Nearby is MatcherService.Nearby in process.
func (l *Local) Nearby(ctx context.Context, req *matcherv1.NearbyRequest) (resp *matcherv1.NearbyResponse, err error) {
	defer l.recover("Nearby", &err)
	return l.node.nearbyWire(ctx, req)
}

// Applier returns the apply function of one in-process Apply stream: each
// call applies one batch and returns its answer, as one message of
// MatcherService.Apply; an error ends the stream, as it would over gRPC. It
// is not safe for concurrent use (one sender, like a stream).
func (l *Local) Applier() func(context.Context, *matcherv1.ApplyRequest) (*matcherv1.ApplyResponse, error) {
	s := &ApplyScratch{}
	return func(ctx context.Context, req *matcherv1.ApplyRequest) (resp *matcherv1.ApplyResponse, err error) {
		defer l.recover("Apply", &err)
		return l.node.applyWire(ctx, req, s)
	}
}

// recover turns a panic of the named call into INTERNAL in *err, with the
// stack in the log: the caller's goroutine survives it.
func (l *Local) recover(method string, err *error) {
	if p := recover(); p != nil {
		l.node.log.Error("panic in in-process call", "method", method, "panic", p, "stack", string(debug.Stack()))
		*err = status.Errorf(codes.Internal, "internal error in matcher %s: %s", l.node.cfg.NodeID, method)
	}
}

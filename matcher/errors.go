package matcher

import (
	"errors"
	"fmt"

	"github.com/uber/h3-go/v4"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	matcherv1 "github.com/geomatch/geomatch/proto/geomatch/matcher/v1"
)

// NotOwnerError is the typed refusal of a node that does not own some shards
// at the caller's epoch. Over gRPC it travels as ABORTED with a NotOwner
// detail; callers refresh their ring and retry.
type NotOwnerError struct {
	NodeID string
	// Epoch is the node's own ring epoch.
	Epoch uint64
	// Shards are the shards the node refused (all of the request's shards
	// when the node is behind the caller's epoch).
	Shards []h3.Cell
}

// Error implements error.
func (e *NotOwnerError) Error() string {
	return fmt.Sprintf("node %s does not own %d shard(s) at its epoch %d", e.NodeID, len(e.Shards), e.Epoch)
}

// GRPCStatus lets the gRPC server send the error as ABORTED with a NotOwner
// detail.
func (e *NotOwnerError) GRPCStatus() *status.Status {
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

// AsNotOwner extracts a NotOwnerError from an error returned by a matcher
// call, whether it is the typed error itself or its gRPC status.
func AsNotOwner(err error) (*NotOwnerError, bool) {
	var typed *NotOwnerError
	if errors.As(err, &typed) {
		return typed, true
	}
	st, ok := status.FromError(err)
	if !ok || st.Code() != codes.Aborted {
		return nil, false
	}
	for _, d := range st.Details() {
		if no, ok := d.(*matcherv1.NotOwner); ok {
			e := &NotOwnerError{NodeID: no.GetNodeId(), Epoch: no.GetEpoch(), Shards: make([]h3.Cell, len(no.GetShards()))}
			for i, c := range no.GetShards() {
				e.Shards[i] = h3.Cell(c)
			}
			return e, true
		}
	}
	return nil, false
}

package fleet

import (
	"errors"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	matcherv1 "github.com/geomatch/geomatch/proto/geomatch/matcher/v1"
	"github.com/geomatch/geomatch/shardmap"
)

// AsNotOwner extracts a NotOwner refusal from an error returned by a
// matcher call, whether it is the typed error itself (a matcher in this
// process) or its gRPC form (ABORTED with a NotOwner detail).
func AsNotOwner(err error) (*shardmap.NotOwnerError, bool) {
	if err == nil {
		return nil, false
	}
	var typed *shardmap.NotOwnerError
	if errors.As(err, &typed) {
		return typed, true
	}
	st, ok := status.FromError(err)
	if !ok || st.Code() != codes.Aborted {
		return nil, false
	}
	for _, d := range st.Details() {
		if no, ok := d.(*matcherv1.NotOwner); ok {
			e := &shardmap.NotOwnerError{NodeID: no.GetNodeId(), Epoch: no.GetEpoch(), Shards: make([]shardmap.Cell, len(no.GetShards()))}
			for i, c := range no.GetShards() {
				e.Shards[i] = shardmap.Cell(c)
			}
			return e, true
		}
	}
	return nil, false
}

package client

import (
	"context"
	"fmt"

	"google.golang.org/grpc"

	geomatchv1 "github.com/geomatch/geomatch/proto/geomatch/v1"
)

// MaxBatch is the most updates one UpdateLocations call may carry.
const MaxBatch = 10000

// UpdateLocations applies location updates of any number of drivers,
// split into calls of at most MaxBatch updates, sent one after the other.
// Each call retries like Nearby (a repeated update is a harmless
// duplicate). The answer adds up the calls: Accepted counts every applied
// update, and each Rejection's Index is the update's position in updates.
// On a failed call it returns what the earlier calls applied with the
// error; updates from that call on were not (or not known to be) applied.
func (c *Conn) UpdateLocations(ctx context.Context, updates []*geomatchv1.LocationUpdate, opts ...grpc.CallOption) (*geomatchv1.UpdateLocationsResponse, error) {
	out := &geomatchv1.UpdateLocationsResponse{}
	for start := 0; start < len(updates); start += MaxBatch {
		end := min(start+MaxBatch, len(updates))
		req := &geomatchv1.UpdateLocationsRequest{Updates: updates[start:end]}
		resp, err := retry(ctx, c.cfg.retry, func(ctx context.Context) (*geomatchv1.UpdateLocationsResponse, error) {
			return c.drivers.UpdateLocations(ctx, req, opts...)
		})
		if err != nil {
			return out, fmt.Errorf("update locations %d..%d of %d: %w", start, end-1, len(updates), err)
		}
		out.Accepted += resp.GetAccepted()
		for _, rj := range resp.GetRejected() {
			rj.Index += int32(start)
			out.Rejected = append(out.Rejected, rj)
		}
	}
	return out, nil
}

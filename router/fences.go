package router

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"github.com/geomatch/geomatch/internal/validate"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	"github.com/geomatch/geomatch/fence/fencev1"
	geomatchv1 "github.com/geomatch/geomatch/proto/geomatch/v1"
	"github.com/geomatch/geomatch/store"
)

// Bounds of the fence API.
const (
	// DefaultFencePage and MaxFencePage bound ListFences pages.
	DefaultFencePage = 100
	MaxFencePage     = 1000
	// MaxCountedFences bounds the fences of one GetFenceCounts call, listed
	// or of the set.
	MaxCountedFences = 1000
)

// fenceService is the public FenceService: definitions go to the durable
// store, and every matcher confirms it applied a change before the call
// returns (fleet.Client.SyncFences).
type fenceService struct {
	geomatchv1.UnimplementedFenceServiceServer
	r *Router
}

func (s *fenceService) store() (store.Fences, error) {
	if s.r.cfg.Fences == nil {
		return nil, status.Error(codes.FailedPrecondition, "fences need a durable store: this router runs without one")
	}
	return s.r.cfg.Fences, nil
}

// admitFenceWrite waits for one of the router's slots for validating a
// fence definition: parsing and checking a polygon of a few hundred
// vertices costs a few hundred microseconds of CPU, and unbounded those
// would starve location updates.
func (s *fenceService) admitFenceWrite(ctx context.Context) (func(), error) {
	select {
	case s.r.fenceWrites <- struct{}{}:
		return func() { <-s.r.fenceWrites }, nil
	case <-ctx.Done():
		return nil, status.Errorf(codes.ResourceExhausted, "fence writes: %d being validated on this router, its bound; retry later (%v)", cap(s.r.fenceWrites), ctx.Err())
	}
}

// PutFence validates the fence, stores it (with its shape in binary form,
// so that matchers do not parse the GeoJSON again) and returns once every
// matcher has applied it. Concurrent puts share their confirmation rounds
// (fleet.Client.SyncFences).
func (s *fenceService) PutFence(ctx context.Context, req *geomatchv1.PutFenceRequest) (_ *geomatchv1.Fence, err error) {
	defer func() { s.r.audit(ctx, AuditFencePut, req.GetFence().GetFenceId(), err) }()
	st, err := s.store()
	if err != nil {
		return nil, err
	}
	pb, data, err := s.encodeFence(ctx, req.GetFence())
	if err != nil {
		return nil, err
	}
	rec, err := st.PutFence(ctx, store.FenceRecord{ID: pb.GetFenceId(), Set: pb.GetSet(), Data: data})
	switch {
	case errors.Is(err, store.ErrFenceLimit):
		return nil, status.Errorf(codes.ResourceExhausted, "fence.fence_id: the store holds its bound of %d fences", store.DefaultMaxFences)
	case err != nil:
		return nil, status.Errorf(codes.Unavailable, "store fence %s: %v", pb.GetFenceId(), err)
	}
	if err := s.r.fleet.SyncFences(ctx, rec.Rev); err != nil {
		return nil, status.Error(codes.Unavailable, err.Error())
	}
	return pb, nil
}

// encodeFence validates a fence definition in one of the router's
// validation slots and returns the message as stored and answered, and its
// stored form.
func (s *fenceService) encodeFence(ctx context.Context, in *geomatchv1.Fence) (*geomatchv1.Fence, []byte, error) {
	release, err := s.admitFenceWrite(ctx)
	if err != nil {
		return nil, nil, err
	}
	defer release()
	f, err := fencev1.Decode(in)
	if err != nil {
		return nil, nil, status.Error(codes.InvalidArgument, err.Error())
	}
	pb := proto.Clone(in).(*geomatchv1.Fence)
	pb.Set = f.Set
	pb.UpdatedAtMs = time.Now().UnixMilli()
	data, err := fencev1.EncodeStored(pb, f)
	if err != nil {
		return nil, nil, status.Errorf(codes.Internal, "%v", err)
	}
	return pb, data, nil
}

func (s *fenceService) GetFence(ctx context.Context, req *geomatchv1.GetFenceRequest) (*geomatchv1.Fence, error) {
	st, err := s.store()
	if err != nil {
		return nil, err
	}
	if err := validate.Name(req.GetFenceId()); err != nil {
		return nil, status.Errorf(codes.InvalidArgument, "fence_id: %v", err)
	}
	rec, err := st.Fence(ctx, req.GetFenceId())
	if err != nil {
		return nil, fenceStoreError(req.GetFenceId(), err)
	}
	return decodeStored(rec)
}

func (s *fenceService) DeleteFence(ctx context.Context, req *geomatchv1.DeleteFenceRequest) (_ *geomatchv1.DeleteFenceResponse, err error) {
	defer func() { s.r.audit(ctx, AuditFenceDelete, req.GetFenceId(), err) }()
	st, err := s.store()
	if err != nil {
		return nil, err
	}
	if err := validate.Name(req.GetFenceId()); err != nil {
		return nil, status.Errorf(codes.InvalidArgument, "fence_id: %v", err)
	}
	rev, err := st.DeleteFence(ctx, req.GetFenceId())
	if err != nil {
		return nil, fenceStoreError(req.GetFenceId(), err)
	}
	if err := s.r.fleet.SyncFences(ctx, rev); err != nil {
		return nil, status.Error(codes.Unavailable, err.Error())
	}
	return &geomatchv1.DeleteFenceResponse{}, nil
}

func (s *fenceService) ListFences(ctx context.Context, req *geomatchv1.ListFencesRequest) (*geomatchv1.ListFencesResponse, error) {
	st, err := s.store()
	if err != nil {
		return nil, err
	}
	if req.GetSet() != "" {
		if err := validate.Name(req.GetSet()); err != nil {
			return nil, status.Errorf(codes.InvalidArgument, "set: %v", err)
		}
	}
	size := int(req.GetPageSize())
	switch {
	case size < 0 || size > MaxFencePage:
		return nil, status.Errorf(codes.InvalidArgument, "page_size: must be within [0, %d], got %d", MaxFencePage, size)
	case size == 0:
		size = DefaultFencePage
	}
	after, err := parsePageToken(req.GetPageToken())
	if err != nil {
		return nil, status.Errorf(codes.InvalidArgument, "page_token: %v", err)
	}
	recs, err := st.ListFences(ctx, req.GetSet(), after, size+1)
	if err != nil {
		return nil, status.Errorf(codes.Unavailable, "list fences: %v", err)
	}
	resp := &geomatchv1.ListFencesResponse{}
	if len(recs) > size {
		recs = recs[:size]
		resp.NextPageToken = base64.RawURLEncoding.EncodeToString([]byte(recs[size-1].ID))
	}
	for _, rec := range recs {
		pb, err := decodeStored(rec)
		if err != nil {
			return nil, err
		}
		resp.Fences = append(resp.Fences, pb)
	}
	return resp, nil
}

func (s *fenceService) GetFenceCounts(ctx context.Context, req *geomatchv1.GetFenceCountsRequest) (*geomatchv1.GetFenceCountsResponse, error) {
	st, err := s.store()
	if err != nil {
		return nil, err
	}
	ids := req.GetFenceIds()
	switch {
	case len(ids) > MaxCountedFences:
		return nil, status.Errorf(codes.InvalidArgument, "fence_ids: at most %d, got %d", MaxCountedFences, len(ids))
	case len(ids) == 0 && req.GetSet() == "":
		return nil, status.Error(codes.InvalidArgument, "set: required when fence_ids is empty")
	}
	for i, id := range ids {
		if err := validate.Name(id); err != nil {
			return nil, status.Errorf(codes.InvalidArgument, "fence_ids[%d]: %v", i, err)
		}
	}
	if len(ids) == 0 {
		if err := validate.Name(req.GetSet()); err != nil {
			return nil, status.Errorf(codes.InvalidArgument, "set: %v", err)
		}
		recs, err := st.ListFences(ctx, req.GetSet(), "", MaxCountedFences+1)
		if err != nil {
			return nil, status.Errorf(codes.Unavailable, "list fences of set %s: %v", req.GetSet(), err)
		}
		if len(recs) > MaxCountedFences {
			return nil, status.Errorf(codes.InvalidArgument, "set: %s has more than %d fences; list fence_ids (pages of ListFences)", req.GetSet(), MaxCountedFences)
		}
		for _, rec := range recs {
			ids = append(ids, rec.ID)
		}
	}
	counts, err := s.r.fleet.FenceCounts(ctx, ids)
	if err != nil {
		return nil, status.Error(codes.Unavailable, err.Error())
	}
	resp := &geomatchv1.GetFenceCountsResponse{}
	for _, id := range ids {
		c, ok := counts[id]
		if !ok {
			if _, err := st.Fence(ctx, id); errors.Is(err, store.ErrNotFound) {
				return nil, status.Errorf(codes.NotFound, "fence_ids: no fence %q", id)
			}
			c = &geomatchv1.FenceCount{FenceId: id} // known, and no driver inside
		}
		resp.Counts = append(resp.Counts, c)
	}
	return resp, nil
}

// decodeStored returns a stored fence's message.
func decodeStored(rec store.FenceRecord) (*geomatchv1.Fence, error) {
	pb, _, err := fencev1.DecodeStored(rec.Data)
	if err != nil {
		return nil, status.Errorf(codes.DataLoss, "fence %s: %v", rec.ID, err)
	}
	return pb, nil
}

func fenceStoreError(id string, err error) error {
	if errors.Is(err, store.ErrNotFound) {
		return status.Errorf(codes.NotFound, "fence_id: no fence %q", id)
	}
	return status.Errorf(codes.Unavailable, "fence %s: %v", id, err)
}

// parsePageToken returns the last id of the previous page.
func parsePageToken(tok string) (string, error) {
	if tok == "" {
		return "", nil
	}
	b, err := base64.RawURLEncoding.DecodeString(tok)
	if err != nil {
		return "", fmt.Errorf("not a token from ListFences: %v", err)
	}
	if err := validate.Name(string(b)); err != nil {
		return "", fmt.Errorf("not a token from ListFences: %v", err)
	}
	return string(b), nil
}

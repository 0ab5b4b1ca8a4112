package router

import (
	"context"
	"errors"
	"fmt"
	"github.com/geomatch/geomatch/internal/validate"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/protowire"

	"github.com/geomatch/geomatch/events"
	"github.com/geomatch/geomatch/internal/serve"
	geomatchv1 "github.com/geomatch/geomatch/proto/geomatch/v1"
)

// Bounds of a subscription's filter.
const (
	MaxFilterSets     = 100
	MaxFilterFenceIDs = 1000
	// subscribeBatch bounds the events a subscription holds in memory: a
	// slow subscriber falls behind on the durable log instead.
	subscribeBatch = 256
)

// Hooks is the hook registry the EventService's hook methods use (package
// events/hook's Manager).
type Hooks interface {
	Put(ctx context.Context, h *geomatchv1.Hook) (*geomatchv1.Hook, error)
	Delete(ctx context.Context, id string) error
	List(ctx context.Context) ([]*geomatchv1.Hook, error)
}

// eventService is the public EventService: subscriptions read the durable
// event log directly; hooks are the Hooks registry's.
type eventService struct {
	geomatchv1.UnimplementedEventServiceServer
	r *Router
}

// FilterOf validates the filter fields shared by SubscribeRequest and Hook
// and returns the log filter; errors name the field.
func FilterOf(sets, fenceIDs []string, kinds []geomatchv1.EventKind) (events.Filter, error) {
	var f events.Filter
	if len(sets) > MaxFilterSets {
		return f, fmt.Errorf("sets: at most %d, got %d", MaxFilterSets, len(sets))
	}
	if len(fenceIDs) > MaxFilterFenceIDs {
		return f, fmt.Errorf("fence_ids: at most %d, got %d", MaxFilterFenceIDs, len(fenceIDs))
	}
	for i, s := range sets {
		if err := validate.Name(s); err != nil {
			return f, fmt.Errorf("sets[%d]: %v", i, err)
		}
	}
	for i, id := range fenceIDs {
		if err := validate.Name(id); err != nil {
			return f, fmt.Errorf("fence_ids[%d]: %v", i, err)
		}
	}
	for i, k := range kinds {
		if _, ok := geomatchv1.EventKind_name[int32(k)]; !ok {
			return f, fmt.Errorf("kinds[%d]: unknown value %d", i, k)
		}
		f.Kinds = append(f.Kinds, events.Kind(k))
	}
	f.Sets, f.FenceIDs = sets, fenceIDs
	return f, nil
}

func (s *eventService) log() (events.Log, error) {
	if s.r.cfg.Events == nil {
		return nil, status.Error(codes.FailedPrecondition, "events need an event log: this router runs without one")
	}
	return s.r.cfg.Events, nil
}

func (s *eventService) Subscribe(req *geomatchv1.SubscribeRequest, stream geomatchv1.EventService_SubscribeServer) error {
	lg, err := s.log()
	if err != nil {
		return err
	}
	if n := s.r.subscriptions.Add(1); n > int64(s.r.cfg.MaxSubscriptions) {
		s.r.subscriptions.Add(-1)
		return status.Errorf(codes.ResourceExhausted, "this router serves %d subscriptions, its limit; use a hook or another router", s.r.cfg.MaxSubscriptions)
	}
	defer s.r.subscriptions.Add(-1)
	filter, err := FilterOf(req.GetSets(), req.GetFenceIds(), req.GetKinds())
	if err != nil {
		return status.Error(codes.InvalidArgument, err.Error())
	}
	ctx := stream.Context()
	var start events.Cursor
	switch {
	case req.GetAfterCursor() != "":
		if start, err = events.ParseCursor(req.GetAfterCursor(), lg.Partitions()); err != nil {
			return status.Errorf(codes.InvalidArgument, "after_cursor: %v", err)
		}
	case req.GetFromOldest():
		if start, err = lg.Oldest(ctx); err != nil {
			return status.Errorf(codes.Unavailable, "event log: %v", err)
		}
	default:
		if start, err = lg.Head(ctx); err != nil {
			return status.Errorf(codes.Unavailable, "event log: %v", err)
		}
	}
	err = events.Follow(ctx, lg, start, filter, subscribeBatch, func(batch []events.Entry) error {
		for i := range batch {
			// The stored payload is the event without its cursor; the
			// cursor field appended to it makes the event sent, with no
			// decoding and encoding again (a relay of every event to every
			// subscriber). The payload's framing is checked first.
			// A fresh buffer each time: the transport writes it after
			// SendMsg returned.
			msg, err := withCursor(batch[i].Payload, batch[i].Cursor.String())
			if err != nil {
				return status.Errorf(codes.DataLoss, "event %s does not decode: %v", batch[i].ID, err)
			}
			if err := stream.SendMsg(serve.Encoded(msg)); err != nil {
				return err
			}
		}
		return nil
	})
	var trimmed *events.TrimmedError
	switch {
	case ctx.Err() != nil: // the subscriber left (Follow ends only with an error)
		return nil
	case errors.As(err, &trimmed):
		return status.Errorf(codes.OutOfRange, "after_cursor: older than the event log's retention; the oldest cursor still available is %s", trimmed.Oldest)
	case errors.Is(err, events.ErrCursorAhead):
		return status.Errorf(codes.OutOfRange, "after_cursor: %v", err)
	}
	if _, ok := status.FromError(err); ok {
		return err
	}
	return status.Errorf(codes.Unavailable, "event log: %v", err)
}

func (s *eventService) hooks() (Hooks, error) {
	if s.r.cfg.Hooks == nil {
		return nil, status.Error(codes.FailedPrecondition, "hooks need an event log: this router runs without one")
	}
	return s.r.cfg.Hooks, nil
}

func (s *eventService) PutHook(ctx context.Context, h *geomatchv1.Hook) (_ *geomatchv1.Hook, err error) {
	defer func() { s.r.audit(ctx, AuditHookPut, h.GetHookId(), err) }()
	hs, err := s.hooks()
	if err != nil {
		return nil, err
	}
	out, err := hs.Put(ctx, h) // the registry validates the hook, filters included
	return out, hookError(err)
}

func (s *eventService) DeleteHook(ctx context.Context, req *geomatchv1.DeleteHookRequest) (_ *geomatchv1.DeleteHookResponse, err error) {
	defer func() { s.r.audit(ctx, AuditHookDelete, req.GetHookId(), err) }()
	hs, err := s.hooks()
	if err != nil {
		return nil, err
	}
	if err := validate.Name(req.GetHookId()); err != nil {
		return nil, status.Errorf(codes.InvalidArgument, "hook_id: %v", err)
	}
	if err := hs.Delete(ctx, req.GetHookId()); err != nil {
		return nil, hookError(err)
	}
	return &geomatchv1.DeleteHookResponse{}, nil
}

func (s *eventService) ListHooks(ctx context.Context, _ *geomatchv1.ListHooksRequest) (*geomatchv1.ListHooksResponse, error) {
	hs, err := s.hooks()
	if err != nil {
		return nil, err
	}
	list, err := hs.List(ctx)
	if err != nil {
		return nil, hookError(err)
	}
	return &geomatchv1.ListHooksResponse{Hooks: list}, nil
}

// hookError maps a hook registry error to a status: errors that already
// are statuses pass, validation errors (wrapping ErrInvalidHook) are
// INVALID_ARGUMENT, missing hooks NOT_FOUND, the rest UNAVAILABLE.
func hookError(err error) error {
	if err == nil {
		return nil
	}
	if _, ok := status.FromError(err); ok {
		return err
	}
	switch {
	case errors.Is(err, ErrInvalidHook):
		return status.Error(codes.InvalidArgument, err.Error())
	case errors.Is(err, ErrNoHook):
		return status.Error(codes.NotFound, err.Error())
	}
	return status.Error(codes.Unavailable, err.Error())
}

// Errors a Hooks registry wraps so the service maps them to a code.
var (
	ErrInvalidHook = errors.New("invalid hook")
	ErrNoHook      = errors.New("no such hook")
)

// eventCursorField is the field number of geomatchv1.Event's cursor.
var eventCursorField = (&geomatchv1.Event{}).ProtoReflect().Descriptor().Fields().ByName("cursor").Number()

// withCursor returns the stored event payload (an encoded
// geomatchv1.Event without its cursor) followed by the cursor field: the
// encoding of the event with its cursor set. It checks the payload's
// framing (every field's tag and length), not its fields' contents.
func withCursor(payload []byte, cursor string) ([]byte, error) {
	for rest := payload; len(rest) > 0; {
		num, typ, n := protowire.ConsumeTag(rest)
		if n < 0 {
			return nil, protowire.ParseError(n)
		}
		if num == eventCursorField {
			return nil, errors.New("the stored event carries a cursor")
		}
		m := protowire.ConsumeFieldValue(num, typ, rest[n:])
		if m < 0 {
			return nil, protowire.ParseError(m)
		}
		rest = rest[n+m:]
	}
	dst := make([]byte, 0, len(payload)+len(cursor)+protowire.SizeTag(eventCursorField)+protowire.SizeVarint(uint64(len(cursor))))
	dst = append(dst, payload...)
	dst = protowire.AppendTag(dst, eventCursorField, protowire.BytesType)
	return protowire.AppendString(dst, cursor), nil
}

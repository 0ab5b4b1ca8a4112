package router

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/geomatch/geomatch/internal/validate"
	"github.com/geomatch/geomatch/membership"
	geomatchv1 "github.com/geomatch/geomatch/proto/geomatch/v1"
	"github.com/geomatch/geomatch/shardmap"
)

// RingAdmin is the cluster's ring settings store, as the admin service
// changes it: membership.Local in `geomatch dev`, membership.Consul in a
// Consul cluster.
type RingAdmin interface {
	// ChangeSettings applies change to the ring settings, checked against
	// the current ring, and returns once the ring that includes it is
	// published (and, for the router's own membership source, current):
	// the ring it was checked against and that ring. A refused change
	// (*membership.ChangeError) changes nothing.
	ChangeSettings(ctx context.Context, change membership.Change) (before, after *shardmap.Map, err error)
}

// Both memberships that can change are settings stores.
var (
	_ RingAdmin = (*membership.Local)(nil)
	_ RingAdmin = (*membership.Consul)(nil)
)

// affected lists the shards a change touched, given the rings before and
// after it.
type affected func(before, after *shardmap.Map) []shardmap.Cell

// only is the affected shards of a change of given cells.
func only(cells ...shardmap.Cell) affected {
	return func(_, _ *shardmap.Map) []shardmap.Cell { return cells }
}

// changeRing applies ch through Config.RingAdmin and describes the
// outcome. what describes the change ("move 872a1072bffffff to m2").
func (s *adminService) changeRing(ctx context.Context, what string, ch membership.Change, touched affected) (*geomatchv1.RingChange, error) {
	ra := s.r.cfg.RingAdmin
	if ra == nil {
		return nil, s.noRingAdmin(what)
	}
	before, after, err := ra.ChangeSettings(ctx, ch)
	if err != nil {
		return nil, ringChangeStatus(what, err)
	}
	if m, _ := s.r.src.Current(); m.Epoch() < after.Epoch() {
		// The store is not the router's source (tests wrap it): catch up,
		// so the caller's next call sees the change.
		if err := s.r.src.Refresh(ctx); err != nil {
			s.r.log.Warn("refresh after a ring change", "err", err)
		}
	}
	s.r.log.Info("ring changed by an admin call", "change", what, "epoch_before", before.Epoch(), "epoch", after.Epoch(), "caller", callerFrom(ctx).key)
	return RingChangeOf(what, before, after, touched(before, after)), nil
}

// RingChangeOf is the admin API's account of a ring change described by
// what, made from the ring before to the ring after, with the owners of
// the touched shards.
func RingChangeOf(what string, before, after *shardmap.Map, touched []shardmap.Cell) *geomatchv1.RingChange {
	out := &geomatchv1.RingChange{EpochBefore: before.Epoch(), Epoch: after.Epoch(), Description: what}
	for _, c := range touched {
		out.Shards = append(out.Shards, shardOwner(before, after, c))
	}
	return out
}

// noRingAdmin is the FAILED_PRECONDITION of a change asked of a router
// without Config.RingAdmin.
func (s *adminService) noRingAdmin(what string) error {
	if s.r.src.Kind() == "static" {
		return status.Errorf(codes.FailedPrecondition, "%s: %v", what, membership.ErrFixedRing)
	}
	return status.Errorf(codes.FailedPrecondition, "%s: this router has no ring settings store (%s membership): it cannot change the ring", what, s.r.src.Kind())
}

// shardOwner is shard c's owner after a change, and before it.
func shardOwner(before, after *shardmap.Map, c shardmap.Cell) *geomatchv1.ShardOwner {
	so := &geomatchv1.ShardOwner{Cell: c.String(), Resolution: int32(shardmap.Resolution(c))}
	if o, ok := after.Owner(c); ok {
		so.Owner = o.ID
	}
	if o, ok := before.Owner(c); ok {
		so.OwnerBefore = o.ID
	}
	return so
}

// ringChangeStatus maps the errors of a ring change to gRPC codes: the one
// place where they are. A *membership.ChangeError keeps its message, which
// starts with the field at fault.
func ringChangeStatus(what string, err error) error {
	var ce *membership.ChangeError
	if errors.As(err, &ce) {
		code := codes.FailedPrecondition
		if errors.Is(err, membership.ErrInvalid) {
			code = codes.InvalidArgument
		}
		return status.Error(code, ce.Error())
	}
	code := codes.Internal
	switch {
	case errors.Is(err, membership.ErrFixedRing):
		code = codes.FailedPrecondition
	case errors.Is(err, membership.ErrConflict):
		code = codes.Aborted
	case errors.Is(err, membership.ErrUnavailable), errors.Is(err, membership.ErrNotApplied):
		code = codes.Unavailable
	case errors.Is(err, context.DeadlineExceeded):
		code = codes.DeadlineExceeded
	case errors.Is(err, context.Canceled):
		code = codes.Canceled
	}
	return status.Errorf(code, "%s: %v", what, err)
}

// parseCell parses a request's cell as an InvalidArgument naming the field.
func parseCell(s string) (shardmap.Cell, error) {
	c, err := membership.ParseCell(s)
	if err != nil {
		return 0, status.Error(codes.InvalidArgument, err.Error())
	}
	return c, nil
}

// checkNodeID checks a request's node id.
func checkNodeID(id string) error {
	if err := validate.ID("node_id", id); err != nil {
		return status.Error(codes.InvalidArgument, err.Error())
	}
	return nil
}

// MoveShard implements AdminServiceServer.
func (s *adminService) MoveShard(ctx context.Context, req *geomatchv1.MoveShardRequest) (_ *geomatchv1.RingChange, err error) {
	defer func() { s.r.audit(ctx, AuditShardMove, req.GetCell()+" to "+req.GetNodeId(), err) }()
	cell, err := parseCell(req.GetCell())
	if err != nil {
		return nil, err
	}
	if err := checkNodeID(req.GetNodeId()); err != nil {
		return nil, err
	}
	return s.changeRing(ctx, fmt.Sprintf("move %s to %s", cell, req.GetNodeId()), membership.Move(cell, req.GetNodeId()), only(cell))
}

// Unpin implements AdminServiceServer.
func (s *adminService) Unpin(ctx context.Context, req *geomatchv1.UnpinRequest) (_ *geomatchv1.RingChange, err error) {
	defer func() { s.r.audit(ctx, AuditShardUnpin, req.GetCell(), err) }()
	cell, err := parseCell(req.GetCell())
	if err != nil {
		return nil, err
	}
	return s.changeRing(ctx, "unpin "+cell.String(), membership.Unpin(cell), only(cell))
}

// SplitShard implements AdminServiceServer.
func (s *adminService) SplitShard(ctx context.Context, req *geomatchv1.SplitShardRequest) (_ *geomatchv1.RingChange, err error) {
	defer func() { s.r.audit(ctx, AuditShardSplit, req.GetCell(), err) }()
	cell, err := parseCell(req.GetCell())
	if err != nil {
		return nil, err
	}
	return s.changeRing(ctx, "split "+cell.String(), membership.Split(cell), only(cell.ImmediateChildren()...))
}

// MergeShard implements AdminServiceServer.
func (s *adminService) MergeShard(ctx context.Context, req *geomatchv1.MergeShardRequest) (_ *geomatchv1.RingChange, err error) {
	defer func() { s.r.audit(ctx, AuditShardMerge, req.GetCell(), err) }()
	cell, err := parseCell(req.GetCell())
	if err != nil {
		return nil, err
	}
	return s.changeRing(ctx, "merge "+cell.String(), membership.Merge(cell), only(cell))
}

// DrainNode implements AdminServiceServer.
func (s *adminService) DrainNode(ctx context.Context, req *geomatchv1.DrainNodeRequest) (_ *geomatchv1.RingChange, err error) {
	defer func() { s.r.audit(ctx, AuditNodeDrain, req.GetNodeId(), err) }()
	if err := checkNodeID(req.GetNodeId()); err != nil {
		return nil, err
	}
	return s.changeRing(ctx, "drain "+req.GetNodeId(), membership.Drain(req.GetNodeId()), s.movedActive(ctx))
}

// UndrainNode implements AdminServiceServer.
func (s *adminService) UndrainNode(ctx context.Context, req *geomatchv1.UndrainNodeRequest) (_ *geomatchv1.RingChange, err error) {
	defer func() { s.r.audit(ctx, AuditNodeUndrain, req.GetNodeId(), err) }()
	if err := checkNodeID(req.GetNodeId()); err != nil {
		return nil, err
	}
	return s.changeRing(ctx, "undrain "+req.GetNodeId(), membership.Undrain(req.GetNodeId()), s.movedActive(ctx))
}

// movedActive lists the shards holding drivers whose owner a change moved
// (a drain or undrain touches the whole ring; these are the ones that
// matter). It asks the matchers for their shards now, before the change,
// while they hold them under the ring it is made on.
func (s *adminService) movedActive(ctx context.Context) affected {
	if s.r.cfg.RingAdmin == nil {
		return only() // refused anyway
	}
	m, _ := s.r.src.Current()
	var active []shardmap.Cell
	for _, ns := range s.r.probe(ctx, m) {
		for _, sh := range ns.Stats.GetShards() {
			if sh.GetDrivers() > 0 {
				active = append(active, shardmap.Cell(sh.GetCell()))
			}
		}
	}
	slices.SortFunc(active, cmp.Compare)
	active = slices.Compact(active)
	return func(before, after *shardmap.Map) []shardmap.Cell {
		var out []shardmap.Cell
		for _, c := range active {
			b, okb := before.Owner(c)
			a, oka := after.Owner(c)
			if okb && oka && a.ID != b.ID {
				out = append(out, c)
			}
		}
		return out
	}
}

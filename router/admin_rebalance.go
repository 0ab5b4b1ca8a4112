package router

import (
	"context"
	"fmt"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/geomatch/geomatch/membership"
	geomatchv1 "github.com/geomatch/geomatch/proto/geomatch/v1"
	"github.com/geomatch/geomatch/shardmap"
)

// Bounds of a rebalance request.
const (
	// DefaultRebalanceMoves is the most shards a plan moves when the
	// request does not say.
	DefaultRebalanceMoves = 100
	// MaxRebalanceMoves bounds max_moves: a plan pins every shard it
	// moves, and pins are part of every ring document.
	MaxRebalanceMoves = 10000
	// MaxRebalanceTarget bounds target, as the ring writer's balance.
	MaxRebalanceTarget = 10
)

// Rebalance implements AdminServiceServer: it plans from the drivers per
// shard the matchers report (as ListShards) and, with apply, pins the
// moved shards to their new nodes.
func (s *adminService) Rebalance(ctx context.Context, req *geomatchv1.RebalanceRequest) (_ *geomatchv1.RebalancePlan, err error) {
	defer func() { s.r.audit(ctx, AuditRingRebalance, rebalanceTarget(req), err) }()
	target := req.GetTarget()
	if target == 0 {
		target = shardmap.DefaultBalance
	}
	if !(target >= 1 && target <= MaxRebalanceTarget) { // NaN too
		return nil, status.Errorf(codes.InvalidArgument, "target: %v must be within [1, %d] (0: %v)", req.GetTarget(), MaxRebalanceTarget, shardmap.DefaultBalance)
	}
	maxMoves := int(req.GetMaxMoves())
	if maxMoves == 0 {
		maxMoves = DefaultRebalanceMoves
	}
	if maxMoves < 0 || maxMoves > MaxRebalanceMoves {
		return nil, status.Errorf(codes.InvalidArgument, "max_moves: %d must be within [0, %d] (0: %d)", req.GetMaxMoves(), MaxRebalanceMoves, DefaultRebalanceMoves)
	}
	if req.GetApply() && s.r.cfg.RingAdmin == nil {
		return nil, s.noRingAdmin("rebalance")
	}
	m, _ := s.r.src.Current()
	var loads []shardmap.ShardLoad
	for _, ns := range s.r.probe(ctx, m) {
		for _, sh := range ns.Stats.GetShards() {
			loads = append(loads, shardmap.ShardLoad{Cell: shardmap.Cell(sh.GetCell()), Owner: ns.Member.ID, Drivers: sh.GetDrivers()})
		}
	}
	plan := shardmap.PlanRebalance(loads, m.ActiveIDs(), target, maxMoves)
	out := RebalancePlanOf(plan, m.Epoch())
	cells := make([]shardmap.Cell, len(plan.Moves))
	for i, mv := range plan.Moves {
		cells[i] = mv.Cell
	}
	if !req.GetApply() || len(plan.Moves) == 0 {
		return out, nil
	}
	ch, err := s.changeRing(ctx, fmt.Sprintf("rebalance (%d moves)", len(plan.Moves)), membership.ApplyPins(plan.Moves), only(cells...))
	if err != nil {
		return nil, err
	}
	out.Applied, out.Epoch = true, ch.GetEpoch()
	return out, nil
}

// rebalanceTarget is a rebalance request's target in its audit record.
func rebalanceTarget(req *geomatchv1.RebalanceRequest) string {
	if req.GetApply() {
		return "ring (apply)"
	}
	return "ring (dry run)"
}

// RebalancePlanOf is the admin API's form of plan, made on the ring at
// epoch (not applied).
func RebalancePlanOf(plan shardmap.RebalancePlan, epoch uint64) *geomatchv1.RebalancePlan {
	out := &geomatchv1.RebalancePlan{
		MaxOverAvgBefore: plan.MaxOverAvgBefore(), MaxOverAvgAfter: plan.MaxOverAvgAfter(),
		DriversMovedFraction: plan.MovedFraction(), DriversTotal: plan.Total, Epoch: epoch, EpochBefore: epoch,
	}
	for _, mv := range plan.Moves {
		out.Moves = append(out.Moves, &geomatchv1.PlannedMove{Cell: mv.Cell.String(), Drivers: mv.Drivers, From: mv.From, To: mv.To})
	}
	return out
}

package router

import (
	"context"
	"log/slog"

	grpcpeer "google.golang.org/grpc/peer"
	"google.golang.org/grpc/status"

	"github.com/geomatch/geomatch/internal/tracing"
)

// Audit records. Every admin action (a ring change, a fence or hook
// written or deleted, a token minted) is logged as one structured record
// (slog) with the attribute logger=audit, whatever its outcome, at level
// INFO:
//
//	time=… level=INFO msg="admin action" logger=audit action=shard.move caller="admin alice"
//	  caller_subject=alice caller_role=admin peer=10.0.0.7:51234 target="872a1072bffffff to m2"
//	  outcome=ok trace_id=4bf92f3577b34da6a3ce929d0e0e4736
//
// caller is who the router's interceptors say made the call: the token's
// role and subject, or "peer ADDR" when authentication is off; peer is the
// connection's address either way. outcome is "ok" or the gRPC code of the
// refusal ("InvalidArgument", "FailedPrecondition"), with error its
// message. trace_id is there when the call was traced (internal/tracing).
// Calls the interceptors refuse (no token, not an admin) never reach a
// handler and are not audited here; they are counted and answered
// UNAUTHENTICATED or PERMISSION_DENIED.

// AuditLogger is the value of the logger attribute of audit records.
const AuditLogger = "audit"

// Audited actions.
const (
	AuditShardMove     = "shard.move"
	AuditShardUnpin    = "shard.unpin"
	AuditShardSplit    = "shard.split"
	AuditShardMerge    = "shard.merge"
	AuditNodeDrain     = "node.drain"
	AuditNodeUndrain   = "node.undrain"
	AuditRingRebalance = "ring.rebalance"
	AuditFencePut      = "fence.put"
	AuditFenceDelete   = "fence.delete"
	AuditHookPut       = "hook.put"
	AuditHookDelete    = "hook.delete"
	AuditTokenMint     = "token.mint"
)

// AuditRecord is one audited action.
type AuditRecord struct {
	// Action is what was done (AuditShardMove, ...).
	Action string
	// Caller identifies who did it: "admin alice", "peer 10.0.0.7:51234",
	// "local user bob".
	Caller string
	// Subject and Role are the caller's token's; "" without one.
	Subject, Role string
	// Peer is the address of the caller's connection; "" when local.
	Peer string
	// Target is what the action was done to: a cell, a node, a fence id.
	Target string
	// Err is the action's failure; nil when it succeeded.
	Err error
	// TraceID is the trace of the call; "" when not traced.
	TraceID string
}

// Outcome is "ok", or the gRPC code of the failure ("InvalidArgument").
func (rec AuditRecord) Outcome() string {
	if rec.Err == nil {
		return "ok"
	}
	return status.Code(rec.Err).String()
}

// LogAudit writes rec to log as an audit record.
func LogAudit(ctx context.Context, log *slog.Logger, rec AuditRecord) {
	attrs := make([]slog.Attr, 0, 10)
	attrs = append(attrs, slog.String("logger", AuditLogger), slog.String("action", rec.Action), slog.String("caller", rec.Caller))
	if rec.Subject != "" || rec.Role != "" {
		attrs = append(attrs, slog.String("caller_subject", rec.Subject), slog.String("caller_role", rec.Role))
	}
	if rec.Peer != "" {
		attrs = append(attrs, slog.String("peer", rec.Peer))
	}
	attrs = append(attrs, slog.String("target", rec.Target), slog.String("outcome", rec.Outcome()))
	if rec.Err != nil {
		msg := rec.Err.Error()
		if st, ok := status.FromError(rec.Err); ok {
			msg = st.Message()
		}
		attrs = append(attrs, slog.String("error", msg))
	}
	if rec.TraceID != "" {
		attrs = append(attrs, slog.String("trace_id", rec.TraceID))
	}
	log.LogAttrs(ctx, slog.LevelInfo, "admin action", attrs...)
}

// audit logs the outcome err of an admin call's action on target, with
// the caller the interceptors established on ctx.
func (r *Router) audit(ctx context.Context, action, target string, err error) {
	rec := AuditRecord{Action: action, Target: target, Err: err, TraceID: tracing.TraceID(ctx)}
	if p, ok := grpcpeer.FromContext(ctx); ok && p.Addr != nil {
		rec.Peer = p.Addr.String()
	}
	c := callerFrom(ctx)
	rec.Caller = c.key
	if c.authed {
		rec.Subject, rec.Role = c.claims.Subject, string(c.claims.Role)
	}
	if rec.Caller == "" { // authentication and limits off: nobody identified the caller
		rec.Caller = "peer " + rec.Peer
		if rec.Peer == "" {
			rec.Caller = "unknown"
		}
	}
	LogAudit(ctx, r.log, rec)
}

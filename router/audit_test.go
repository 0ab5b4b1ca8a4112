package router_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/geomatch/geomatch/auth"
	"github.com/geomatch/geomatch/cluster"
	"github.com/geomatch/geomatch/internal/geo"
	geomatchv1 "github.com/geomatch/geomatch/proto/geomatch/v1"
	"github.com/geomatch/geomatch/router"
)

// auditRecords returns the audit records logged so far, as JSON objects.
func auditRecords(t *testing.T, logs *syncBuffer) []map[string]any {
	t.Helper()
	var out []map[string]any
	for _, line := range strings.Split(logs.String(), "\n") {
		if line == "" {
			continue
		}
		var rec map[string]any
		if err := json.Unmarshal([]byte(line), &rec); err != nil {
			t.Fatalf("log line %q: %v", line, err)
		}
		if rec["logger"] == router.AuditLogger {
			out = append(out, rec)
		}
	}
	return out
}

// TestAuditEveryAdminAction: each admin action through the public API
// logs exactly one audit record naming the action, the caller's token
// subject and role, its peer, the target and the outcome (the gRPC code
// of a refusal); with authentication off the caller is its peer address.
func TestAuditEveryAdminAction(t *testing.T) {
	var logs syncBuffer
	c, keys := startAuthCluster(t, cluster.DevConfig{Matchers: 3, Log: slog.New(slog.NewJSONHandler(&logs, nil))})
	tok, err := keys.Issue("ops", auth.RoleAdmin, time.Hour, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	api := dialAPI(t, c.RouterAddr, grpc.WithPerRPCCredentials(auth.Bearer{Token: tok, Insecure: true}))
	fences := geomatchv1.NewFenceServiceClient(api.conn)
	hooks := geomatchv1.NewEventServiceClient(api.conn)
	m, _ := c.Membership.Current()
	_, shard, _, ok := m.Locate(geo.LatLng{Lat: 40.7580, Lng: -73.9855})
	if !ok {
		t.Fatal("no shard for Times Square")
	}
	cell := shard.String()

	for _, tc := range []struct {
		action, target string
		code           codes.Code
		call           func(ctx context.Context) error
	}{
		{router.AuditShardMove, cell + " to m2", codes.OK, func(ctx context.Context) error {
			_, err := api.admin.MoveShard(ctx, &geomatchv1.MoveShardRequest{Cell: cell, NodeId: "m2"})
			return err
		}},
		{router.AuditShardUnpin, cell, codes.OK, func(ctx context.Context) error {
			_, err := api.admin.Unpin(ctx, &geomatchv1.UnpinRequest{Cell: cell})
			return err
		}},
		{router.AuditShardSplit, cell, codes.OK, func(ctx context.Context) error {
			_, err := api.admin.SplitShard(ctx, &geomatchv1.SplitShardRequest{Cell: cell})
			return err
		}},
		{router.AuditShardMerge, cell, codes.OK, func(ctx context.Context) error {
			_, err := api.admin.MergeShard(ctx, &geomatchv1.MergeShardRequest{Cell: cell})
			return err
		}},
		{router.AuditShardMerge, cell, codes.FailedPrecondition, func(ctx context.Context) error {
			_, err := api.admin.MergeShard(ctx, &geomatchv1.MergeShardRequest{Cell: cell}) // never split (any more)
			return err
		}},
		{router.AuditNodeDrain, "m2", codes.OK, func(ctx context.Context) error {
			_, err := api.admin.DrainNode(ctx, &geomatchv1.DrainNodeRequest{NodeId: "m2"})
			return err
		}},
		{router.AuditNodeUndrain, "m2", codes.OK, func(ctx context.Context) error {
			_, err := api.admin.UndrainNode(ctx, &geomatchv1.UndrainNodeRequest{NodeId: "m2"})
			return err
		}},
		{router.AuditNodeDrain, "m9", codes.InvalidArgument, func(ctx context.Context) error {
			_, err := api.admin.DrainNode(ctx, &geomatchv1.DrainNodeRequest{NodeId: "m9"})
			return err
		}},
		{router.AuditRingRebalance, "ring (dry run)", codes.OK, func(ctx context.Context) error {
			_, err := api.admin.Rebalance(ctx, &geomatchv1.RebalanceRequest{})
			return err
		}},
		{router.AuditRingRebalance, "ring (apply)", codes.OK, func(ctx context.Context) error {
			_, err := api.admin.Rebalance(ctx, &geomatchv1.RebalanceRequest{Apply: true})
			return err
		}},
		{router.AuditFencePut, "stadium", codes.OK, func(ctx context.Context) error {
			_, err := fences.PutFence(ctx, &geomatchv1.PutFenceRequest{Fence: circleFence("stadium", 800)})
			return err
		}},
		{router.AuditFenceDelete, "stadium", codes.OK, func(ctx context.Context) error {
			_, err := fences.DeleteFence(ctx, &geomatchv1.DeleteFenceRequest{FenceId: "stadium"})
			return err
		}},
		{router.AuditFenceDelete, "stadium", codes.NotFound, func(ctx context.Context) error {
			_, err := fences.DeleteFence(ctx, &geomatchv1.DeleteFenceRequest{FenceId: "stadium"})
			return err
		}},
		{router.AuditHookPut, "dispatch", codes.OK, func(ctx context.Context) error {
			_, err := hooks.PutHook(ctx, &geomatchv1.Hook{HookId: "dispatch", Endpoint: "http://127.0.0.1:1/geofence"})
			return err
		}},
		{router.AuditHookDelete, "dispatch", codes.OK, func(ctx context.Context) error {
			_, err := hooks.DeleteHook(ctx, &geomatchv1.DeleteHookRequest{HookId: "dispatch"})
			return err
		}},
	} {
		before := len(auditRecords(t, &logs))
		err := tc.call(ctxT(t))
		if got := status.Code(err); got != tc.code {
			t.Fatalf("%s %s: %v, want %v", tc.action, tc.target, err, tc.code)
		}
		recs := auditRecords(t, &logs)
		if len(recs) != before+1 {
			t.Fatalf("%s %s: %d audit records, want 1:\n%s", tc.action, tc.target, len(recs)-before, logs.String())
		}
		rec := recs[before]
		outcome := "ok"
		if tc.code != codes.OK {
			outcome = tc.code.String()
		}
		for k, want := range map[string]string{
			"msg": "admin action", "action": tc.action, "target": tc.target, "outcome": outcome,
			"caller": "admin ops", "caller_subject": "ops", "caller_role": "admin",
		} {
			if rec[k] != want {
				t.Errorf("%s %s: %s=%v, want %q (record %v)", tc.action, tc.target, k, rec[k], want, rec)
			}
		}
		if peer, _ := rec["peer"].(string); !strings.HasPrefix(peer, "127.0.0.1:") {
			t.Errorf("%s: peer %q, want the client's loopback address", tc.action, peer)
		}
		if _, failed := rec["error"]; failed != (tc.code != codes.OK) {
			t.Errorf("%s: error %v with outcome %s", tc.action, rec["error"], outcome)
		}
		if _, ok := rec["trace_id"]; ok {
			t.Errorf("%s: trace_id %v with tracing off", tc.action, rec["trace_id"])
		}
	}

	// Refused by the interceptors (not an admin): never reaches a handler,
	// no audit record.
	before := len(auditRecords(t, &logs))
	driver := as(t, c, keys, "cab-1", auth.RoleDriver)
	if _, err := driver.admin.DrainNode(ctxT(t), &geomatchv1.DrainNodeRequest{NodeId: "m1"}); status.Code(err) != codes.PermissionDenied {
		t.Fatalf("drain as a driver: %v", err)
	}
	if n := len(auditRecords(t, &logs)) - before; n != 0 {
		t.Fatalf("a refused call logged %d audit records", n)
	}
}

// TestAuditWithoutAuthNamesThePeer: with authentication off the caller of
// an admin action is its peer address.
func TestAuditWithoutAuthNamesThePeer(t *testing.T) {
	var logs syncBuffer
	c := startCluster(t, cluster.DevConfig{Matchers: 2, Log: slog.New(slog.NewJSONHandler(&logs, nil))})
	if _, err := c.admin.DrainNode(ctxT(t), &geomatchv1.DrainNodeRequest{NodeId: "m2"}); err != nil {
		t.Fatal(err)
	}
	recs := auditRecords(t, &logs)
	if len(recs) != 1 {
		t.Fatalf("%d audit records, want 1:\n%s", len(recs), logs.String())
	}
	rec := recs[0]
	peer, _ := rec["peer"].(string)
	if !strings.HasPrefix(peer, "127.0.0.1:") || rec["caller"] != "peer "+peer || rec["action"] != router.AuditNodeDrain || rec["outcome"] != "ok" {
		t.Fatalf("record %v", rec)
	}
	if _, ok := rec["caller_subject"]; ok {
		t.Fatalf("record %v names a token subject with authentication off", rec)
	}
}

// TestLogAuditFields: the record's attributes, a plain error's outcome
// and the trace id when there is one.
func TestLogAuditFields(t *testing.T) {
	var buf bytes.Buffer
	log := slog.New(slog.NewJSONHandler(&buf, nil))
	router.LogAudit(context.Background(), log, router.AuditRecord{
		Action: router.AuditTokenMint, Caller: "local user bob", Target: "admin alice",
		Err: errors.New("no key"), TraceID: "4bf92f3577b34da6a3ce929d0e0e4736",
	})
	var rec map[string]any
	if err := json.Unmarshal(buf.Bytes(), &rec); err != nil {
		t.Fatal(err)
	}
	for k, want := range map[string]string{
		"logger": "audit", "action": "token.mint", "caller": "local user bob", "target": "admin alice",
		"outcome": "Unknown", "error": "no key", "trace_id": "4bf92f3577b34da6a3ce929d0e0e4736",
	} {
		if rec[k] != want {
			t.Errorf("%s=%v, want %q", k, rec[k], want)
		}
	}
	for _, k := range []string{"peer", "caller_subject", "caller_role"} {
		if _, ok := rec[k]; ok {
			t.Errorf("%s=%v, want absent", k, rec[k])
		}
	}
}

package main

import (
	"encoding/json"
	"fmt"
	"regexp"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/geomatch/geomatch/auth"
	geomatchv1 "github.com/geomatch/geomatch/proto/geomatch/v1"
)

// TestAdminCLIOnDev runs every `geomatch admin` change against
// `geomatch dev` (in-process membership, authentication on): each goes
// through the router's AdminService with the --token given, and prints the
// new epoch; bad arguments and tokens without the admin role are refused
// and change nothing.
func TestAdminCLIOnDev(t *testing.T) {
	p := start(t, "geomatch dev", "dev", "--listen", "127.0.0.1:0", "--matchers", "3", "--auth=on")
	addr := p.waitFor(listening, 20*time.Second)[1]
	tok := p.waitFor(regexp.MustCompile(`an admin token for \S+: (\S+)`), 5*time.Second)[1]
	keyFile := p.waitFor(regexp.MustCompile(`GEOMATCH_SIGNING_KEY_FILE=(\S+) geomatch admin token`), 5*time.Second)[1]

	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()), grpc.WithPerRPCCredentials(auth.Bearer{Token: tok, Insecure: true}))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	req := &geomatchv1.UpdateLocationsRequest{}
	for i := range 300 {
		req.Updates = append(req.Updates, &geomatchv1.LocationUpdate{DriverId: fmt.Sprintf("d%d", i),
			Position: &geomatchv1.LatLng{Lat: 40.70 + float64(i%20)*0.005, Lng: -74.00 + float64(i/20)*0.005}, TimestampMs: time.Now().UnixMilli()})
	}
	if resp, err := geomatchv1.NewDriverServiceClient(conn).UpdateLocations(ctxFor(t, 10*time.Second), req); err != nil || resp.GetAccepted() != 300 {
		t.Fatalf("UpdateLocations: %v %v", resp, err)
	}

	env := []string{"GEOMATCH_TARGET=" + addr, "GEOMATCH_TOKEN=" + tok, "GEOMATCH_CONSUL="}
	admin := func(args ...string) string {
		t.Helper()
		out, errOut, err := runCmd(t, env, append([]string{"admin"}, args...)...)
		if err != nil {
			t.Fatalf("admin %v: %v\n%s%s", args, err, out, errOut)
		}
		return out
	}
	refused := func(env []string, args ...string) string {
		t.Helper()
		out, errOut, err := runCmd(t, env, append([]string{"admin"}, args...)...)
		if err == nil {
			t.Fatalf("admin %v succeeded:\n%s", args, out)
		}
		return errOut
	}
	epoch := func() uint64 {
		t.Helper()
		var d struct{ Epoch uint64 }
		if err := json.Unmarshal([]byte(admin("--json", "ring")), &d); err != nil {
			t.Fatal(err)
		}
		return d.Epoch
	}
	wants := func(out string, words ...string) {
		t.Helper()
		for _, w := range words {
			if !strings.Contains(out, w) {
				t.Fatalf("output does not say %q:\n%s", w, out)
			}
		}
	}

	if out := admin("status"); !regexp.MustCompile(`ring epoch 1 \(local membership`).MatchString(out) || !strings.Contains(out, "300 drivers") {
		t.Fatalf("status:\n%s", out)
	}
	var shards struct {
		Shards []struct{ Cell, Owner string }
	}
	if err := json.Unmarshal([]byte(admin("--json", "shards")), &shards); err != nil || len(shards.Shards) == 0 {
		t.Fatalf("shards --json: %v %+v", err, shards)
	}
	cell, owner := shards.Shards[0].Cell, shards.Shards[0].Owner
	to := map[string]string{"m1": "m2", "m2": "m3", "m3": "m1"}[owner]

	wants(admin("--target", addr, "move", cell, to), "move "+cell+" to "+to+": ring epoch 1 -> 2", "shard "+cell+" is owned by "+to)
	wants(admin("--router", addr, "unpin", cell), "unpin "+cell+": ring epoch 2 -> 3")
	split := admin("split", cell)
	wants(split, "split "+cell+": ring epoch 3 -> 4", "CHILD")
	if n := strings.Count(split, "\n"); n != 9 {
		t.Fatalf("split: %d lines, want the epoch, a header and 7 children:\n%s", n, split)
	}
	wants(admin("merge", cell), "merge "+cell+": ring epoch 4 -> 5")
	wants(admin("drain", "m1"), "drain m1: ring epoch 5 -> 6", "SHARD")
	if out := admin("ring"); !regexp.MustCompile(`(?m)^epoch 6 .*\n(.*\n)*m1\s+\S+\s+1\s+true$`).MatchString(out) {
		t.Fatalf("ring after the drain:\n%s", out)
	}
	wants(admin("undrain", "m1"), "undrain m1: ring epoch 6 -> 7")
	var rc geomatchv1.RingChange
	if err := json.Unmarshal([]byte(admin("--json", "move", cell, to)), &rc); err != nil || rc.Epoch != 8 || len(rc.Shards) != 1 || rc.Shards[0].Owner != to {
		t.Fatalf("move --json: %v %+v", err, &rc)
	}
	plan := admin("rebalance", "--target", "1")
	wants(plan, "drivers per node: max/avg", "CELL")
	if epoch() != 8 {
		t.Fatal("a dry run changed the ring")
	}

	// Refused: bad arguments, no admin role, no token.
	wants(refused(env, "move", "zz", "m1"), "cell:", "InvalidArgument")
	wants(refused(env, "merge", cell), "cell:", "never split", "FailedPrecondition")
	wants(refused(env, "drain", "m9"), "node_id:", "InvalidArgument")
	driverTok, errOut, err := runCmd(t, []string{"GEOMATCH_SIGNING_KEY_FILE=" + keyFile}, "admin", "token", "--subject", "cab-1", "--role", "driver")
	if err != nil {
		t.Fatalf("admin token: %v %s", err, errOut)
	}
	wants(refused(append(env, "GEOMATCH_TOKEN="+strings.TrimSpace(driverTok)), "drain", "m1"), "PermissionDenied", "needs role admin")
	wants(refused(append(env, "GEOMATCH_TOKEN="), "drain", "m1"), "Unauthenticated")
	if epoch() != 8 {
		t.Fatal("refused changes changed the ring")
	}
	p.stop(15 * time.Second)
}

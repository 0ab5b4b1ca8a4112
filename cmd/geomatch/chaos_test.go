package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/geomatch/geomatch/chaos"
	"github.com/geomatch/geomatch/internal/consultest"
	"github.com/geomatch/geomatch/internal/servertest"
)

// TestChaosRejectsBadFlags: each bad value is refused with an error naming
// its flag, before anything starts.
func TestChaosRejectsBadFlags(t *testing.T) {
	cases := []struct {
		args []string
		want string
	}{
		{[]string{}, "--scenario"},
		{[]string{"--scenario", "meteor"}, "--scenario"},
		{[]string{"--scenario", "kill", "--duration", "2h"}, "--duration"},
		{[]string{"--scenario", "kill", "--updates-per-s", "0"}, "--updates-per-s"},
		{[]string{"--scenario", "kill", "--updates-per-s", "1e9"}, "--updates-per-s"},
		{[]string{"--scenario", "kill", "--queries-per-s", "-1"}, "--queries-per-s"},
		{[]string{"--scenario", "kill", "--rides-per-s", "1000"}, "--rides-per-s"},
		{[]string{"--scenario", "kill", "--matchers", "1"}, "--matchers"},
		{[]string{"--scenario", "kill", "--routers", "0"}, "--routers"},
		{[]string{"--scenario", "kill", "--drivers", "-3"}, "--drivers"},
		{[]string{"--scenario", "kill", "--max-ops", "10"}, "--max-ops"},
		{[]string{"--scenario", "kill", "--duration", "10s", "--faults", "20", "--attach", "127.0.0.1:1"}, "--duration"},
		{[]string{"--scenario", "kill", "--attach", "192.0.2.1:50051", "--duration", "30s"}, "loopback"},
	}
	for _, c := range cases {
		var out, errOut bytes.Buffer
		err := runChaos(context.Background(), c.args, &out, &errOut)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%v: error %v, want one naming %s", c.args, err, c.want)
		}
	}
}

// TestChaosKillScenario runs a short kill scenario against a real cluster
// (Consul, Redis, 3 matchers, 2 routers as processes): the harness must
// inject its faults, drive and record the load, read every driver back
// and print its verdict, exiting 0 (pass) or 1 (violations) and nothing
// else. Whether the cluster passes is the chaos-short target's business;
// this test is about the harness.
func TestChaosKillScenario(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a cluster for half a minute")
	}
	consul := consultest.Binary()
	if consul == "" {
		servertest.Missing(t, "consul not found: run scripts/install-consul.sh or set "+consultest.BinaryEnv)
	}
	if _, err := exec.LookPath("redis-server"); err != nil {
		servertest.Missing(t, "redis-server not installed: apt-get install redis-server")
	}
	dir := t.TempDir()
	report := filepath.Join(dir, "report.json")
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, binary, "chaos", "--scenario", "kill", "--duration", "22s", "--faults", "2",
		"--updates-per-s", "400", "--queries-per-s", "40", "--rides-per-s", "1", "--ride-drivers", "10",
		"--consul-binary", consul, "--logs", filepath.Join(dir, "logs"), "--json", report,
		"--history", filepath.Join(dir, "history.jsonl"))
	out, err := cmd.CombinedOutput()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatalf("run: %v\n%s", err, out)
	}
	if code != 0 && code != 1 {
		t.Fatalf("exit %d (want 0 or 1)\n%s", code, out)
	}
	if !bytes.Contains(out, []byte("VERDICT")) {
		t.Fatalf("no verdict table:\n%s", out)
	}
	b, err := os.ReadFile(report)
	if err != nil {
		t.Fatal(err)
	}
	var rep chaos.Report
	if err := json.Unmarshal(b, &rep); err != nil {
		t.Fatal(err)
	}
	if (rep.Verdict == "PASS") != (code == 0) {
		t.Fatalf("verdict %s but exit %d", rep.Verdict, code)
	}
	if len(rep.Faults) != 2 {
		t.Fatalf("%d faults injected, want 2", len(rep.Faults))
	}
	for _, f := range rep.Faults {
		if f.Error != "" {
			t.Errorf("fault %+v: %s", f.Fault, f.Error)
		}
	}
	s := rep.Result.Stats
	if s.UpdatesAcked == 0 || s.Queries == 0 || s.Rides == 0 || s.AnswersChecked == 0 || s.Readbacks != 400 {
		t.Fatalf("the load or the checks did not run: %+v", s)
	}
	// The recorded history checks to the same verdict.
	f, err := os.Open(filepath.Join(dir, "history.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	ops, err := chaos.ReadHistory(f)
	if err != nil {
		t.Fatal(err)
	}
	again := chaos.Check(ops, chaos.CheckConfig{})
	if len(again.Violations) != len(rep.Result.Violations) {
		t.Fatalf("history checks to %v, the run said %v", again.Violations, rep.Result.Violations)
	}
	t.Logf("kill scenario: %s\n%s", rep.Verdict, out)
}

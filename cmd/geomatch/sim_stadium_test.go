package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/geomatch/geomatch/simulator/report"
)

// TestSimStadiumSplitsAndMerges runs `geomatch sim --scenario stadium`
// with autosplit on (small thresholds and windows) on the embedded
// 3-matcher cluster: the hot spot's shard is split while it is hot and
// merged back after it disperses, no update is rejected, and the report
// charts the load per matcher with the changes. Demand is low: at 100×,
// trips would otherwise take the stadium's drivers away faster than they
// gather.
func TestSimStadiumSplitsAndMerges(t *testing.T) {
	if testing.Short() {
		t.Skip("a 70 s simulation")
	}
	dir := t.TempDir()
	jsonPath := filepath.Join(dir, "sim.json")
	args := []string{
		"--scenario", "stadium", "--city", "nyc", "--drivers", "300", "--speedup", "100", "--duration", "70s", "--demand", "1",
		"--update-interval", "1s", "--seed", "3", "--run-id", "stadium", "--compare", "off", "--zones=false", "--shard-res", "8",
		"--autosplit", "on", "--autosplit-threshold", "40", "--autosplit-split-window", "2s", "--autosplit-merge-window", "5s",
		"--autosplit-cooldown", "3s", "--autosplit-interval", "1s",
		"--progress", "off", "--json", jsonPath, "--report", filepath.Join(dir, "report"),
	}
	var out bytes.Buffer
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	if err := runSim(ctx, args, &out, &out); err != nil {
		t.Fatalf("geomatch sim: %v\n%s", err, out.String())
	}
	f, err := os.Open(jsonPath)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	res, err := report.ReadJSON(f)
	if err != nil {
		t.Fatal(err)
	}
	nl := res.NodeLoad
	if nl == nil || len(nl.Samples) < 30 || len(nl.Nodes) != 3 {
		t.Fatalf("node load %+v: want samples of 3 matchers\n%s", nl, out.String())
	}
	s := nl.Summary
	t.Logf("summary %+v, changes %+v, updates %+v", s, nl.Changes, res.Updates)
	if s.Splits < 1 || s.Merges < 1 || s.MaxChangesPerCell > 2 {
		t.Errorf("%d splits, %d merges, at most %d changes of a cell: want the hot shard split and merged back once", s.Splits, s.Merges, s.MaxChangesPerCell)
	}
	if res.Updates.Rejected != 0 || res.Updates.Failed != 0 {
		t.Errorf("%d updates rejected, %d failed during the run: want none", res.Updates.Rejected, res.Updates.Failed)
	}
	html, err := os.ReadFile(filepath.Join(dir, "report", "index.html"))
	if err != nil || !strings.Contains(string(html), "Load per matcher") {
		t.Errorf("the report lacks the load chart (%v)", err)
	}
	if !strings.Contains(out.String(), "ring changes:") {
		t.Errorf("the summary lacks the ring changes:\n%s", out.String())
	}
}

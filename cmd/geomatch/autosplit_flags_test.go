package main

import (
	"flag"
	"io"
	"strings"
	"testing"
	"time"
)

// TestAutosplitFlags: --autosplit=off is no controller, on is the
// documented defaults with the overrides given, bad values are refused
// naming the flag or field, and args() passes the same configuration on to
// a child process.
func TestAutosplitFlags(t *testing.T) {
	parse := func(args ...string) (*autosplitFlags, error) {
		fs := flag.NewFlagSet("t", flag.ContinueOnError)
		fs.SetOutput(io.Discard)
		var a autosplitFlags
		a.register(fs, "off")
		if err := fs.Parse(args); err != nil {
			return nil, err
		}
		return &a, nil
	}
	a, err := parse()
	if err != nil {
		t.Fatal(err)
	}
	if cfg, err := a.config(); err != nil || cfg != nil {
		t.Fatalf("default: %+v, %v; want off", cfg, err)
	}
	a, _ = parse("--autosplit", "on", "--autosplit-threshold", "250", "--autosplit-merge-window", "90s")
	cfg, err := a.config()
	if err != nil || cfg == nil || !cfg.Enabled || cfg.SplitThreshold != 250 || cfg.MergeWindow != 90*time.Second || cfg.SplitWindow != 10*time.Second {
		t.Fatalf("on: %+v, %v", cfg, err)
	}
	child, err := parse(a.args()...)
	if err != nil {
		t.Fatal(err)
	}
	if again, err := child.config(); err != nil || *again != *cfg {
		t.Fatalf("args() round trip: %+v, %v; want %+v", again, err, cfg)
	}
	for _, bad := range [][]string{
		{"--autosplit", "maybe"},
		{"--autosplit", "on", "--autosplit-threshold", "0"},
		{"--autosplit", "on", "--autosplit-merge-fraction", "1.5"},
		{"--autosplit", "on", "--autosplit-merge-window", "1s"},
	} {
		a, err := parse(bad...)
		if err == nil {
			_, err = a.config()
		}
		if err == nil || !strings.Contains(err.Error(), "autosplit") {
			t.Errorf("%v: error %v, want one naming the flag", bad, err)
		}
	}
}

package gcpolicy

import (
	"os"
	"runtime/debug"
	"testing"
)

// restore puts the process's collector settings back after a test.
func restore(t *testing.T) {
	t.Helper()
	percent := debug.SetGCPercent(-1)
	debug.SetGCPercent(percent)
	limit := debug.SetMemoryLimit(-1)
	t.Cleanup(func() {
		debug.SetGCPercent(percent)
		debug.SetMemoryLimit(limit)
	})
}

func TestApplySetsTheDefaultPercent(t *testing.T) {
	restore(t)
	if v, ok := os.LookupEnv("GOGC"); ok {
		t.Setenv("GOGC", v)
		os.Unsetenv("GOGC") // t.Setenv puts it back
	}
	debug.SetGCPercent(100)
	if got := Apply().Percent; got != DefaultPercent {
		t.Fatalf("GOGC after Apply = %d, want %d", got, DefaultPercent)
	}
}

func TestApplyLeavesTheOperatorsSettings(t *testing.T) {
	restore(t)
	t.Setenv("GOGC", "150")
	t.Setenv("GOMEMLIMIT", "1GiB")
	debug.SetGCPercent(150)
	debug.SetMemoryLimit(1 << 30)
	p := Apply()
	if p.Percent != 150 || p.MemoryLimit != 1<<30 {
		t.Fatalf("Apply with GOGC=150 GOMEMLIMIT=1GiB left %+v, want percent 150 and limit %d", p, 1<<30)
	}
}

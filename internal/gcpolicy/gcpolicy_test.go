package gcpolicy

import (
	"math"
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

// TestApplyDerivesALimitFromTheMachine: without GOMEMLIMIT, the limit is
// LimitShare of the cgroup's limit or, without one, of physical memory.
func TestApplyDerivesALimitFromTheMachine(t *testing.T) {
	restore(t)
	for _, name := range []string{"GOMEMLIMIT", "AUTOMEMLIMIT", "AUTOMEMLIMIT_EXPERIMENT"} {
		if v, ok := os.LookupEnv(name); ok {
			t.Setenv(name, v)
			os.Unsetenv(name)
		}
	}
	debug.SetMemoryLimit(math.MaxInt64)
	phys := physicalMemory()
	if phys == 0 {
		t.Skip("physical memory unknown here")
	}
	p := Apply()
	if p.MemoryLimit <= 0 || p.MemoryLimit > int64(LimitShare*float64(phys))+1 {
		t.Fatalf("limit after Apply = %d, want in (0, %.0f] (%.0f%% of %d bytes of memory at most)", p.MemoryLimit, LimitShare*float64(phys), 100*LimitShare, phys)
	}
	if got := MemoryBudget(); got != p.MemoryLimit {
		t.Errorf("MemoryBudget = %d, want the limit %d", got, p.MemoryLimit)
	}
}

// TestAutomemlimitOffLeavesNoLimit: AUTOMEMLIMIT=off is the operator's way
// to run without a derived limit.
func TestAutomemlimitOffLeavesNoLimit(t *testing.T) {
	restore(t)
	if v, ok := os.LookupEnv("GOMEMLIMIT"); ok {
		t.Setenv("GOMEMLIMIT", v)
		os.Unsetenv("GOMEMLIMIT")
	}
	t.Setenv("AUTOMEMLIMIT", "off")
	debug.SetMemoryLimit(math.MaxInt64)
	if p := Apply(); p.MemoryLimit != 0 {
		t.Fatalf("limit after Apply with AUTOMEMLIMIT=off = %d, want none", p.MemoryLimit)
	}
}

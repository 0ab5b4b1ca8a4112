package gcpolicy

import (
	"context"
	"math"
	"os"
	"runtime"
	"runtime/debug"
	"testing"
	"time"
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

func TestPercentFor(t *testing.T) {
	for _, c := range []struct {
		live, headroom uint64
		want           int
	}{
		{0, DefaultHeadroom, MaxPercent},
		{1 << 20, DefaultHeadroom, MaxPercent},   // a small heap: the most room a share gives
		{128 << 20, DefaultHeadroom, 100},        // live = headroom
		{256 << 20, DefaultHeadroom, MinPercent}, // 1M drivers: half the live heap
		{4 << 30, DefaultHeadroom, MinPercent},   // never below MinPercent
		{100 << 20, DefaultHeadroom, 128},        // 100k drivers
		{1 << 40, 1 << 62, MaxPercent},           // no overflow at the extremes
	} {
		if got := PercentFor(c.live, c.headroom); got != c.want {
			t.Errorf("PercentFor(%d, %d) = %d, want %d", c.live, c.headroom, got, c.want)
		}
	}
}

// TestTunerSetsGOGCAfterACollection: with the live heap far below the
// headroom, the tuner raises GOGC to MaxPercent after a collection, and
// stops when told.
func TestTunerSetsGOGCAfterACollection(t *testing.T) {
	restore(t)
	if v, ok := os.LookupEnv("GOGC"); ok {
		t.Setenv("GOGC", v)
		os.Unsetenv("GOGC")
	}
	debug.SetGCPercent(100)
	tuner := StartTuner(context.Background())
	defer tuner.Stop()
	deadline := time.Now().Add(10 * time.Second)
	for Current().Percent != MaxPercent {
		if time.Now().After(deadline) {
			t.Fatalf("GOGC = %d 10 s after start, want %d (a test's heap is far below the headroom)", Current().Percent, MaxPercent)
		}
		runtime.GC()
		time.Sleep(20 * time.Millisecond)
	}
	tuner.Stop()
	tuner.Stop() // twice is fine
}

// TestTunerLeavesTheOperatorsGOGC: GOGC in the environment turns the
// tuner off.
func TestTunerLeavesTheOperatorsGOGC(t *testing.T) {
	restore(t)
	t.Setenv("GOGC", "150")
	debug.SetGCPercent(150)
	tuner := StartTuner(context.Background())
	defer tuner.Stop()
	for range 5 {
		runtime.GC()
		time.Sleep(2 * tunePoll)
	}
	if got := Current().Percent; got != 150 {
		t.Fatalf("GOGC = %d with GOGC=150 in the environment, want 150", got)
	}
}

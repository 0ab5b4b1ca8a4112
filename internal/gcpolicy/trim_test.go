package gcpolicy

import (
	"math"
	"runtime/debug"
	"sync/atomic"
	"testing"
	"time"
)

// TestTrimmer: a fall to half the peak, by at least MinDrop, trims once at
// once and again while the count keeps falling; small falls and rises do
// not; the trimming goroutine ends by itself.
func TestTrimmer(t *testing.T) {
	var trims atomic.Int64
	tr := &Trimmer{MinDrop: 100, Every: 10 * time.Millisecond, Settle: time.Millisecond, free: func() { trims.Add(1) }}
	for n := 0; n <= 1000; n++ {
		tr.Observe(n)
	}
	for n := 1000; n >= 600; n-- { // not half yet
		tr.Observe(n)
	}
	if trims.Load() != 0 {
		t.Fatalf("%d trims before the count halved", trims.Load())
	}
	tr.Observe(500) // half: a trim
	waitFor(t, func() bool { return trims.Load() == 1 })
	tr.Observe(0) // fell again while the goroutine waits: another
	waitFor(t, func() bool { return trims.Load() == 2 })
	waitFor(t, func() bool {
		tr.mu.Lock()
		defer tr.mu.Unlock()
		return !tr.running
	})
	tr.Observe(50) // below MinDrop from 0 up and down again: none
	tr.Observe(0)
	time.Sleep(30 * time.Millisecond)
	if trims.Load() != 2 {
		t.Fatalf("%d trims, want 2", trims.Load())
	}
}

func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not met in 5 s")
		}
		time.Sleep(time.Millisecond)
	}
}

// TestMemoryBudget: the budget is the soft memory limit when one is set,
// else the machine's memory (on Linux).
func TestMemoryBudget(t *testing.T) {
	restore(t)
	debug.SetMemoryLimit(1 << 30)
	if got := MemoryBudget(); got != 1<<30 {
		t.Fatalf("with a 1 GiB limit: %d", got)
	}
	debug.SetMemoryLimit(math.MaxInt64) // none
	if got, phys := MemoryBudget(), physicalMemory(); got != phys {
		t.Fatalf("without a limit: %d, want the machine's %d", got, phys)
	}
}

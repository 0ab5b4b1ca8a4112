// Package gcpolicy sets the garbage collector's policy of a geomatch
// process.
//
// A matcher's heap is mostly its driver index, which holds no pointers
// (package matcher/index keeps drivers in flat arrays of numbers): a
// collection marks those arrays without scanning them, so its cost follows
// the much smaller part of the heap that does hold pointers (connections,
// streams, queues, the store's maps). The hot paths (searches, update
// batches, gRPC framing) allocate short-lived garbage quickly, and each
// collection is triggered by that allocation; what a collection costs is
// the pointerful heap it marks. A geomatch process starts at
// GOGC=DefaultPercent and a tuner (StartTuner) then sets GOGC after every
// collection so that the heap may grow by a fixed DefaultHeadroom before
// the next, within [MinPercent, MaxPercent] of the live heap: the room the
// traffic's garbage needs, whatever the size of the index. That keeps the
// collector under about 5% of the CPU in the ingest phases of geomatch
// bench at 100k and at 1M drivers, with a resident size of about twice
// the live heap at 1M (a fixed GOGC 200 gave nearly four times).
//
// Above that, a soft memory limit holds the heap under what the machine
// can give: 90% of the container's cgroup memory limit, else 90% of the
// machine's physical memory (github.com/KimMachineGun/automemlimit and
// github.com/pbnjay/memory). Near the limit the collector runs as often as
// it must, so a large GOGC can never push the process into the kernel's
// OOM killer.
//
// The operator's own settings win: GOGC and GOMEMLIMIT in the environment
// are left alone (GOGC=off included; GOGC set turns the tuner off), and AUTOMEMLIMIT=off or a ratio in
// (0,1] changes the share of the limit.
//
// Memory freed after a burst (the stacks and buffers of thousands of
// connections) stays resident until a collection and the scavenger return
// it: a Trimmer returns it once the connections are gone, and MemoryBudget
// tells servers how much memory they may size their bounds for.
package gcpolicy

import (
	"log/slog"
	"math"
	"os"
	"runtime/debug"
	"runtime/metrics"

	"github.com/KimMachineGun/automemlimit/memlimit"
)

// DefaultPercent is the GOGC a geomatch process starts with, before its
// tuner (StartTuner) sets GOGC from the live heap.
const DefaultPercent = 200

// LimitShare is the share of the container's (else the machine's) memory
// the soft memory limit is set to.
const LimitShare = 0.9

// Policy is what Apply left in force.
type Policy struct {
	// Percent is the GOGC in force (-1: collection off).
	Percent int
	// MemoryLimit is the soft memory limit in bytes; 0 when none.
	MemoryLimit int64
}

// Apply sets GOGC to DefaultPercent unless the environment sets it, and the
// soft memory limit to LimitShare of the cgroup's memory limit, else of the
// machine's physical memory, unless the environment sets GOMEMLIMIT (or
// AUTOMEMLIMIT=off). It returns the policy now in force. Call it once, at
// start.
func Apply() Policy {
	if _, ok := os.LookupEnv("GOGC"); !ok {
		debug.SetGCPercent(DefaultPercent)
	}
	// Neither a cgroup limit nor the machine's memory known leaves the
	// limit as the environment set it.
	_, _ = memlimit.SetGoMemLimitWithOpts(
		memlimit.WithRatio(LimitShare),
		memlimit.WithProvider(memlimit.ApplyFallback(memlimit.FromCgroup, memlimit.FromSystem)),
		memlimit.WithLogger(slog.New(slog.DiscardHandler)),
	)
	return Current()
}

// Current reports the policy in force, read from runtime/metrics (no
// setting is touched to read it).
func Current() Policy {
	samples := []metrics.Sample{{Name: "/gc/gogc:percent"}, {Name: "/gc/gomemlimit:bytes"}}
	metrics.Read(samples)
	limit := int64(samples[1].Value.Uint64())
	if limit == math.MaxInt64 {
		limit = 0
	}
	return Policy{Percent: int(samples[0].Value.Uint64()), MemoryLimit: limit}
}

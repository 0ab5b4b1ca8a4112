// Package gcpolicy sets the garbage collector's policy of a geomatch
// process. A matcher's heap is mostly its index: millions of small,
// long-lived driver records that every collection has to mark again, while
// the hot paths (searches, update batches, gRPC framing) allocate short-lived
// garbage quickly. Go's default (GOGC=100) therefore spends a fifth of a
// busy matcher's CPU on collections (measured with geomatch bench). geomatch
// runs at GOGC=400 instead, and bounds the heap with a soft memory limit of
// 90% of the container's cgroup limit, so the larger target can never push
// the process into the kernel's OOM killer: near the limit the collector
// runs as often as it must.
//
// The operator's own settings win: GOGC and GOMEMLIMIT in the environment
// are left alone (GOGC=off included), and AUTOMEMLIMIT=off or a ratio in
// (0,1] changes the cgroup share (github.com/KimMachineGun/automemlimit).
//
// The same large GOGC means a burst of short-lived memory (the stacks and
// buffers of thousands of connections) stays resident long after it ends:
// a Trimmer returns it once the connections are gone, and MemoryBudget
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

// DefaultPercent is geomatch's GOGC.
const DefaultPercent = 400

// Policy is what Apply left in force.
type Policy struct {
	// Percent is the GOGC in force (-1: collection off).
	Percent int
	// MemoryLimit is the soft memory limit in bytes; 0 when none.
	MemoryLimit int64
}

// Apply sets GOGC to DefaultPercent unless the environment sets it, and the
// soft memory limit to 90% of the cgroup's memory limit unless the
// environment sets GOMEMLIMIT or there is no cgroup limit. It returns the
// policy now in force. Call it once, at start.
func Apply() Policy {
	if _, ok := os.LookupEnv("GOGC"); !ok {
		debug.SetGCPercent(DefaultPercent)
	}
	// No cgroup, or no limit in it, is the common case outside
	// containers; the limit then stays as the environment left it.
	_, _ = memlimit.SetGoMemLimitWithOpts(
		memlimit.WithRatio(0.9),
		memlimit.WithProvider(memlimit.FromCgroup),
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

package loadgen

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"
)

// Report is the outcome of one Run: one PhaseResult per phase, in order. It
// is what `geomatch bench --json` writes.
type Report struct {
	// Target names what was measured: "geomatch grpc 127.0.0.1:50051",
	// "redis 127.0.0.1:6379", ...
	Target string `json:"target"`
	// Drivers, Dist, Seed, Batch and DurationS echo the configuration.
	Drivers   int          `json:"drivers"`
	Dist      Distribution `json:"dist"`
	Seed      uint64       `json:"seed"`
	Batch     int          `json:"batch"`
	DurationS float64      `json:"duration_s"`
	// ProcessMeasured says whether CPU and RSS were measured (the target
	// ran in this process); without it those fields are empty.
	ProcessMeasured bool `json:"process_measured"`
	// Phases are the phases in the order they ran.
	Phases []PhaseResult `json:"phases"`
}

// PhaseResult is one phase's figures: one row of the table.
type PhaseResult struct {
	// Phase is load, ingest-unary, ingest-stream or nearby-C.
	Phase string `json:"phase"`
	// Concurrency is the number of client workers (streams for
	// ingest-stream).
	Concurrency int `json:"concurrency"`
	// Ops counts operations: location updates for load and ingest phases,
	// queries for nearby phases.
	Ops int64 `json:"ops"`
	// Calls counts round trips (batches, stream sends or queries); the
	// latencies are per call.
	Calls int64 `json:"calls"`
	// ElapsedS is the phase's wall time in seconds; for ingest-stream it
	// includes the wait for the target to answer the updates in flight
	// when the apps stop sending.
	ElapsedS float64 `json:"elapsed_s"`
	// OpsPerS is Ops / Elapsed.
	OpsPerS float64 `json:"ops_per_s"`
	// P50Ms, P99Ms and P999Ms are per-call latency percentiles in
	// milliseconds (for streams: the time a Send took).
	P50Ms  float64 `json:"p50_ms"`
	P99Ms  float64 `json:"p99_ms"`
	P999Ms float64 `json:"p999_ms"`
	// Errors counts failed operations: updates rejected or lost in a
	// failed call, queries that failed.
	Errors int64 `json:"errors"`
	// Stale counts stream updates the target refused as older than one
	// already applied for the driver: updates in flight together may be
	// applied out of order and the older one loses. Not an error.
	Stale int64 `json:"stale,omitempty"`
	// FirstError is the first error seen, for diagnosis; empty if none.
	FirstError string `json:"first_error,omitempty"`
	// CPUSeconds is the user+system CPU this process spent during the
	// phase, client included; only with Report.ProcessMeasured.
	CPUSeconds float64 `json:"cpu_s,omitempty"`
	// RSSBytes is this process's resident set at the end of the phase; only
	// with Report.ProcessMeasured.
	RSSBytes int64 `json:"rss_bytes,omitempty"`
}

// WriteTable writes the report as a human-readable table.
func (r Report) WriteTable(w io.Writer) error {
	fmt.Fprintf(w, "target %s: %d drivers (%s, seed %d), batch %d, %v per phase\n",
		r.Target, r.Drivers, r.Dist, r.Seed, r.Batch, time.Duration(r.DurationS*float64(time.Second)))
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "phase\tops\tops/s\tp50\tp99\tp999\terrors\tcpu\trss\t")
	for _, p := range r.Phases {
		cpu, rss := "-", "-"
		if r.ProcessMeasured {
			cpu = strconv.FormatFloat(p.CPUSeconds, 'f', 2, 64) + "s"
			rss = strconv.FormatInt(p.RSSBytes>>20, 10) + "MiB"
		}
		fmt.Fprintf(tw, "%s\t%d\t%.0f\t%s\t%s\t%s\t%d\t%s\t%s\t\n", p.Phase, p.Ops, p.OpsPerS,
			fmtMs(p.P50Ms), fmtMs(p.P99Ms), fmtMs(p.P999Ms), p.Errors, cpu, rss)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	for _, p := range r.Phases {
		if p.Stale > 0 {
			fmt.Fprintf(w, "%s: %d updates arrived after a newer one of the same driver (stale, not errors)\n", p.Phase, p.Stale)
		}
		if p.FirstError != "" {
			fmt.Fprintf(w, "%s: first error: %s\n", p.Phase, p.FirstError)
		}
	}
	return nil
}

func fmtMs(ms float64) string {
	if ms < 1 {
		return strconv.FormatFloat(ms*1000, 'f', 0, 64) + "µs"
	}
	return strconv.FormatFloat(ms, 'f', 2, 64) + "ms"
}

// WriteJSON writes the report as indented JSON.
func (r Report) WriteJSON(w io.Writer) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(r)
}

// cpuTime is this process's user+system CPU time so far.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// rssBytes is this process's resident set from /proc/self/status (VmRSS),
// or 0 where that file does not exist.
func rssBytes() int64 {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			f := strings.Fields(v) // "123456 kB"
			if len(f) >= 1 {
				kb, err := strconv.ParseInt(f[0], 10, 64)
				if err == nil {
					return kb << 10
				}
			}
		}
	}
	return 0
}

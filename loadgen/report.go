package loadgen

import (
	"encoding/json"
	"fmt"
	"io"
	"strconv"
	"strings"
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
	// ProcessMeasured says whether the server's CPU and RSS were measured:
	// this process's (the target ran in it, with the load generator) or,
	// with ServerPID, the server process's; without it those fields are
	// empty.
	ProcessMeasured bool `json:"process_measured"`
	// ServerPID is the measured server process, 0 for this process.
	ServerPID int `json:"server_pid,omitempty"`
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
	// CPUSeconds is the user+system CPU the server spent during the phase
	// (with an embedded cluster: this process, load generator included);
	// only with Report.ProcessMeasured.
	CPUSeconds float64 `json:"cpu_s,omitempty"`
	// CPUPerOpUs is CPUSeconds per operation, in microseconds.
	CPUPerOpUs float64 `json:"cpu_per_op_us,omitempty"`
	// ClientCPUSeconds is the load generator's own CPU during the phase;
	// only with Report.ServerPID (the server is another process).
	ClientCPUSeconds float64 `json:"client_cpu_s,omitempty"`
	// RSSBytes is the server's resident set at the end of the phase; only
	// with Report.ProcessMeasured.
	RSSBytes int64 `json:"rss_bytes,omitempty"`
	// PeakRSSBytes is the server's highest resident set since it started
	// (VmHWM), read at the end of the phase; only with
	// Report.ProcessMeasured.
	PeakRSSBytes int64 `json:"peak_rss_bytes,omitempty"`
	// GCCPUShare is the part of the process's CPU the Go garbage
	// collector took during the phase, and LiveHeapBytes the heap its last
	// collection found live at the phase's end (the Go runtime's own
	// estimates); when the server is this process (an embedded cluster)
	// or its /metrics was given (Config.ServerMetrics).
	GCCPUShare    float64 `json:"gc_cpu_share,omitempty"`
	LiveHeapBytes int64   `json:"live_heap_bytes,omitempty"`
}

// WriteTable writes the report as a human-readable table.
func (r Report) WriteTable(w io.Writer) error {
	fmt.Fprintf(w, "target %s: %d drivers (%s, seed %d), batch %d, %v per phase\n",
		r.Target, r.Drivers, r.Dist, r.Seed, r.Batch, time.Duration(r.DurationS*float64(time.Second)))
	switch {
	case r.ServerPID != 0:
		fmt.Fprintf(w, "cpu, cpu/op and rss: server process %d; client cpu: the load generator\n", r.ServerPID)
	case r.ProcessMeasured:
		fmt.Fprintln(w, "cpu, cpu/op and rss: this process (cluster and load generator together)")
	}
	runtime := r.runtimeMeasured()
	if runtime {
		fmt.Fprintln(w, "gc: the Go garbage collector's share of that CPU; live: the heap its last collection found live")
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	head := "phase\tops\tops/s\tp50\tp99\tp999\terrors\tcpu\tcpu/op\trss\t"
	if runtime {
		head += "gc\tlive\t"
	}
	if r.ServerPID != 0 {
		head += "client cpu\t"
	}
	fmt.Fprintln(tw, head)
	for _, p := range r.Phases {
		cpu, perOp, rss := "-", "-", "-"
		if r.ProcessMeasured {
			cpu = strconv.FormatFloat(p.CPUSeconds, 'f', 2, 64) + "s"
			perOp = fmtUs(p.CPUPerOpUs)
			rss = fmtMiB(p.RSSBytes)
		}
		fmt.Fprintf(tw, "%s\t%d\t%.0f\t%s\t%s\t%s\t%d\t%s\t%s\t%s\t", p.Phase, p.Ops, p.OpsPerS,
			fmtMs(p.P50Ms), fmtMs(p.P99Ms), fmtMs(p.P999Ms), p.Errors, cpu, perOp, rss)
		if runtime {
			fmt.Fprintf(tw, "%.1f%%\t%s\t", 100*p.GCCPUShare, fmtMiB(p.LiveHeapBytes))
		}
		if r.ServerPID != 0 {
			fmt.Fprintf(tw, "%.2fs\t", p.ClientCPUSeconds)
		}
		fmt.Fprintln(tw)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	if peak := r.PeakRSS(); peak > 0 {
		fmt.Fprintf(w, "server peak rss: %s\n", fmtMiB(peak))
	}
	for _, p := range r.Phases {
		if strings.HasPrefix(p.Phase, "nearbystream-") {
			fmt.Fprintf(w, "%s: that many clients, each its own RiderService.NearbyStream with %d searches per round trip; ops are searches\n", p.Phase, PipelineDepth)
		}
		if p.Stale > 0 {
			fmt.Fprintf(w, "%s: %d updates arrived after a newer one of the same driver (stale, not errors)\n", p.Phase, p.Stale)
		}
		if p.FirstError != "" {
			fmt.Fprintf(w, "%s: first error: %s\n", p.Phase, p.FirstError)
		}
	}
	return nil
}

// PeakRSS returns the server's highest resident set the run saw, 0 when
// not measured.
func (r Report) PeakRSS() int64 {
	var peak int64
	for _, p := range r.Phases {
		peak = max(peak, p.PeakRSSBytes, p.RSSBytes)
	}
	return peak
}

// runtimeMeasured reports whether the phases carry the Go runtime's GC
// share and live heap.
func (r Report) runtimeMeasured() bool {
	for _, p := range r.Phases {
		if p.LiveHeapBytes > 0 {
			return true
		}
	}
	return false
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

package loadgen

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"text/tabwriter"
)

// ReadReport reads a report written by Report.WriteJSON.
func ReadReport(path string) (Report, error) {
	var r Report
	b, err := os.ReadFile(path)
	if err != nil {
		return r, fmt.Errorf("read report: %w", err)
	}
	if err := json.Unmarshal(b, &r); err != nil {
		return r, fmt.Errorf("read report %s: %w", path, err)
	}
	return r, nil
}

// WriteComparison writes the phases a and b have in common side by side:
// throughput, latency percentiles, server CPU per operation and resident
// set, and the ratios a/b of throughput and b/a of latency and CPU (above
// 1: a is better).
func WriteComparison(w io.Writer, a, b Report) error {
	fmt.Fprintf(w, "A: %s\nB: %s\n%d drivers (%s, seed %d), batch %d, %v per phase\n", a.Target, b.Target,
		a.Drivers, a.Dist, a.Seed, a.Batch, strconv.FormatFloat(a.DurationS, 'f', -1, 64)+"s")
	if a.Drivers != b.Drivers || a.Dist != b.Dist || a.Seed != b.Seed || a.Batch != b.Batch {
		fmt.Fprintf(w, "warning: the runs differ: B had %d drivers (%s, seed %d), batch %d\n", b.Drivers, b.Dist, b.Seed, b.Batch)
	}
	byName := map[string]PhaseResult{}
	for _, p := range b.Phases {
		byName[p.Phase] = p
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "phase\tA ops/s\tB ops/s\tA/B\tA p50\tB p50\tA p99\tB p99\tB/A p99\tA p999\tB p999\tA cpu/op\tB cpu/op\tB/A cpu\tA rss\tB rss\t")
	for _, pa := range a.Phases {
		pb, ok := byName[pa.Phase]
		if !ok {
			continue
		}
		cpuA, cpuB, cpuRatio, rssA, rssB := "-", "-", "-", "-", "-"
		if a.ProcessMeasured {
			cpuA, rssA = fmtUs(pa.CPUPerOpUs), fmtMiB(pa.RSSBytes)
		}
		if b.ProcessMeasured {
			cpuB, rssB = fmtUs(pb.CPUPerOpUs), fmtMiB(pb.RSSBytes)
		}
		if a.ProcessMeasured && b.ProcessMeasured {
			cpuRatio = ratio(pb.CPUPerOpUs, pa.CPUPerOpUs)
		}
		fmt.Fprintf(tw, "%s\t%.0f\t%.0f\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t\n", pa.Phase,
			pa.OpsPerS, pb.OpsPerS, ratio(pa.OpsPerS, pb.OpsPerS),
			fmtMs(pa.P50Ms), fmtMs(pb.P50Ms), fmtMs(pa.P99Ms), fmtMs(pb.P99Ms), ratio(pb.P99Ms, pa.P99Ms),
			fmtMs(pa.P999Ms), fmtMs(pb.P999Ms), cpuA, cpuB, cpuRatio, rssA, rssB)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	if pa, pb := a.PeakRSS(), b.PeakRSS(); pa > 0 && pb > 0 {
		fmt.Fprintf(w, "server peak rss: A %s, B %s (A/B %s)\n", fmtMiB(pa), fmtMiB(pb), ratio(float64(pa), float64(pb)))
	}
	for _, p := range a.Phases {
		if _, ok := byName[p.Phase]; ok && p.Phase == PipelinedPhase {
			fmt.Fprintf(w, "%s: one client, %d searches per round trip (RESP pipelining; geomatch's gRPC: one NearbyStream); ops are searches, latency is the round trip's\n", PipelinedPhase, PipelineDepth)
		}
	}
	// A's streams of several clients against B's one pipelining client:
	// what each side offers a back end asking many questions at once.
	if pb, ok := byName[PipelinedPhase]; ok {
		for _, pa := range a.Phases {
			if strings.HasPrefix(pa.Phase, "nearbystream-") {
				fmt.Fprintf(w, "%s (A) against %s (B): %.0f/s against %.0f/s, %s; p99 %s against %s\n", pa.Phase, PipelinedPhase,
					pa.OpsPerS, pb.OpsPerS, ratio(pa.OpsPerS, pb.OpsPerS), fmtMs(pa.P99Ms), fmtMs(pb.P99Ms))
			}
		}
	}
	for _, r := range []Report{a, b} {
		for _, p := range r.Phases {
			if p.Errors > 0 {
				fmt.Fprintf(w, "%s, %s: %d errors, first: %s\n", r.Target, p.Phase, p.Errors, p.FirstError)
			}
		}
	}
	return nil
}

// ratio formats x/y as "2.5x", "-" when y is 0.
func ratio(x, y float64) string {
	if y == 0 {
		return "-"
	}
	return strconv.FormatFloat(x/y, 'f', 2, 64) + "x"
}

func fmtUs(us float64) string { return strconv.FormatFloat(us, 'f', 1, 64) + "µs" }

func fmtMiB(b int64) string { return strconv.FormatInt(b>>20, 10) + "MiB" }

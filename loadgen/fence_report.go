package loadgen

import (
	"encoding/json"
	"fmt"
	"io"
	"slices"
	"strconv"
	"text/tabwriter"
)

// Targets of the fence phases, as the fence issue states them.
const (
	// TargetFencedIngestPerS is the ingest throughput wanted with 20k
	// fences over a 1M-driver city.
	TargetFencedIngestPerS = 100_000
	// TargetFencedIngestRatio is the share of the fence-free ingest
	// throughput wanted with the fences.
	TargetFencedIngestRatio = 0.70
	// TargetPutFencePerS is the PutFence rate wanted while ingest runs.
	TargetPutFencePerS = 5000
	// TargetWritesP99Ratio bounds ingest p99 with concurrent fence writes
	// over ingest p99 without them.
	TargetWritesP99Ratio = 1.20
)

// FenceReport is the outcome of RunFences: the phases, as Run reports
// them, and the fence figures. Its JSON holds a Report's fields plus
// "fence", so ReadReport (and `geomatch bench --compare`) read it too.
type FenceReport struct {
	Report
	Fence FenceSummary `json:"fence"`
}

// FenceSummary holds the fence run's settings and the figures derived
// from its phases.
type FenceSummary struct {
	Fences           int         `json:"fences"`
	Set              string      `json:"set"`
	Shapes           FenceShapes `json:"shapes"`
	PutConcurrency   int         `json:"put_concurrency"`
	WriteConcurrency int         `json:"write_concurrency"`
	// WriteRate is the PutFence/s fence-writes aimed at (0: unpaced).
	WriteRate float64 `json:"write_rate"`
	// Events are the events the subscription received during each fenced
	// phase (events logged late in a phase may arrive in the next).
	Events         []PhaseEvents `json:"events,omitempty"`
	EventsTotal    int64         `json:"events_total"`
	SubscribeError string        `json:"subscribe_error,omitempty"`
	// UnaryRatio and StreamRatio are the fenced ingest phases' ops/s over
	// the fence-free ones'; 0 when either did not run.
	UnaryRatio  float64 `json:"unary_ratio,omitempty"`
	StreamRatio float64 `json:"stream_ratio,omitempty"`
	// PutPerS is fence-put's PutFence/s; WritePerS fence-writes' (while
	// ingest ran).
	PutPerS   float64 `json:"put_per_s,omitempty"`
	WritePerS float64 `json:"write_per_s,omitempty"`
	// WritesP99Ratio is ingest-unary+fence-writes' p99 over
	// ingest-unary+fences'.
	WritesP99Ratio float64 `json:"writes_p99_ratio,omitempty"`
}

// PhaseEvents is the event count of one fenced phase.
type PhaseEvents struct {
	Phase      string  `json:"phase"`
	Events     int64   `json:"events"`
	EventsPerS float64 `json:"events_per_s"`
}

// derive fills the ratios from the phases.
func (s *FenceSummary) derive(phases []PhaseResult) {
	by := map[string]PhaseResult{}
	for _, p := range phases {
		by[p.Phase] = p
	}
	div := func(a, b float64) float64 {
		if b == 0 {
			return 0
		}
		return a / b
	}
	s.UnaryRatio = div(by[phaseUnaryFenced].OpsPerS, by["ingest-unary"].OpsPerS)
	s.StreamRatio = div(by[phaseStreamFence].OpsPerS, by["ingest-stream"].OpsPerS)
	s.PutPerS = by[phaseFencePut].OpsPerS
	s.WritePerS = by[phaseFenceWrites].OpsPerS
	s.WritesP99Ratio = div(by[phaseUnaryWrites].P99Ms, by[phaseUnaryFenced].P99Ms)
}

// WriteTable writes the phases' table, then the fence figures and how
// they stand against the targets.
func (r FenceReport) WriteTable(w io.Writer) error {
	if err := r.Report.WriteTable(w); err != nil {
		return err
	}
	s := r.Fence
	sh := s.Shapes
	fmt.Fprintf(w, "fences: %d in set %s (polygons %d..%d vertices, %.1f..%.1f km²; circles %.0f m..%.1f km); put by %d workers; fence-writes aimed at %s PutFence/s by %d workers\n",
		s.Fences, s.Set, sh.MinVertices, sh.MaxVertices, sh.MinAreaM2/1e6, sh.MaxAreaM2/1e6, sh.MinRadiusM, sh.MaxRadiusM/1000,
		s.PutConcurrency, rateOrUnpaced(s.WriteRate), s.WriteConcurrency)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	if len(s.Events) > 0 {
		fmt.Fprintln(tw, "phase\tfence events received\tevents/s\t")
		for _, e := range s.Events {
			fmt.Fprintf(tw, "%s\t%d\t%.0f\t\n", e.Phase, e.Events, e.EventsPerS)
		}
		if err := tw.Flush(); err != nil {
			return err
		}
	}
	if s.SubscribeError != "" {
		fmt.Fprintf(w, "subscription: %s\n", s.SubscribeError)
	}
	by := map[string]PhaseResult{}
	for _, p := range r.Phases {
		by[p.Phase] = p
	}
	fmt.Fprintln(tw, "figure\tmeasured\ttarget\tmet\t")
	check := func(name, measured, target string, ok bool, have bool) {
		if !have {
			return
		}
		met := "no"
		if ok {
			met = "yes"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t\n", name, measured, target, met)
	}
	u, haveU := by[phaseUnaryFenced]
	check("ingest-unary with fences, updates/s", fmtRate(u.OpsPerS), ">= "+fmtRate(TargetFencedIngestPerS), u.OpsPerS >= TargetFencedIngestPerS, haveU)
	st, haveS := by[phaseStreamFence]
	check("ingest-stream with fences, updates/s", fmtRate(st.OpsPerS), ">= "+fmtRate(TargetFencedIngestPerS), st.OpsPerS >= TargetFencedIngestPerS, haveS)
	check("ingest-unary with / without fences", fmtRatio(s.UnaryRatio), ">= "+fmtRatio(TargetFencedIngestRatio), s.UnaryRatio >= TargetFencedIngestRatio, s.UnaryRatio > 0)
	check("ingest-stream with / without fences", fmtRatio(s.StreamRatio), ">= "+fmtRatio(TargetFencedIngestRatio), s.StreamRatio >= TargetFencedIngestRatio, s.StreamRatio > 0)
	check("PutFence/s, alone", fmtRate(s.PutPerS), "-", true, s.PutPerS > 0)
	check("PutFence/s, while ingest runs", fmtRate(s.WritePerS), ">= "+fmtRate(TargetPutFencePerS), s.WritePerS >= TargetPutFencePerS, s.WritePerS > 0)
	check("ingest-unary p99 with / without fence writes", fmtRatio(s.WritesP99Ratio), "<= "+fmtRatio(TargetWritesP99Ratio), s.WritesP99Ratio <= TargetWritesP99Ratio, s.WritesP99Ratio > 0)
	return tw.Flush()
}

// WriteJSON writes the report as indented JSON.
func (r FenceReport) WriteJSON(w io.Writer) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(r)
}

func fmtRate(v float64) string {
	switch {
	case v >= 1e6:
		return strconv.FormatFloat(v/1e6, 'f', 2, 64) + "M/s"
	case v >= 1e3:
		return strconv.FormatFloat(v/1e3, 'f', 1, 64) + "k/s"
	}
	return strconv.FormatFloat(v, 'f', 0, 64) + "/s"
}

func fmtRatio(v float64) string { return strconv.FormatFloat(v, 'f', 2, 64) + "x" }

func rateOrUnpaced(v float64) string {
	if v == 0 {
		return "unpaced"
	}
	return strconv.FormatFloat(v, 'f', 0, 64)
}

// WriteTable writes the comparison: the setting, one row per side, the
// differences by class with a few examples, and the throughput ratio.
func (r CompareReport) WriteTable(w io.Writer) error {
	a := r.Shapes.Area
	fmt.Fprintf(w, "fence comparison: trace of %d drivers × %d steps (seed %d, moves up to %.0f m per axis) over lat %.4f..%.4f, lng %.4f..%.4f\n",
		r.Drivers, r.Steps, r.Seed, r.StepM, a.MinLat, a.MaxLat, a.MinLng, a.MaxLng)
	fmt.Fprintf(w, "fences: %d polygons (%d..%d vertices, %.1f..%.1f km², %d with a hole) and %d circles (%.0f m..%.1f km), detect enter,exit; Tile38 circles: %s\n",
		r.Polygons, r.Shapes.MinVertices, r.Shapes.MaxVertices, r.Shapes.MinAreaM2/1e6, r.Shapes.MaxAreaM2/1e6, r.Holes,
		r.Circles, r.Shapes.MinRadiusM, r.Shapes.MaxRadiusM/1000, r.Tile38Circles)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "side\tsetup\tupdates\tupdates/s\tbatch p50\tbatch p99\terrors\tserver cpu\tenter\texit\tother\tunplaced\tdup\tsettle\t")
	row := func(name string, s *CompareSide, replayed bool) {
		if s == nil {
			return
		}
		if !replayed {
			fmt.Fprintf(tw, "%s\t-\t-\t-\t-\t-\t-\t-\t%d\t%d\t%d\t%d\t%d\t-\t\n", name, s.Enter, s.Exit, s.Other, s.Unplaced, s.Duplicates)
			return
		}
		cpu := "-"
		if s.ServerCPUSeconds > 0 {
			cpu = strconv.FormatFloat(s.ServerCPUSeconds, 'f', 2, 64) + "s"
		}
		fmt.Fprintf(tw, "%s\t%.2fs\t%d\t%.0f\t%s\t%s\t%d\t%s\t%d\t%d\t%d\t%d\t%d\t%.1fs\t\n", name, s.SetupS, s.Replay.Ops, s.Replay.OpsPerS,
			fmtMs(s.Replay.P50Ms), fmtMs(s.Replay.P99Ms), s.Replay.Errors, cpu, s.Enter, s.Exit, s.Other, s.Unplaced, s.Duplicates, s.SettleS)
	}
	row("oracle", &r.Oracle, false)
	row("geomatch", r.Geomatch, true)
	row("tile38", r.Tile38, true)
	if err := tw.Flush(); err != nil {
		return err
	}
	for _, s := range []*CompareSide{r.Geomatch, r.Tile38} {
		if s != nil && s.Replay.FirstError != "" {
			fmt.Fprintf(w, "%s: first error: %s\n", s.Target, s.Replay.FirstError)
		}
	}
	for _, d := range r.Diffs {
		fmt.Fprintf(w, "%s: %d events the same, %d only in %s, %d only in %s\n", d.Name, d.Same, d.OnlyA, d.A, d.OnlyB, d.B)
		classes := make([]string, 0, len(d.Classes))
		for c := range d.Classes {
			classes = append(classes, c)
		}
		slices.Sort(classes)
		for _, c := range classes {
			fmt.Fprintf(w, "  %d: %s\n", d.Classes[c], c)
		}
		for _, e := range d.Examples {
			fmt.Fprintf(w, "  e.g. only %s: step %d, %s %s %s (%s; %s m from the edge)\n", e.Only, e.Step, e.Driver, e.Detect, e.Fence, e.Class, e.MarginM)
		}
	}
	if r.Ratio > 0 {
		fmt.Fprintf(w, "replay throughput geomatch / tile38: %s\n", fmtRatio(r.Ratio))
	}
	return nil
}

// WriteJSON writes the comparison as indented JSON.
func (r CompareReport) WriteJSON(w io.Writer) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(r)
}

package report

import (
	"fmt"
	"io"
	"math"
	"strings"
	"text/tabwriter"
)

// Comparison is the same scenario under several settings (matching
// modes), with each KPI's change against the first run.
type Comparison struct {
	Version int       `json:"version"`
	Labels  []string  `json:"labels"`
	Runs    []*Result `json:"runs"`
	Deltas  []Delta   `json:"deltas"`
}

// Delta is one KPI across the runs.
type Delta struct {
	KPI    string    `json:"kpi"`
	Unit   string    `json:"unit,omitempty"`
	Values []float64 `json:"values"`
	// Change and ChangePct are each run's difference from the first.
	Change    []float64 `json:"change"`
	ChangePct []float64 `json:"change_pct"`
	// Better says which run is best on this KPI ("" when they tie).
	Better     string `json:"better,omitempty"`
	higher     bool
	format     string
	load       bool
	definition string
}

// Compare lines up runs labelled labels.
func Compare(labels []string, runs []*Result) *Comparison {
	c := &Comparison{Version: SchemaVersion, Labels: labels, Runs: runs}
	if len(runs) == 0 {
		return c
	}
	base := KPIs(runs[0])
kpis:
	for i, k := range base {
		d := Delta{KPI: k.Name, Unit: k.Unit, higher: k.HigherIsBetter, format: k.format, load: k.load, definition: k.Definition}
		for _, r := range runs {
			v := math.NaN()
			for _, rk := range KPIs(r) {
				if rk.Name == k.Name {
					v = rk.Value
					break
				}
			}
			if math.IsNaN(v) {
				// Not measured in every run (an API method one run never
				// called): no comparison, and JSON has no NaN.
				continue kpis
			}
			d.Values = append(d.Values, v)
			d.Change = append(d.Change, v-base[i].Value)
			pct := 0.0
			if base[i].Value != 0 {
				pct = 100 * (v - base[i].Value) / math.Abs(base[i].Value)
			}
			d.ChangePct = append(d.ChangePct, pct)
		}
		best, tie := 0, true
		for j, v := range d.Values {
			if v != d.Values[0] {
				tie = false
			}
			if (k.HigherIsBetter && v > d.Values[best]) || (!k.HigherIsBetter && v < d.Values[best]) {
				best = j
			}
		}
		if !tie && !k.neutral && best < len(labels) {
			d.Better = labels[best]
		}
		c.Deltas = append(c.Deltas, d)
	}
	return c
}

// WriteComparison prints the KPIs side by side with the changes from the
// first run.
func WriteComparison(w io.Writer, c *Comparison) error {
	var b strings.Builder
	fmt.Fprintf(&b, "\ncomparison (same scenario, seed %d):\n", seedOf(c))
	tw := tabwriter.NewWriter(&b, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintf(tw, "  kpi\t")
	for _, l := range c.Labels {
		fmt.Fprintf(tw, "%s\t", l)
	}
	for _, l := range c.Labels[min(1, len(c.Labels)):] {
		fmt.Fprintf(tw, "Δ %s\t", l)
	}
	fmt.Fprintf(tw, "better\t\n")
	for _, d := range c.Deltas {
		name := d.KPI
		if d.Unit != "" {
			name += " (" + d.Unit + ")"
		}
		fmt.Fprintf(tw, "  %s\t", name)
		for _, v := range d.Values {
			fmt.Fprintf(tw, d.format+"\t", v)
		}
		for j := 1; j < len(d.Values); j++ {
			fmt.Fprintf(tw, "%+"+strings.TrimPrefix(d.format, "%")+" (%+.0f%%)\t", d.Change[j], d.ChangePct[j])
		}
		fmt.Fprintf(tw, "%s\t\n", d.Better)
	}
	if err := tw.Flush(); err != nil {
		return fmt.Errorf("write comparison: %w", err)
	}
	if _, err := io.WriteString(w, b.String()); err != nil {
		return fmt.Errorf("write comparison: %w", err)
	}
	return nil
}

func seedOf(c *Comparison) uint64 {
	if len(c.Runs) == 0 {
		return 0
	}
	return c.Runs[0].Scenario.Seed
}

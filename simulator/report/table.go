package report

import (
	"fmt"
	"io"
	"slices"
	"strings"
	"text/tabwriter"
)

// KPI is one headline figure of a run.
type KPI struct {
	// Name and Unit label it; Format prints its value.
	Name, Unit string
	Value      float64
	// HigherIsBetter says which way an improvement goes (for deltas).
	HigherIsBetter bool
	format         string
	// neutral KPIs describe the load, not how well it was served.
	neutral bool
}

// Format prints the value in the KPI's format.
func (k KPI) Format() string { return fmt.Sprintf(k.format, k.Value) }

// KPIs lists the headline figures of r, in table order.
func KPIs(r *Result) []KPI {
	t := r.Trips
	k := []KPI{
		{"ride requests", "", float64(t.Requests), true, "%.0f", true},
		{"match rate", "%", 100 * t.MatchRate, true, "%.1f", false},
		{"assigned", "", float64(t.Assigned), true, "%.0f", false},
		{"completed", "", float64(t.Completed), true, "%.0f", false},
		{"no driver", "", float64(t.NoDriver), false, "%.0f", false},
		{"riders gave up", "", float64(t.RiderGaveUp), false, "%.0f", false},
		{"cancelled after match", "", float64(t.CancelledAfterMatch), false, "%.0f", false},
		{"time to match p50", "ms", r.TimeToMatchMs.P50, false, "%.0f", false},
		{"time to match p90", "ms", r.TimeToMatchMs.P90, false, "%.0f", false},
		{"time to match p99", "ms", r.TimeToMatchMs.P99, false, "%.0f", false},
		{"pickup distance mean", "m", r.PickupDistanceM.Mean, false, "%.0f", false},
		{"pickup distance p90", "m", r.PickupDistanceM.P90, false, "%.0f", false},
		{"pickup ETA mean", "s", r.PickupETAS.Mean, false, "%.0f", false},
		{"pickup ETA p90", "s", r.PickupETAS.P90, false, "%.0f", false},
		{"driver utilisation", "%", 100 * r.Drivers.Utilisation, true, "%.1f", false},
		{"offers per assignment", "", ratio(float64(r.Drivers.Offers), float64(t.Assigned)), false, "%.2f", false},
		{"updates offered", "/s", r.Updates.OfferedPerS, true, "%.0f", true},
		{"updates achieved", "/s", r.Updates.AchievedPerS, true, "%.0f", false},
		{"update loss", "", float64(r.Updates.Loss), false, "%.0f", false},
	}
	for _, m := range r.Methods() {
		k = append(k, KPI{m + " p99", "ms", r.Latency[m].P99, false, "%.2f", false})
	}
	return k
}

func ratio(a, b float64) float64 {
	if b == 0 {
		return 0
	}
	return a / b
}

// WriteTable prints the run's KPI table.
func WriteTable(w io.Writer, r *Result) error {
	s := r.Scenario
	var b strings.Builder
	fmt.Fprintf(&b, "\ngeomatch sim: %s, %d drivers, %s matching, %.0f s at %gx (%.0f simulated minutes), seed %d, %s transport\n",
		s.City, s.Drivers, orUnknown(s.MatchMode), r.Run.WallS, s.Speedup, r.Run.SimS/60, s.Seed, s.Transport)
	tw := tabwriter.NewWriter(&b, 0, 0, 2, ' ', 0)
	t := r.Trips
	row := func(name, value string) { fmt.Fprintf(tw, "  %s\t%s\n", name, value) }
	row("ride requests", fmt.Sprintf("%d (%.1f/min simulated)", t.Requests, ratio(float64(t.Requests), r.Run.SimS/60)))
	row("matched", fmt.Sprintf("%d (%.1f%% of the %d answered before the end)", t.Assigned, 100*t.MatchRate, t.Requests-t.WaitingAtEnd))
	row("outcomes", fmt.Sprintf("%d completed, %d no driver, %d gave up, %d cancelled after match; at the end %d completed, %d cancelled, %d open",
		t.Completed, t.NoDriver, t.RiderGaveUp, t.CancelledAfterMatch, t.CompletedAtEnd, t.CancelledAtEnd, t.Open))
	if t.RequestErrors+t.DroppedArrivals > 0 {
		row("request errors", fmt.Sprintf("%d failed calls, %d riders dropped by the simulator", t.RequestErrors, t.DroppedArrivals))
	}
	row("time to match", distLine(r.TimeToMatchMs, "ms", "%.0f"))
	row("pickup distance", distLine(r.PickupDistanceM, "m", "%.0f"))
	row("pickup route", distLine(r.PickupRouteM, "m", "%.0f"))
	row("pickup ETA", distLine(r.PickupETAS, "s", "%.0f"))
	row("pickup actual", distLine(r.PickupTimeS, "s", "%.0f"))
	row("trip time", distLine(r.TripTimeS, "s", "%.0f"))
	d := r.Drivers
	row("drivers", fmt.Sprintf("%d connected of %d, %.0f online on average, utilisation %.1f%% (%.1f%% with a rider)",
		d.Connected, d.Fleet, d.OnlineAvg, 100*d.Utilisation, 100*d.WithRider))
	row("offers", fmt.Sprintf("%d: %d accepted, %d declined, %d acceptances refused (late)", d.Offers, d.Accepted, d.Declined, d.AcceptsClosed))
	u := r.Updates
	row("location updates", fmt.Sprintf("%.0f/s achieved of %.0f/s offered; %d offered, %d sent, %d accepted, %d rejected, %d failed, %d skipped, %d late; loss %d",
		u.AchievedPerS, u.OfferedPerS, u.Offered, u.Sent, u.Accepted, u.Rejected, u.Failed, u.Skipped, u.Late, u.Loss))
	if len(u.ByReason) > 0 {
		var rs []string
		for k, v := range u.ByReason {
			rs = append(rs, fmt.Sprintf("%s %d", strings.TrimPrefix(k, "REJECT_REASON_"), v))
		}
		slices.Sort(rs)
		row("rejected by reason", strings.Join(rs, ", "))
	}
	if err := tw.Flush(); err != nil {
		return fmt.Errorf("write table: %w", err)
	}
	fmt.Fprintf(&b, "\n  API latency (ms)\n")
	tw = tabwriter.NewWriter(&b, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintf(tw, "  method\tcalls\terrors\tp50\tp90\tp99\tmax\t\n")
	for _, m := range r.Methods() {
		l := r.Latency[m]
		fmt.Fprintf(tw, "  %s\t%d\t%d\t%.2f\t%.2f\t%.2f\t%.2f\t\n", m, l.Count, l.Errors, l.P50, l.P90, l.P99, l.Max)
	}
	if err := tw.Flush(); err != nil {
		return fmt.Errorf("write table: %w", err)
	}
	if r.Zones != nil {
		if err := writeZones(&b, r.Zones); err != nil {
			return err
		}
	}
	for _, wn := range r.Run.Warnings {
		fmt.Fprintf(&b, "  warning: %s\n", wn)
	}
	if _, err := io.WriteString(w, b.String()); err != nil {
		return fmt.Errorf("write table: %w", err)
	}
	return nil
}

func distLine(d Dist, unit, f string) string {
	if d.Count == 0 {
		return "-"
	}
	v := func(x float64) string { return fmt.Sprintf(f, x) }
	return fmt.Sprintf("mean %s %s, p50 %s, p90 %s, p99 %s, max %s (%d)", v(d.Mean), unit, v(d.P50), v(d.P90), v(d.P99), v(d.Max), d.Count)
}

func orUnknown(s string) string {
	if s == "" {
		return "the target's"
	}
	return s
}

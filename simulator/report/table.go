package report

import (
	"fmt"
	"io"
	"math"
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
	// Definition says in a sentence what the figure is.
	Definition string
	// load marks the service-load and API figures (not headline ones).
	load bool
}

// Format prints the value in the KPI's format.
func (k KPI) Format() string { return fmt.Sprintf(k.format, k.Value) }

// window returns the run's measured window, or, for a result without one
// (an older document), the whole run's figures in its place.
func (r *Result) window() Window {
	if r.Window != nil {
		return *r.Window
	}
	t, d := r.Trips, r.Drivers
	return Window{ToSimS: r.Run.SimS, Requests: t.Requests, Answered: t.Requests - t.WaitingAtEnd, Assigned: t.Assigned,
		Unmatched: t.NoDriver + t.RiderGaveUp, MatchRate: t.MatchRate, Offers: d.Offers, Accepted: d.Accepted,
		AcceptanceRate: ratio(float64(d.Accepted), float64(d.Offers)), DropOffs: t.Completed, Utilisation: d.Utilisation,
		TimeToMatchMs: r.TimeToMatchMs, PickupETAS: r.PickupETAS}
}

// KPIs lists the headline figures of r, in table order: those of the
// measured window (after the warm-up), then the load and the API.
func KPIs(r *Result) []KPI {
	w := r.window()
	kpi := func(name, unit string, v float64, higher bool, format string, def string) KPI {
		return KPI{Name: name, Unit: unit, Value: v, HigherIsBetter: higher, format: format, Definition: def}
	}
	neutral := func(k KPI) KPI { k.neutral = true; return k }
	k := []KPI{
		neutral(kpi("ride requests", "", float64(w.Requests), true, "%.0f", "Requests made in the measured window.")),
		kpi("match rate", "%", 100*w.MatchRate, true, "%.1f", "Requests that got a driver, of those answered before the end."),
		kpi("unmatched requests", "", float64(w.Unmatched), false, "%.0f", "Requests that ended without a driver: none found, or the rider gave up first."),
		kpi("time to match p50", "ms", w.TimeToMatchMs.P50, false, "%.0f", "Request to assignment as the rider saw it, wall time; includes the driver's think time."),
		kpi("time to match p90", "ms", w.TimeToMatchMs.P90, false, "%.0f", "As above, 90th percentile."),
		kpi("dispatch service time p50", "ms", w.ServiceMs.P50, false, "%.0f", "Time to match less the drivers' think time: the service's own share, wall time."),
		kpi("dispatch service time p90", "ms", w.ServiceMs.P90, false, "%.0f", "As above, 90th percentile."),
		neutral(kpi("driver think time mean", "s", w.ThinkS.Mean, false, "%.1f", "Offer to answer, simulated: the simulated drivers' decision time (configured), not the service's.")),
		kpi("wait to pickup p50", "s", w.WaitToPickupS.P50, false, "%.0f", "Request to the driver's arrival at the pickup, simulated time."),
		kpi("wait to pickup p90", "s", w.WaitToPickupS.P90, false, "%.0f", "As above, 90th percentile."),
		kpi("pickup ETA mean", "s", w.PickupETAS.Mean, false, "%.0f", "Route time to the pickup at assignment, simulated."),
		kpi("pickup ETA p90", "s", w.PickupETAS.P90, false, "%.0f", "As above, 90th percentile."),
		kpi("pickup distance mean", "m", r.PickupDistanceM.Mean, false, "%.0f", "Great-circle distance from the assigned driver to the pickup, as the service reported it (whole run)."),
		kpi("driver utilisation", "%", 100*w.Utilisation, true, "%.1f", "Busy driver time (accepted to drop-off) over online driver time."),
		kpi("driver idle share", "%", 100*w.IdleShare, false, "%.1f", "Available driver time (online, no offer, no trip) over online driver time."),
		kpi("deadhead share", "%", 100*w.DeadheadShare, false, "%.1f", "Distance driven to pickups over distance driven on trips (to the pickup and with the rider)."),
		kpi("acceptance rate", "%", 100*w.AcceptanceRate, true, "%.1f", "Offers accepted over offers received."),
		kpi("trips per driver-hour", "", w.TripsPerDriverHour, true, "%.2f", "Drop-offs per online driver-hour, simulated."),
		kpi("completed trips", "", float64(w.DropOffs), true, "%.0f", "Real trips dropped off in the window (the wind-down's and the warm start's are apart)."),
		kpi("offers per assignment", "", ratio(float64(w.Offers), float64(w.Assigned)), false, "%.2f", "Offers sent per driver assigned: re-offers after declines and timeouts."),
	}
	serviceLoad := []KPI{
		neutral(kpi("updates offered", "/s", r.Updates.OfferedPerS, true, "%.0f", "Location updates the drivers were due to send per wall second (whole window).")),
		kpi("updates achieved", "/s", r.Updates.AchievedPerS, true, "%.0f", "Location updates the service applied per wall second."),
		kpi("update loss", "", float64(r.Updates.Loss), false, "%.0f", "Updates due but not applied: skipped, failed or rejected."),
	}
	for _, m := range r.Methods() {
		serviceLoad = append(serviceLoad, kpi(m+" p99", "ms", r.Latency[m].P99, false, "%.2f", "API latency, 99th percentile over the whole window (wall)."))
	}
	for _, l := range serviceLoad {
		l.load = true
		k = append(k, l)
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
	fmt.Fprintf(&b, "\ngeomatch sim: %s, %d drivers, %s matching, %.0f s at %gx (%.0f simulated minutes from %s), seed %d, %s transport\n",
		s.City, s.Drivers, orUnknown(s.MatchMode), r.Run.WallS, s.Speedup, r.Run.SimS/60, ClockTime(s.StartHour*3600), s.Seed, s.Transport)
	win := r.window()
	fmt.Fprintf(&b, "  measured window %s-%s (the warm-up before it is left out of the KPIs)", ClockTime(s.StartHour*3600+win.FromSimS), ClockTime(s.StartHour*3600+win.ToSimS))
	if s.WarmStart {
		fmt.Fprintf(&b, "; warm start: %d drivers began on carried-over trips", r.Run.CarriedTrips)
	}
	b.WriteString("\n")
	if r.Run.WarmupNote != "" {
		fmt.Fprintf(&b, "  note: %s\n", r.Run.WarmupNote)
	}
	tw := tabwriter.NewWriter(&b, 0, 0, 2, ' ', 0)
	t := r.Trips
	row := func(name, value string) { fmt.Fprintf(tw, "  %s\t%s\n", name, value) }
	row("ride requests", fmt.Sprintf("%d in the whole run (%.1f/min simulated), %d in the window", t.Requests, ratio(float64(t.Requests), r.Run.SimS/60), win.Requests))
	row("matched", fmt.Sprintf("%.1f%% in the window (%d of the %d answered before the end); whole run %.1f%%", 100*win.MatchRate, win.Assigned, win.Answered, 100*t.MatchRate))
	row("outcomes (real)", fmt.Sprintf("%d completed, %d no driver, %d gave up, %d cancelled after match", t.Completed, t.NoDriver, t.RiderGaveUp, t.CancelledAfterMatch))
	row("wind-down (synthetic)", fmt.Sprintf("%d finished at once with the rider aboard, %d cancelled (%d still waiting for a driver), %d open", t.CompletedAtEnd, t.CancelledAtEnd, t.WaitingAtEnd, t.Open))
	if t.RequestErrors+t.DroppedArrivals > 0 {
		row("request errors", fmt.Sprintf("%d failed calls, %d riders dropped by the simulator", t.RequestErrors, t.DroppedArrivals))
	}
	row("time to match", distLine(win.TimeToMatchMs, "ms", "%.0f")+", with the think time")
	row("  dispatch service", distLine(win.ServiceMs, "ms", "%.0f")+", less the think time")
	row("  first offer", distLine(win.FirstOfferMs, "ms", "%.0f"))
	row("  driver think", distLine(win.ThinkS, "s", "%.1f")+" simulated")
	row("wait to pickup", distLine(win.WaitToPickupS, "s", "%.0f")+" simulated")
	row("pickup ETA", distLine(win.PickupETAS, "s", "%.0f"))
	row("pickup distance", distLine(r.PickupDistanceM, "m", "%.0f")+" (whole run)")
	row("pickup route", distLine(r.PickupRouteM, "m", "%.0f")+" (whole run)")
	row("pickup actual", distLine(r.PickupTimeS, "s", "%.0f")+" (whole run)")
	row("trip time", distLine(r.TripTimeS, "s", "%.0f")+" (whole run)")
	row("fleet", fmt.Sprintf("utilisation %.1f%%, idle %.1f%%, deadhead %.1f%%, acceptance %.1f%%, %.2f trips per driver-hour (%d drop-offs, %d of carried-over trips)",
		100*win.Utilisation, 100*win.IdleShare, 100*win.DeadheadShare, 100*win.AcceptanceRate, win.TripsPerDriverHour, win.DropOffs, win.CarriedDropOffs))
	d := r.Drivers
	row("drivers", fmt.Sprintf("%d connected of %d, %.0f online on average; whole run utilisation %.1f%% (%.1f%% with a rider)",
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
	if len(r.ZoneKPIs) > 0 {
		if err := writeZoneKPIs(&b, r.ZoneKPIs); err != nil {
			return err
		}
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

// ClockTime formats seconds since midnight as the time of day, HH:MM
// (past midnight it wraps).
func ClockTime(s float64) string {
	m := int(math.Floor(s/60)) % (24 * 60)
	if m < 0 {
		m += 24 * 60
	}
	return fmt.Sprintf("%02d:%02d", m/60, m%60)
}

// writeZoneKPIs prints the zones' demand, supply and service.
func writeZoneKPIs(b *strings.Builder, zs []ZoneKPI) error {
	fmt.Fprintf(b, "\n  zones in the window: demand (pickups), supply (available drivers inside), service\n")
	tw := tabwriter.NewWriter(b, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintf(tw, "  zone\trequests\t/min\tdemand %%\tavailable\tsupply %%\tunmatched\tunmatched %%\tETA mean s\tETA p90 s\twait mean s\t\n")
	for _, z := range zs {
		avail, share := "-", "-"
		if z.AvailableMean >= 0 {
			avail = fmt.Sprintf("%.1f", z.AvailableMean)
			if z.Kind == "district" {
				share = fmt.Sprintf("%.1f", 100*z.SupplyShare)
			}
		}
		demand := "-"
		if z.Kind == "district" {
			demand = fmt.Sprintf("%.1f", 100*z.DemandShare)
		}
		fmt.Fprintf(tw, "  %s\t%d\t%.1f\t%s\t%s\t%s\t%d\t%.1f\t%.0f\t%.0f\t%.0f\t\n", z.Name, z.Requests, z.RequestsPerMin, demand, avail, share,
			z.Unmatched, 100*z.UnmatchedShare, z.ETAMeanS, z.ETAP90S, z.WaitMeanS)
	}
	if err := tw.Flush(); err != nil {
		return fmt.Errorf("write table: %w", err)
	}
	return nil
}

func orUnknown(s string) string {
	if s == "" {
		return "the target's"
	}
	return s
}

package report

import (
	"fmt"
	"strings"
	"text/tabwriter"

	"gonum.org/v1/plot/plotter"
)

// Zones is what a run saw of the city's named zones, put as geofences of
// one set: the drivers inside each zone over time (FenceService
// GetFenceCounts, every sample interval) and the zones' fence events (an
// EventService subscription to the set).
type Zones struct {
	// Set is the zones' fence set.
	Set string `json:"set"`
	// Zones are the zones, districts first.
	Zones []Zone `json:"zones"`
	// Series is one sample per sample interval of the window.
	Series []ZoneSample `json:"series"`
	// Events counts the fence events the subscription received, of the
	// zones and (OtherEvents) of other fences of the set.
	Events      int64 `json:"events"`
	OtherEvents int64 `json:"other_events,omitempty"`
	// EventsPerSMean and EventsPerSPeak are the enter and exit events per
	// second over the series.
	EventsPerSMean float64 `json:"events_per_s_mean"`
	EventsPerSPeak float64 `json:"events_per_s_peak"`
	// CountErrors are GetFenceCounts calls that failed; their samples have
	// no counts.
	CountErrors int64 `json:"count_errors,omitempty"`
}

// Zone is one zone and what happened in it.
type Zone struct {
	// ID is the zone's fence id; Name and Kind (district, airport,
	// stadium, park, station, mall) describe it; Shape is "polygon" or
	// "circle".
	ID    string `json:"id"`
	Name  string `json:"name"`
	Kind  string `json:"kind"`
	Shape string `json:"shape"`
	// Enters and Exits are the zone's fence events.
	Enters int64 `json:"enters"`
	Exits  int64 `json:"exits"`
	// AvailableMean and AvailablePeak are the available drivers inside
	// over the series (the supply a rider there could get); InsideMean and
	// InsidePeak count every live driver inside.
	AvailableMean float64 `json:"available_mean"`
	AvailablePeak int64   `json:"available_peak"`
	InsideMean    float64 `json:"inside_mean"`
	InsidePeak    int64   `json:"inside_peak"`
	// EndInside and EndAvailable are GetFenceCounts's answer after the
	// wind-down, once the drivers had stopped reporting.
	EndInside    int64 `json:"end_inside"`
	EndAvailable int64 `json:"end_available"`
}

// ZoneSample is the zones at one moment and the event rates since the
// previous sample.
type ZoneSample struct {
	// T is wall seconds since the window started.
	T float64 `json:"t"`
	// Inside and Available are per zone, in Zones order; absent when the
	// count failed.
	Inside    []int64 `json:"inside,omitempty"`
	Available []int64 `json:"available,omitempty"`
	// EntersPerS and ExitsPerS are the zones' fence events per second.
	EntersPerS float64 `json:"enters_per_s"`
	ExitsPerS  float64 `json:"exits_per_s"`
}

// Summarise computes each zone's means and peaks, and the event rates,
// from the series.
func (z *Zones) Summarise() {
	n := 0
	sumIn := make([]float64, len(z.Zones))
	sumAv := make([]float64, len(z.Zones))
	for i := range z.Zones {
		z.Zones[i].InsidePeak, z.Zones[i].AvailablePeak = 0, 0
	}
	var rateSum float64
	z.EventsPerSPeak = 0
	for _, s := range z.Series {
		rate := s.EntersPerS + s.ExitsPerS
		rateSum += rate
		z.EventsPerSPeak = max(z.EventsPerSPeak, rate)
		if len(s.Inside) != len(z.Zones) || len(s.Available) != len(z.Zones) {
			continue
		}
		n++
		for i := range z.Zones {
			zn := &z.Zones[i]
			sumIn[i] += float64(s.Inside[i])
			sumAv[i] += float64(s.Available[i])
			zn.InsidePeak = max(zn.InsidePeak, s.Inside[i])
			zn.AvailablePeak = max(zn.AvailablePeak, s.Available[i])
		}
	}
	for i := range z.Zones {
		z.Zones[i].InsideMean, z.Zones[i].AvailableMean = 0, 0
		if n > 0 {
			z.Zones[i].InsideMean = sumIn[i] / float64(n)
			z.Zones[i].AvailableMean = sumAv[i] / float64(n)
		}
	}
	z.EventsPerSMean = 0
	if len(z.Series) > 0 {
		z.EventsPerSMean = rateSum / float64(len(z.Series))
	}
}

// writeZones prints the zones section of the KPI table.
func writeZones(b *strings.Builder, z *Zones) error {
	fmt.Fprintf(b, "\n  zones (fence set %s): available drivers inside (GetFenceCounts every sample), fence events (Subscribe)\n", z.Set)
	tw := tabwriter.NewWriter(b, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintf(tw, "  zone\tkind\tavailable mean\tpeak\tinside mean\tpeak\tenters\texits\tat the end: inside\tavailable\t\n")
	for _, zn := range z.Zones {
		fmt.Fprintf(tw, "  %s\t%s\t%.1f\t%d\t%.1f\t%d\t%d\t%d\t%d\t%d\t\n", zn.Name, zn.Kind,
			zn.AvailableMean, zn.AvailablePeak, zn.InsideMean, zn.InsidePeak, zn.Enters, zn.Exits, zn.EndInside, zn.EndAvailable)
	}
	if err := tw.Flush(); err != nil {
		return fmt.Errorf("write table: %w", err)
	}
	fmt.Fprintf(b, "  fence events: %d (%.1f/s mean, %.1f/s peak)", z.Events, z.EventsPerSMean, z.EventsPerSPeak)
	if z.OtherEvents > 0 {
		fmt.Fprintf(b, ", %d of other fences of the set", z.OtherEvents)
	}
	if z.CountErrors > 0 {
		fmt.Fprintf(b, "; %d counts failed", z.CountErrors)
	}
	b.WriteString("\n")
	return nil
}

// zoneCharts are the zones' charts over time: available drivers per
// district, per place (airport, stadium, ...: fewer drivers, so a chart
// of their own), and the fence events per second.
func zoneCharts(r *Result) ([]string, error) {
	z := r.Zones
	if z == nil || len(z.Series) == 0 {
		return nil, nil
	}
	available := func(i int) plotter.XYs {
		xy := make(plotter.XYs, 0, len(z.Series))
		for _, s := range z.Series {
			if len(s.Available) == len(z.Zones) {
				xy = append(xy, plotter.XY{X: r.simOfDay(s.T * r.Scenario.Speedup), Y: float64(s.Available[i])})
			}
		}
		return xy
	}
	var districts, places []series
	for i, zn := range z.Zones {
		if zn.Kind == "district" {
			districts = append(districts, series{zn.Name, available(i)})
		} else {
			places = append(places, series{zn.Name, available(i)})
		}
	}
	rate := func(f func(ZoneSample) float64) plotter.XYs {
		xy := make(plotter.XYs, 0, len(z.Series))
		for _, s := range z.Series {
			xy = append(xy, plotter.XY{X: r.simOfDay(s.T * r.Scenario.Speedup), Y: f(s)})
		}
		return xy
	}
	specs := []struct {
		title, y string
		ss       []series
	}{
		{"Available drivers per district", "available drivers inside", districts},
		{"Available drivers at places", "available drivers inside", places},
		{"Fence events (zones)", "events per wall second", []series{
			{"enter", rate(func(s ZoneSample) float64 { return s.EntersPerS })},
			{"exit", rate(func(s ZoneSample) float64 { return s.ExitsPerS })},
		}},
	}
	var out []string
	for _, s := range specs {
		if len(s.ss) == 0 {
			continue
		}
		svg, err := lineChart(s.title, "simulated time of day", s.y, s.ss, axisOf(r))
		if err != nil {
			return nil, err
		}
		out = append(out, svg)
	}
	return out, nil
}

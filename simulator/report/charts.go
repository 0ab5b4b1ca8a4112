package report

import (
	"bytes"
	"fmt"
	"image/color"
	"math"
	"regexp"
	"slices"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
	"gonum.org/v1/plot/vg/vgsvg"
)

// Chart sizes.
const (
	chartW = 7 * vg.Inch
	chartH = 3 * vg.Inch
)

// palette is the series colours (colour-blind safe, Okabe-Ito).
var palette = []color.RGBA{
	{0, 114, 178, 255}, {213, 94, 0, 255}, {0, 158, 115, 255}, {204, 121, 167, 255},
	{230, 159, 0, 255}, {86, 180, 233, 255}, {240, 228, 66, 255}, {0, 0, 0, 255},
}

// series is one named line of a chart.
type series struct {
	name string
	xy   plotter.XYs
}

// renderSVG draws p as an SVG document without its XML prolog, ready to
// inline in HTML. Fonts are named, not embedded: the browser's own sans
// serif stands in, which keeps the page small and self-contained.
func renderSVG(p *plot.Plot) (string, error) {
	c := vgsvg.NewWith(vgsvg.UseWH(chartW, chartH), vgsvg.EmbedFonts(false))
	p.Draw(draw.New(c))
	var buf bytes.Buffer
	if _, err := c.WriteTo(&buf); err != nil {
		return "", fmt.Errorf("render chart %q: %w", p.Title.Text, err)
	}
	return prolog.ReplaceAllString(buf.String(), ""), nil
}

var prolog = regexp.MustCompile(`(?s)^<\?xml.*?\?>\s*(<!DOCTYPE[^>]*>\s*)?`)

// timeAxis is a chart's time axis: the simulated time of day, in seconds
// since midnight, with the warm-up shaded.
type timeAxis struct {
	// warmFrom and warmTo bound the warm-up (equal: none).
	warmFrom, warmTo float64
}

// axisOf is r's time axis.
func axisOf(r *Result) *timeAxis {
	start := r.Scenario.StartHour * 3600
	return &timeAxis{warmFrom: start, warmTo: start + r.window().FromSimS}
}

// simOfDay converts simulated seconds since the start to the time of day.
func (r *Result) simOfDay(simS float64) float64 { return r.Scenario.StartHour*3600 + simS }

// clockTicks marks a time-of-day axis in HH:MM (HH:MM:SS when the run is
// shorter than a few minutes).
type clockTicks struct{}

// Ticks implements plot.Ticker.
func (clockTicks) Ticks(lo, hi float64) []plot.Tick {
	steps := []float64{5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 10800, 21600}
	step := steps[len(steps)-1]
	for _, s := range steps {
		if (hi-lo)/s <= 8 {
			step = s
			break
		}
	}
	var ticks []plot.Tick
	for t := math.Ceil(lo/step) * step; t <= hi; t += step {
		label := ClockTime(t)
		if step < 60 {
			sec := int(math.Mod(t, 60))
			label = fmt.Sprintf("%s:%02d", label, sec)
		}
		ticks = append(ticks, plot.Tick{Value: t, Label: label})
		if minor := t + step/2; minor < hi {
			ticks = append(ticks, plot.Tick{Value: minor})
		}
	}
	return ticks
}

// warmupFill shades the warm-up.
var warmupFill = color.RGBA{120, 120, 120, 40}

// lineChart plots series against the same x axis; with a time axis, x is
// the simulated time of day and the warm-up is shaded.
func lineChart(title, xLabel, yLabel string, ss []series, axis *timeAxis) (string, error) {
	p := plot.New()
	p.Title.Text = title
	p.X.Label.Text = xLabel
	p.Y.Label.Text = yLabel
	p.Y.Min = 0
	p.Add(plotter.NewGrid())
	p.Legend.Top = true
	p.Legend.Left = true
	yMax := 1.0
	for _, s := range ss {
		for _, pt := range s.xy {
			yMax = math.Max(yMax, pt.Y)
		}
	}
	// Headroom above the data for the legend.
	top := yMax * (1 + 0.12*float64(len(ss)+1))
	if axis != nil {
		p.X.Tick.Marker = clockTicks{}
		if axis.warmTo > axis.warmFrom {
			shade, err := plotter.NewPolygon(plotter.XYs{{X: axis.warmFrom, Y: 0}, {X: axis.warmTo, Y: 0}, {X: axis.warmTo, Y: top}, {X: axis.warmFrom, Y: top}})
			if err != nil {
				return "", fmt.Errorf("chart %q: warm-up: %w", title, err)
			}
			shade.Color = warmupFill
			shade.LineStyle.Width = 0
			p.Add(shade)
			p.Legend.Add("warm-up (not in the KPIs)", shade)
		}
	}
	for i, s := range ss {
		if len(s.xy) == 0 {
			continue
		}
		l, err := plotter.NewLine(s.xy)
		if err != nil {
			return "", fmt.Errorf("chart %q: %s: %w", title, s.name, err)
		}
		l.Color = palette[i%len(palette)]
		l.Width = vg.Points(1.5)
		if i >= len(palette) {
			// The colours come round again: dashed the second time.
			l.Dashes = []vg.Length{vg.Points(5), vg.Points(3)}
		}
		p.Add(l)
		p.Legend.Add(s.name, l)
	}
	p.Y.Max = math.Max(p.Y.Max, top)
	return renderSVG(p)
}

// histChart plots a distribution's histogram.
func histChart(title, xLabel string, d Dist) (string, error) {
	if len(d.Hist) == 0 {
		return "", nil
	}
	p := plot.New()
	p.Title.Text = fmt.Sprintf("%s (n=%d, p50 %.0f, p90 %.0f, p99 %.0f)", title, d.Count, d.P50, d.P90, d.P99)
	p.X.Label.Text = xLabel
	p.Y.Label.Text = "count"
	bins := make([]plotter.HistogramBin, len(d.Hist))
	for i, b := range d.Hist {
		bins[i] = plotter.HistogramBin{Min: b.Lo, Max: b.Hi, Weight: float64(b.Count)}
	}
	h := &plotter.Histogram{Bins: bins, Width: bins[0].Max - bins[0].Min, FillColor: palette[0], LineStyle: plotter.DefaultLineStyle}
	p.Add(h)
	return renderSVG(p)
}

// timeCharts are the report's charts over time.
func timeCharts(r *Result) ([]string, error) {
	col := func(f func(Sample) float64) plotter.XYs {
		xy := make(plotter.XYs, 0, len(r.Series))
		for _, s := range r.Series {
			if v := f(s); !math.IsNaN(v) {
				xy = append(xy, plotter.XY{X: r.simOfDay(s.SimS), Y: v})
			}
		}
		return xy
	}
	// Rates per wall second, as rates per simulated minute.
	perSimMin := 60 / math.Max(r.Scenario.Speedup, 1)
	share := func(a, b int64) float64 {
		if b <= 0 {
			return math.NaN()
		}
		return 100 * float64(a) / float64(b)
	}
	specs := []struct {
		title, y string
		ss       []series
	}{
		{"Drivers", "drivers", []series{
			{"online", col(func(s Sample) float64 { return float64(s.Online) })},
			{"busy (accepted to drop-off)", col(func(s Sample) float64 { return float64(s.Busy) })},
			{"available (no offer, no trip)", col(func(s Sample) float64 { return float64(max(s.Online-s.Busy-s.Offered, 0)) })},
			{"thinking about an offer", col(func(s Sample) float64 { return float64(s.Offered) })},
		}},
		{"Fleet state: is it steady?", "% of online drivers", []series{
			{"utilisation (busy)", col(func(s Sample) float64 { return share(s.Busy, s.Online) })},
			{"idle (available)", col(func(s Sample) float64 { return share(max(s.Online-s.Busy-s.Offered, 0), s.Online) })},
		}},
		{"Riders", "riders; per simulated minute", []series{
			{"waiting for a driver", col(func(s Sample) float64 { return float64(s.Waiting) })},
			{"requests per simulated minute", col(func(s Sample) float64 { return s.RequestsPerS * perSimMin })},
			{"matches per simulated minute", col(func(s Sample) float64 { return s.MatchesPerS * perSimMin })},
		}},
		{"Location updates (service load)", "updates per wall second", []series{
			{"offered", col(func(s Sample) float64 { return s.UpdatesOfferedPerS })},
			{"sent", col(func(s Sample) float64 { return s.UpdatesSentPerS })},
			{"rejected", col(func(s Sample) float64 { return s.RejectedPerS })},
		}},
	}
	var lat []series
	for _, m := range r.Methods() {
		lat = append(lat, series{m, col(func(s Sample) float64 {
			if v, ok := s.P99Ms[m]; ok {
				return v
			}
			return math.NaN()
		})})
	}
	specs = append(specs, struct {
		title, y string
		ss       []series
	}{"API p99 latency per wall second", "ms (wall)", lat})
	axis := axisOf(r)
	var out []string
	for _, s := range specs {
		svg, err := lineChart(s.title, "simulated time of day", s.y, s.ss, axis)
		if err != nil {
			return nil, err
		}
		out = append(out, svg)
	}
	zc, err := zoneCharts(r)
	if err != nil {
		return nil, err
	}
	out = append(out, zc...)
	w := r.window()
	hists := []struct {
		title, x string
		d        Dist
	}{
		{"Time to match (with the drivers' think time)", "ms (wall)", w.TimeToMatchMs},
		{"Dispatch service time (less the think time)", "ms (wall)", w.ServiceMs},
		{"Wait to pickup", "simulated s", w.WaitToPickupS},
		{"Pickup distance", "m (great circle)", r.PickupDistanceM},
		{"Pickup ETA", "simulated s", w.PickupETAS},
	}
	for _, h := range hists {
		svg, err := histChart(h.title, h.x, h.d)
		if err != nil {
			return nil, err
		}
		if svg != "" {
			out = append(out, svg)
		}
	}
	return slices.Clip(out), nil
}

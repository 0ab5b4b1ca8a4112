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

// lineChart plots series against the same x axis.
func lineChart(title, xLabel, yLabel string, ss []series) (string, error) {
	p := plot.New()
	p.Title.Text = title
	p.X.Label.Text = xLabel
	p.Y.Label.Text = yLabel
	p.Y.Min = 0
	p.Add(plotter.NewGrid())
	p.Legend.Top = true
	p.Legend.Left = true
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
	// Headroom above the data for the legend.
	p.Y.Max = math.Max(p.Y.Max, 1) * (1 + 0.12*float64(len(ss)))
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
				xy = append(xy, plotter.XY{X: s.T, Y: v})
			}
		}
		return xy
	}
	specs := []struct {
		title, y string
		ss       []series
	}{
		{"Drivers", "drivers", []series{
			{"online", col(func(s Sample) float64 { return float64(s.Online) })},
			{"busy (accepted to drop-off)", col(func(s Sample) float64 { return float64(s.Busy) })},
			{"thinking about an offer", col(func(s Sample) float64 { return float64(s.Offered) })},
		}},
		{"Riders", "riders, per second", []series{
			{"waiting for a driver", col(func(s Sample) float64 { return float64(s.Waiting) })},
			{"requests/s", col(func(s Sample) float64 { return s.RequestsPerS })},
			{"matches/s", col(func(s Sample) float64 { return s.MatchesPerS })},
		}},
		{"Location updates", "updates per second", []series{
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
	}{"p99 latency per second", "ms", lat})
	var out []string
	for _, s := range specs {
		svg, err := lineChart(s.title, "seconds into the run", s.y, s.ss)
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
	hists := []struct {
		title, x string
		d        Dist
	}{
		{"Time to match", "ms", r.TimeToMatchMs},
		{"Pickup distance", "m (great circle)", r.PickupDistanceM},
		{"Pickup ETA", "simulated s", r.PickupETAS},
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

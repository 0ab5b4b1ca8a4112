package report

import (
	"fmt"
	"image/color"
	"io"
	"math"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
)

// NodeLoad is the load per matcher node over a run and the ring's splits
// and merges (manual or automatic), sampled through AdminService
// ListShards and GetRing: what automatic splitting is judged by.
type NodeLoad struct {
	// QueryWeight is a nearby query's weight in the load, in updates.
	QueryWeight float64 `json:"query_weight"`
	// Nodes are the matchers, sorted.
	Nodes []string `json:"nodes"`
	// HotFromS and HotToS bound the hot spot (the stadium scenario), wall
	// seconds since the window started; both 0 without one.
	HotFromS float64 `json:"hot_from_s,omitempty"`
	HotToS   float64 `json:"hot_to_s,omitempty"`
	// HotCell is the shard (at the ring's shard resolution) that holds the
	// hot spot's center; its load counts every shard below it.
	HotCell string           `json:"hot_cell,omitempty"`
	Samples []NodeLoadSample `json:"samples"`
	Changes []RingChange     `json:"changes"`
	Summary NodeLoadSummary  `json:"summary"`
}

// NodeLoadSample is one sample of the load per node.
type NodeLoadSample struct {
	// T is wall seconds since the window started.
	T float64 `json:"t"`
	// Epoch is the ring's epoch.
	Epoch uint64 `json:"epoch"`
	// Load is each node's load: updates/s + QueryWeight × queries/s over
	// its shards (the matchers' decayed rates).
	Load map[string]float64 `json:"load"`
	// MaxOverMean is the busiest node's load over the mean of the nodes
	// that own shards; 0 without load.
	MaxOverMean float64 `json:"max_over_mean"`
	// HotLoad is the load of HotCell and the shards below it.
	HotLoad float64 `json:"hot_load"`
}

// RingChange is a split or merge seen between two samples.
type RingChange struct {
	T      float64 `json:"t"`
	Epoch  uint64  `json:"epoch"`
	Action string  `json:"action"` // "split" or "merge"
	Cell   string  `json:"cell"`
}

// NodeLoadSummary are the figures the load chart is read for.
type NodeLoadSummary struct {
	// BeforeHot is the worst max/mean before the hot spot forms (from 15 s
	// into the window: the matchers' rates start at zero). This and the
	// other worst figures are -1 when no sample falls in their span.
	BeforeHot float64 `json:"before_hot"`
	// FormedS is when the hot spot formed: the first sample after HotFromS
	// whose HotLoad reaches 90% of its peak during the event.
	FormedS float64 `json:"formed_s"`
	// Hot is the worst max/mean from 30 s after FormedS until HotToS.
	Hot float64 `json:"hot"`
	// BalancedAfterS is how long after FormedS max/mean fell to 1.3 or
	// below and stayed there until HotToS; -1 if it never did.
	BalancedAfterS float64 `json:"balanced_after_s"`
	// AfterDispersal is the worst max/mean from 30 s after HotToS to the
	// end; AfterMerge from 30 s after the last merge to the end (-1 without
	// a merge).
	AfterDispersal float64 `json:"after_dispersal"`
	AfterMerge     float64 `json:"after_merge"`
	// Splits and Merges count the ring changes; MaxChangesPerCell is the
	// most changes of any one cell (a split and its merge are two).
	Splits            int `json:"splits"`
	Merges            int `json:"merges"`
	MaxChangesPerCell int `json:"max_changes_per_cell"`
}

// measure names the load: "updates/s", or with queries "updates/s + w ×
// queries/s".
func (n *NodeLoad) measure() string {
	if n.QueryWeight == 0 {
		return "updates/s"
	}
	return fmt.Sprintf("updates/s + %g × queries/s", n.QueryWeight)
}

// BalanceTarget is the max/mean the summary checks against (Uber's Gairos
// reached 1.3 by resharding; the autosplit done-when).
const BalanceTarget = 1.3

// Summarize fills n.Summary from the samples and changes.
func (n *NodeLoad) Summarize() {
	s := NodeLoadSummary{BalancedAfterS: -1}
	worst := func(from, to float64) float64 {
		w := -1.0 // no sample in [from, to)
		for _, x := range n.Samples {
			if x.T >= from && x.T < to {
				w = max(w, x.MaxOverMean)
			}
		}
		return w
	}
	end := 0.0 // past the last sample
	if len(n.Samples) > 0 {
		end = n.Samples[len(n.Samples)-1].T + 1
	}
	hot := n.HotToS > n.HotFromS
	if hot {
		s.BeforeHot = worst(15, n.HotFromS)
		peak := 0.0
		for _, x := range n.Samples {
			if x.T >= n.HotFromS && x.T <= n.HotToS {
				peak = max(peak, x.HotLoad)
			}
		}
		s.FormedS = n.HotFromS
		for _, x := range n.Samples {
			if x.T >= n.HotFromS && x.HotLoad >= 0.9*peak {
				s.FormedS = x.T
				break
			}
		}
		s.Hot = worst(s.FormedS+30, n.HotToS)
		// The last sample of the event above the target: balanced after it.
		last := s.FormedS
		for _, x := range n.Samples {
			if x.T >= s.FormedS && x.T <= n.HotToS && x.MaxOverMean > BalanceTarget {
				last = x.T
			}
		}
		if last < n.HotToS {
			s.BalancedAfterS = last - s.FormedS
		}
		s.AfterDispersal = worst(n.HotToS+30, end)
	} else {
		s.BeforeHot = worst(15, end)
	}
	per := map[string]int{}
	lastMerge := -1.0
	for _, c := range n.Changes {
		per[c.Cell]++
		switch c.Action {
		case "split":
			s.Splits++
		case "merge":
			s.Merges++
			lastMerge = c.T
		}
	}
	for _, k := range per {
		s.MaxChangesPerCell = max(s.MaxChangesPerCell, k)
	}
	s.AfterMerge = -1
	if lastMerge >= 0 {
		s.AfterMerge = worst(lastMerge+30, end)
	}
	n.Summary = s
}

// WriteNodeLoad prints the load summary: a few lines under the KPI table.
func WriteNodeLoad(w io.Writer, n *NodeLoad) error {
	if n == nil {
		return nil
	}
	s := n.Summary
	var err error
	p := func(format string, args ...any) {
		if err == nil {
			_, err = fmt.Fprintf(w, format, args...)
		}
	}
	p("node load (%s per matcher), max/mean:\n", n.measure())
	if n.HotToS > n.HotFromS {
		p("  before the hot spot          %s (worst, from 15 s)\n", maxMeanText(s.BeforeHot))
		p("  hot spot formed at           %.0f s (from %.0f s to %.0f s)\n", s.FormedS, n.HotFromS, n.HotToS)
		p("  from 30 s after it formed    %s (worst)\n", maxMeanText(s.Hot))
		if s.BalancedAfterS >= 0 {
			p("  at or under %.1f after       %.0f s, until it dispersed\n", BalanceTarget, s.BalancedAfterS)
		} else {
			p("  at or under %.1f             never for good while it lasted\n", BalanceTarget)
		}
		p("  from 30 s after dispersal    %s (worst)\n", maxMeanText(s.AfterDispersal))
	} else {
		p("  over the run                 %s (worst, from 15 s)\n", maxMeanText(s.BeforeHot))
	}
	if s.Merges > 0 {
		p("  from 30 s after last merge   %s (worst)\n", maxMeanText(s.AfterMerge))
	}
	p("ring changes: %d splits, %d merges, at most %d changes of one cell\n", s.Splits, s.Merges, s.MaxChangesPerCell)
	return err
}

// maxMeanText formats a max/mean figure, "n/a" for -1 (no sample).
func maxMeanText(v float64) string {
	if v < 0 {
		return "n/a"
	}
	return fmt.Sprintf("%.2f", v)
}

// splitColor and mergeColor mark the ring changes on the load chart;
// hotFill shades the hot spot.
var (
	splitColor = color.RGBA{0, 0, 0, 200}
	mergeColor = color.RGBA{120, 120, 120, 200}
	hotFill    = color.NRGBA{230, 159, 0, 70}
)

// nodeLoadCharts are the load per node over time, with the splits and
// merges marked and the hot spot shaded, and max/mean against the target.
// None without samples.
func nodeLoadCharts(r *Result) ([]string, error) {
	n := r.NodeLoad
	if n == nil || len(n.Samples) == 0 {
		return nil, nil
	}
	var ss []series
	top := 1.0
	for _, id := range n.Nodes {
		xy := make(plotter.XYs, 0, len(n.Samples))
		for _, x := range n.Samples {
			xy = append(xy, plotter.XY{X: x.T, Y: x.Load[id]})
			top = max(top, x.Load[id])
		}
		ss = append(ss, series{name: "matcher " + id, xy: xy})
	}
	load, err := markedChart(n, "Load per matcher ("+n.measure()+"); splits solid, merges dashed", "load units/s", ss, top*headroom(len(ss)+3))
	if err != nil {
		return nil, err
	}
	ratio := make(plotter.XYs, 0, len(n.Samples))
	rtop := 1.5
	for _, x := range n.Samples {
		ratio = append(ratio, plotter.XY{X: x.T, Y: x.MaxOverMean})
		rtop = max(rtop, x.MaxOverMean)
	}
	target := plotter.XYs{{X: n.Samples[0].T, Y: BalanceTarget}, {X: n.Samples[len(n.Samples)-1].T, Y: BalanceTarget}}
	bal, err := markedChart(n, "Busiest matcher over the mean (max/mean); target "+fmt.Sprint(BalanceTarget),
		"max/mean", []series{{name: "max/mean", xy: ratio}, {name: "target", xy: target}}, rtop*headroom(5))
	if err != nil {
		return nil, err
	}
	return []string{load, bal}, nil
}

// markedChart is a line chart over wall seconds with n's hot spot shaded
// and its ring changes drawn as vertical lines up to top.
func markedChart(n *NodeLoad, title, yLabel string, ss []series, top float64) (string, error) {
	p := plot.New()
	p.Title.Text = title
	p.X.Label.Text = "wall seconds since the window started"
	p.Y.Label.Text = yLabel
	p.Y.Min, p.Y.Max = 0, top
	p.Add(plotter.NewGrid())
	p.Legend.Top = true
	p.Legend.Left = true
	if n.HotToS > n.HotFromS {
		shade, err := plotter.NewPolygon(plotter.XYs{{X: n.HotFromS, Y: 0}, {X: n.HotToS, Y: 0}, {X: n.HotToS, Y: top}, {X: n.HotFromS, Y: top}})
		if err != nil {
			return "", fmt.Errorf("chart %q: hot spot: %w", title, err)
		}
		shade.Color = hotFill
		shade.LineStyle.Width = 0
		p.Add(shade)
		p.Legend.Add("hot spot", shade)
	}
	legend := map[string]bool{}
	for _, c := range n.Changes {
		l, err := plotter.NewLine(plotter.XYs{{X: c.T, Y: 0}, {X: c.T, Y: top}})
		if err != nil {
			return "", fmt.Errorf("chart %q: %s: %w", title, c.Action, err)
		}
		l.Width = vg.Points(0.8)
		l.Color = splitColor
		if c.Action == "merge" {
			l.Color = mergeColor
			l.Dashes = []vg.Length{vg.Points(4), vg.Points(3)}
		}
		p.Add(l)
		if !legend[c.Action] {
			legend[c.Action] = true
			p.Legend.Add(c.Action, l)
		}
	}
	for i, s := range ss {
		l, err := plotter.NewLine(s.xy)
		if err != nil {
			return "", fmt.Errorf("chart %q: %s: %w", title, s.name, err)
		}
		l.Color = palette[i%len(palette)]
		l.Width = vg.Points(1.5)
		p.Add(l)
		p.Legend.Add(s.name, l)
	}
	return renderSVG(p)
}

// headroom is the factor above the data that leaves room for a legend of
// entries lines at the top.
func headroom(entries int) float64 { return 1 + 0.12*float64(entries+1) }

// appendNodeLoadCharts appends r's load charts to charts.
func appendNodeLoadCharts(charts []string, r *Result) ([]string, error) {
	more, err := nodeLoadCharts(r)
	return append(charts, more...), err
}

// MaxOverMean is the largest value of load over the mean of nodes (every
// node counts, with 0 for one that is not in load); 0 without load.
func MaxOverMean(load map[string]float64, nodes []string) float64 {
	total, most := 0.0, 0.0
	for _, id := range nodes {
		total += load[id]
		most = math.Max(most, load[id])
	}
	if total == 0 || len(nodes) == 0 {
		return 0
	}
	return most / (total / float64(len(nodes)))
}

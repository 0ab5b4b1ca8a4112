package report

import (
	"fmt"
	"math"
)

// matchPart is one row of the time to match taken apart.
type matchPart struct {
	Name, Clock, Def    string
	Count               int64
	Mean, P50, P90, P99 string
}

func newMatchPart(name, clock, format string, d Dist, def string) matchPart {
	f := func(v float64) string {
		if d.Count == 0 {
			return "-"
		}
		return fmt.Sprintf(format, v)
	}
	return matchPart{Name: name, Clock: clock, Def: def, Count: d.Count, Mean: f(d.Mean), P50: f(d.P50), P90: f(d.P90), P99: f(d.P99)}
}

// heatTable is one measure over the districts, laid out as the city:
// rows north to south, columns west to east.
type heatTable struct {
	Title string
	Rows  [][]heatCell
}

// heatCell is one district's value and its shade.
type heatCell struct{ Label, Value, Color string }

// districtGrid is the districts' layout: their zone ids (city.Zones), north
// row first.
var districtGrid = [3][2]string{{"district-nw", "district-ne"}, {"district-cw", "district-ce"}, {"district-sw", "district-se"}}

// heatTables lays the districts' KPIs out as the city, one table per
// measure; none when the zones are not the standard districts.
func heatTables(zs []ZoneKPI) []heatTable {
	byID := map[string]ZoneKPI{}
	for _, z := range zs {
		byID[z.ID] = z
	}
	for _, row := range districtGrid {
		for _, id := range row {
			if _, ok := byID[id]; !ok {
				return nil
			}
		}
	}
	// floor is the least value shaded darkest, so a few tenths of a
	// percent do not look like a fire.
	measures := []struct {
		title  string
		format string
		floor  float64
		value  func(ZoneKPI) float64
	}{
		{"demand: requests per sim. minute", "%.1f", 0, func(z ZoneKPI) float64 { return z.RequestsPerMin }},
		{"supply: available drivers", "%.0f", 0, func(z ZoneKPI) float64 { return z.AvailableMean }},
		{"demand share / supply share (above 1: short of drivers)", "%.2f", 2, func(z ZoneKPI) float64 {
			if z.AvailableMean < 0 || z.SupplyShare == 0 {
				return math.NaN()
			}
			return z.DemandShare / z.SupplyShare
		}},
		{"unmatched requests, %", "%.1f", 10, func(z ZoneKPI) float64 { return 100 * z.UnmatchedShare }},
		{"pickup ETA p90, s", "%.0f", 0, func(z ZoneKPI) float64 { return z.ETAP90S }},
	}
	var out []heatTable
	for _, m := range measures {
		hi := m.floor
		for _, row := range districtGrid {
			for _, id := range row {
				if v := m.value(byID[id]); v > hi {
					hi = v
				}
			}
		}
		t := heatTable{Title: m.title}
		for _, row := range districtGrid {
			var cells []heatCell
			for _, id := range row {
				z := byID[id]
				v := m.value(z)
				c := heatCell{Label: z.Name, Value: "-", Color: "#f4f4f4"}
				if !math.IsNaN(v) && v >= 0 {
					c.Value = fmt.Sprintf(m.format, v)
					c.Color = heatColor(ratio(v, hi))
				}
				cells = append(cells, c)
			}
			t.Rows = append(t.Rows, cells)
		}
		out = append(out, t)
	}
	return out
}

// heatColor shades x in [0, 1] from pale yellow to deep orange.
func heatColor(x float64) string {
	x = min(max(x, 0), 1)
	lerp := func(a, b float64) int { return int(math.Round(a + (b-a)*x)) }
	return fmt.Sprintf("#%02x%02x%02x", lerp(255, 230), lerp(247, 120), lerp(220, 20))
}

// fillReading fills the page's reading aids: the window, the definitions,
// the time to match taken apart, the districts' heat tables and the
// comparison.
func (p *page) fillReading(r *Result, c *compareSection) {
	w := r.window()
	p.Window = w
	p.Start = ClockTime(r.simOfDay(0))
	p.WindowFrom, p.WindowTo = ClockTime(r.simOfDay(w.FromSimS)), ClockTime(r.simOfDay(w.ToSimS))
	p.Definitions = Definitions(r)
	p.Heat, p.HeatRows = heatTables(r.ZoneKPIs), []string{"north", "central", "south"}
	p.Compare = c
	if c != nil {
		p.KeyLabels = c.Labels
		for _, row := range c.Rows {
			if !row.Load {
				p.KeyRows = append(p.KeyRows, row)
			}
		}
	} else {
		p.KeyLabels = []string{"value"}
		for _, k := range p.KPIs {
			if k.load {
				continue
			}
			name := k.Name
			if k.Unit != "" {
				name += " (" + k.Unit + ")"
			}
			p.KeyRows = append(p.KeyRows, compareRow{Name: name, Values: []string{k.Format()}, Def: k.Definition})
		}
	}
	answer := Dist{}
	if l, ok := r.Latency["Connect.OfferAnswer"]; ok {
		answer = Dist{Count: l.Count, P50: l.P50, P90: l.P90, P99: l.P99, Mean: math.NaN()}
	}
	think := fmt.Sprintf("Offer to answer. Drawn by the simulator from %.0f–%.0f s simulated; in wall time that is divided by the speedup (%gx), and it is inside the time to match.",
		r.Scenario.ThinkMinS, r.Scenario.ThinkMaxS, r.Scenario.Speedup)
	p.Parts = []matchPart{
		newMatchPart("time to match (rider's view)", "wall ms", "%.0f", w.TimeToMatchMs, "Request to assignment: service time and the drivers' think time together."),
		newMatchPart("dispatch service time", "wall ms", "%.0f", w.ServiceMs, "Time to match less the think time of the trip's offers: the service's share."),
		newMatchPart("first offer", "wall ms", "%.0f", w.FirstOfferMs, "Request to the first offer reaching a driver: finding a driver and sending the offer."),
		newMatchPart("confirmation", "wall ms", "%.1f", answer, "An acceptance's round trip until the assignment arrives (Connect.OfferAnswer, whole run)."),
		newMatchPart("driver think time", "simulated s", "%.1f", w.ThinkS, think),
	}
	p.Parts[3].Mean = "-"
}

package report

import (
	"bytes"
	"fmt"
	"html/template"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/geomatch/geomatch/simulator/city"
)

// page is what the report template shows.
type page struct {
	Title    string
	Result   *Result
	Table    string
	KPIs     []KPI
	Charts   []template.HTML
	Map      template.HTML
	Owners   []legendItem
	Outcomes []legendItem
	Methods  []string
	// SimMinutes is the window in simulated minutes.
	SimMinutes float64
	// Start, WindowFrom and WindowTo are the run's start and measured
	// window as simulated times of day (HH:MM).
	Start, WindowFrom, WindowTo string
	Window                      Window
	Definitions                 []Definition
	// Heat are the districts' grid tables; Compare the comparison
	// section (nil: Run.NoComparison says why).
	Heat     []heatTable
	HeatRows []string
	Compare  *compareSection
	// KeyLabels head the key figures' value columns (the modes compared,
	// or "value"); KeyRows are the headline KPIs.
	KeyLabels []string
	KeyRows   []compareRow
	// Parts take the time to match apart.
	Parts []matchPart
}

type legendItem struct{ Name, Color string }

var reportTmpl = template.Must(template.New("report").Funcs(template.FuncMap{"pct": func(x float64) float64 { return 100 * x }}).Parse(`<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>{{.Title}}</title>
<style>
body{font-family:system-ui,sans-serif;margin:2em auto;max-width:1100px;color:#222;padding:0 1em}
h1{font-size:1.5em}h2{font-size:1.2em;margin-top:2em;border-bottom:1px solid #ddd}
table{border-collapse:collapse;margin:1em 0}td,th{padding:.25em .8em;border-bottom:1px solid #eee;text-align:right}
td:first-child,th:first-child{text-align:left}pre{background:#f6f6f6;padding:1em;overflow-x:auto;font-size:.85em}
.legend span{display:inline-block;margin-right:1.2em}.legend i{display:inline-block;width:.9em;height:.9em;margin-right:.3em;vertical-align:middle}
.chart{margin:1em 0}.warn{color:#a40}
td.def,th.def{text-align:left;color:#555;font-size:.85em;max-width:36em}td:first-child{white-space:nowrap}table.small td,table.small th{font-size:.85em;padding:.2em .5em}.note{background:#f4f7fb;padding:.6em 1em;border-left:3px solid #0072b2}
tr.synthetic td{color:#777;font-style:italic}.heat{display:flex;gap:1.5em;flex-wrap:wrap}.heat table{margin:.5em 0}
.heat td{width:5.5em;height:2.2em;text-align:center;border:1px solid #fff}.heat th{font-size:.75em;color:#777;font-weight:normal;text-align:center;padding:0 .3em}.heat caption{font-size:.85em;color:#555;caption-side:top}
dl.defs dt{font-weight:bold;margin-top:.6em}dl.defs dd{margin-left:1.5em;color:#333}.better{font-weight:bold}
</style></head><body>
<h1>{{.Title}}</h1>
{{with .Result}}<p>{{.Scenario.City}}: {{.Scenario.Drivers}} drivers, {{if .Scenario.MatchMode}}{{.Scenario.MatchMode}}{{else}}the target's{{end}} matching,
{{printf "%.0f" .Run.WallS}} s of wall time at {{.Scenario.Speedup}}x ({{printf "%.1f" $.SimMinutes}} simulated minutes from {{$.Start}}),
seed {{.Scenario.Seed}}, {{.Scenario.Transport}} transport, reports every {{.Scenario.UpdateIntervalS}} s, target {{.Scenario.Target}}; started {{.Run.StartedAt}}.</p>{{end}}
<p class="note">The KPIs cover the measured window, <b>{{.WindowFrom}}–{{.WindowTo}}</b> simulated;
the warm-up before it (shaded on the charts) is left out.{{if .Result.Scenario.WarmStart}} The fleet started warm: {{.Result.Run.CarriedTrips}} drivers were already on (synthetic, carried-over) trips.{{end}}
{{with .Result.Run.WarmupNote}}{{.}}{{end}}
Every time axis is the simulated time of day; service times are wall milliseconds. Terms are defined next to each figure and in <a href="#reading">Reading this report</a>.</p>
<h2>Key figures</h2>
{{with .Compare}}<p>Matching modes side by side: {{range $i, $l := .Labels}}{{if $i}} vs {{end}}<b>{{$l}}</b>{{end}} (this report's run first; see <a href="#compare">the comparison</a>).</p>{{end}}
<table class="kpis"><tr><th>KPI</th>{{range .KeyLabels}}<th>{{.}}</th>{{end}}{{if .Compare}}<th>change</th><th>better</th>{{end}}<th class="def">what it is</th></tr>
{{range .KeyRows}}<tr><td>{{.Name}}</td>{{range .Values}}<td>{{.}}</td>{{end}}{{if $.Compare}}<td>{{.Change}}</td><td class="better">{{.Better}}</td>{{end}}<td class="def">{{.Def}}</td></tr>
{{end}}</table>
{{if .Result.ZoneKPIs}}<h2>Where: supply and demand by zone</h2>
<p>The six districts as they lie on the map (north at the top), over the measured window. Darker is more. Supply is the available drivers inside (the service's fence counts{{if not .Result.Zones}}: not available from this target{{end}}); demand the requests with their pickup there.</p>
<div class="heat">{{range .Heat}}<table><caption>{{.Title}}</caption>
<tr><th></th><th>west</th><th>east</th></tr>
{{range $i, $row := .Rows}}<tr><th>{{index $.HeatRows $i}}</th>{{range $row}}<td style="background:{{.Color}}" title="{{.Label}}">{{.Value}}</td>{{end}}</tr>
{{end}}</table>{{end}}</div>
<table class="small"><tr><th>zone</th><th>requests</th><th>per sim. min</th><th>demand share</th><th>available drivers</th><th>supply share</th><th>unmatched</th><th>unmatched share</th><th>ETA mean (s)</th><th>ETA p90 (s)</th><th>wait to pickup mean (s)</th></tr>
{{range .Result.ZoneKPIs}}<tr><td>{{.Name}}</td><td>{{.Requests}}</td><td>{{printf "%.1f" .RequestsPerMin}}</td><td>{{if eq .Kind "district"}}{{printf "%.1f%%" (pct .DemandShare)}}{{else}}-{{end}}</td><td>{{if ge .AvailableMean 0.0}}{{printf "%.1f" .AvailableMean}}{{else}}-{{end}}</td><td>{{if and (eq .Kind "district") (ge .AvailableMean 0.0)}}{{printf "%.1f%%" (pct .SupplyShare)}}{{else}}-{{end}}</td><td>{{.Unmatched}}</td><td>{{printf "%.1f%%" (pct .UnmatchedShare)}}</td><td>{{printf "%.0f" .ETAMeanS}}</td><td>{{printf "%.0f" .ETAP90S}}</td><td>{{printf "%.0f" .WaitMeanS}}</td></tr>
{{end}}</table>{{end}}
<h2 id="compare">Matching modes compared</h2>
{{with .Compare}}<p>The same scenario (seed {{.Seed}}) on a fresh embedded cluster per matching mode; the key figures above show each mode's. Full reports: {{range $i, $l := .Labels}}{{if $i}}, {{end}}<a href="{{$l}}/index.html">{{$l}}</a>{{end}}.
The service's windows and timeouts run on the wall clock while the city runs {{$.Result.Scenario.Speedup}}x faster, so a batch window weighs {{$.Result.Scenario.Speedup}}x more in the simulated waits than in a real city; compare the wall-clock service times for the service's own cost. The service's load and latency:</p>
<table><tr><th>KPI</th>{{range .Labels}}<th>{{.}}</th>{{end}}<th>change</th><th>better</th></tr>
{{range .Rows}}{{if .Load}}<tr><td>{{.Name}}</td>{{range .Values}}<td>{{.}}</td>{{end}}<td>{{.Change}}</td><td class="better">{{.Better}}</td></tr>
{{end}}{{end}}</table>{{else}}<p class="note">No comparison: {{with .Result.Run.NoComparison}}{{.}}{{else}}this run was not asked for one (--compare greedy,batch runs each matching mode on its own embedded cluster).{{end}}</p>{{end}}
<h2>Trip outcomes</h2>
<table><tr><th>outcome</th><th>trips</th><th class="def">what it is</th></tr>
{{with .Result.Trips}}<tr><td>ride requests</td><td>{{.Requests}}</td><td class="def">every trip the run created, counted once by its final state</td></tr>
<tr><td>completed</td><td>{{.Completed}}</td><td class="def">real: dropped off during the window</td></tr>
<tr><td>no driver</td><td>{{.NoDriver}}</td><td class="def">real: the service found no driver (none near, or all declined)</td></tr>
<tr><td>rider gave up</td><td>{{.RiderGaveUp}}</td><td class="def">real: the rider's patience ran out before a driver was assigned</td></tr>
<tr><td>cancelled after match</td><td>{{.CancelledAfterMatch}}</td><td class="def">real: cancelled once a driver was assigned</td></tr>
<tr class="synthetic"><td>finished at the end</td><td>{{.CompletedAtEnd}}</td><td class="def">wind-down, synthetic: the rider was aboard when the window closed; finished at once</td></tr>
<tr class="synthetic"><td>cancelled at the end</td><td>{{.CancelledAtEnd}}</td><td class="def">wind-down, synthetic: waiting ({{.WaitingAtEnd}}) or on the way to the pickup when the window closed</td></tr>
<tr class="synthetic"><td>open</td><td>{{.Open}}</td><td class="def">not final even after the wind-down</td></tr>{{end}}
{{if .Result.Scenario.WarmStart}}<tr class="synthetic"><td>carried over</td><td>{{.Result.Run.CarriedTrips}}</td><td class="def">warm start, synthetic: drivers already on a trip when the run began ({{.Window.CarriedDropOffs}} dropped off in the window); not in the service, not in the counts above</td></tr>{{end}}
</table>
<h2>Time to match, taken apart</h2>
<table><tr><th>part</th><th>clock</th><th>count</th><th>mean</th><th>p50</th><th>p90</th><th>p99</th><th class="def">what it is</th></tr>
{{range .Parts}}<tr><td>{{.Name}}</td><td>{{.Clock}}</td><td>{{.Count}}</td><td>{{.Mean}}</td><td>{{.P50}}</td><td>{{.P90}}</td><td>{{.P99}}</td><td class="def">{{.Def}}</td></tr>
{{end}}</table>
<h2>API latency (ms)</h2>
<table><tr><th>method</th><th>calls</th><th>errors</th><th>p50</th><th>p90</th><th>p99</th><th>max</th></tr>
{{range $m := .Methods}}{{with index $.Result.Latency $m}}<tr><td>{{$m}}</td><td>{{.Count}}</td><td>{{.Errors}}</td><td>{{printf "%.2f" .P50}}</td><td>{{printf "%.2f" .P90}}</td><td>{{printf "%.2f" .P99}}</td><td>{{printf "%.2f" .Max}}</td></tr>{{end}}
{{end}}</table>
{{with .Result.Zones}}<h2>Zones</h2>
<p>The city's named zones, put as fences of set {{.Set}}: available drivers inside (FenceService.GetFenceCounts every sample interval) and fence events (an EventService subscription to the set):
{{.Events}} events, {{printf "%.1f" .EventsPerSMean}}/s on average, {{printf "%.1f" .EventsPerSPeak}}/s at the peak.</p>
<table><tr><th>zone</th><th>kind</th><th>available mean</th><th>available peak</th><th>inside mean</th><th>inside peak</th><th>enters</th><th>exits</th><th>inside at the end</th><th>available at the end</th></tr>
{{range .Zones}}<tr><td>{{.Name}}</td><td>{{.Kind}}</td><td>{{printf "%.1f" .AvailableMean}}</td><td>{{.AvailablePeak}}</td><td>{{printf "%.1f" .InsideMean}}</td><td>{{.InsidePeak}}</td><td>{{.Enters}}</td><td>{{.Exits}}</td><td>{{.EndInside}}</td><td>{{.EndAvailable}}</td></tr>
{{end}}</table>{{end}}
<h2>Over time</h2>
{{range .Charts}}<div class="chart">{{.}}</div>
{{end}}
<h2>The city</h2>
<p>Shards holding drivers at the end of the run, coloured by the matcher that owns them (hover for the cell), the streets, and a sample of pickups by outcome{{if .Result.Zones}}; the zones are dashed (hover for their supply){{end}}.</p>
<p class="legend">{{range .Owners}}<span><i style="background:{{.Color}};opacity:.5"></i>{{.Name}}</span>{{end}}</p>
<p class="legend">{{range .Outcomes}}<span><i style="background:{{.Color}};border-radius:50%"></i>{{.Name}}</span>{{end}}</p>
{{.Map}}
<h2>Summary</h2>
<pre>{{.Table}}</pre>
<h2 id="reading">Reading this report</h2>
<dl class="defs">{{range .Definitions}}<dt>{{.Term}}</dt><dd>{{.Meaning}}</dd>
{{end}}</dl>
{{with .Result.Run.Warnings}}<h2>Warnings</h2><ul class="warn">{{range .}}<li>{{.}}</li>{{end}}</ul>{{end}}
<p>The same figures as JSON: <a href="report.json">report.json</a> (the KPIs are under <code>window</code> and <code>zone_kpis</code>).</p>
</body></html>
`))

// WriteHTML writes the run's report into dir: index.html (charts and map
// inline, no external resources) and report.json.
func WriteHTML(dir string, r *Result, g *city.Graph) error {
	return writeReport(dir, r, g, nil)
}

// writeReport writes r's report into dir, with the comparison section
// when c is not nil.
func writeReport(dir string, r *Result, g *city.Graph, c *compareSection) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("write HTML report: %w", err)
	}
	charts, err := timeCharts(r)
	if err == nil {
		charts, err = appendNodeLoadCharts(charts, r)
	}
	if err != nil {
		return fmt.Errorf("write HTML report: %w", err)
	}
	var table bytes.Buffer
	if err := WriteTable(&table, r); err != nil {
		return err
	}
	p := page{
		Title:  fmt.Sprintf("geomatch sim: %s, %d drivers, %s", r.Scenario.City, r.Scenario.Drivers, orUnknown(r.Scenario.MatchMode)+" matching"),
		Result: r, SimMinutes: r.Run.SimS / 60, Table: strings.TrimLeft(table.String(), "\n"), KPIs: KPIs(r), Methods: r.Methods(),
		Map: cityMap(r, g), // the live shard map's renderer with a static snapshot (ui/mapview)
	}
	p.fillReading(r, c)
	for _, c := range charts {
		p.Charts = append(p.Charts, template.HTML(c)) // generated by gonum/plot from our own labels
	}
	owners := shardOwners(r)
	ids := make([]string, 0, len(owners))
	for id := range owners {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	for _, id := range ids {
		p.Owners = append(p.Owners, legendItem{"matcher " + id, hexColor(owners[id])})
	}
	for _, o := range []string{"assigned", "no_driver", "gave_up", "other"} {
		p.Outcomes = append(p.Outcomes, legendItem{strings.ReplaceAll(o, "_", " "), outcomeColors[o]})
	}
	var out bytes.Buffer
	if err := reportTmpl.Execute(&out, p); err != nil {
		return fmt.Errorf("write HTML report: %w", err)
	}
	if err := os.WriteFile(filepath.Join(dir, "index.html"), out.Bytes(), 0o644); err != nil {
		return fmt.Errorf("write HTML report: %w", err)
	}
	return WriteJSONFile(filepath.Join(dir, "report.json"), r)
}

type compareRow struct {
	Name, Change, Better, Def string
	Values                    []string
	// Load marks the service-load and API rows.
	Load bool
}

// WriteComparisonHTML writes a comparison into dir: index.html, the first
// run's full report with the KPIs of every run side by side in its
// comparison section, comparison.json, and each run's full report in a
// directory named by its label.
func WriteComparisonHTML(dir string, c *Comparison, g *city.Graph) error {
	if len(c.Runs) == 0 {
		return fmt.Errorf("write comparison report: no runs")
	}
	for i, r := range c.Runs {
		if err := writeReport(filepath.Join(dir, c.Labels[i]), r, g, nil); err != nil {
			return err
		}
	}
	if err := writeReport(dir, c.Runs[0], g, newCompareSection(c)); err != nil {
		return err
	}
	return WriteJSONFile(filepath.Join(dir, "comparison.json"), c)
}

// changeText is the change from base to v: a percentage, or a factor once
// it is more than ten-fold.
func changeText(base, v, pct float64) string {
	if base > 0 && v/base >= 10 {
		return fmt.Sprintf("×%.0f", v/base)
	}
	return fmt.Sprintf("%+.1f%%", pct)
}

// compareSection is the comparison in a run's report.
type compareSection struct {
	Seed   uint64
	Labels []string
	Rows   []compareRow
}

func newCompareSection(c *Comparison) *compareSection {
	cs := &compareSection{Seed: seedOf(c), Labels: c.Labels}
	for _, d := range c.Deltas {
		row := compareRow{Name: d.KPI, Better: d.Better, Load: d.load, Def: d.definition}
		if d.Unit != "" {
			row.Name += " (" + d.Unit + ")"
		}
		for _, v := range d.Values {
			row.Values = append(row.Values, fmt.Sprintf(d.format, v))
		}
		var ch []string
		for j := 1; j < len(d.Values); j++ {
			ch = append(ch, changeText(d.Values[0], d.Values[j], d.ChangePct[j]))
		}
		row.Change = strings.Join(ch, ", ")
		cs.Rows = append(cs.Rows, row)
	}
	return cs
}

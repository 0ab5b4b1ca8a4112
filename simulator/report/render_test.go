package report

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/geomatch/geomatch/simulator/city"
)

// windowResult is sampleResult with a measured window, zone KPIs laid
// out as the city's districts, and a series across the warm-up.
func windowResult(mode string, wait float64) *Result {
	r := sampleResult(mode, 300)
	r.Scenario.StartHour, r.Scenario.WarmStart, r.Scenario.ThinkMinS, r.Scenario.ThinkMaxS = 8, true, 2, 8
	r.Run.SimS, r.Run.CarriedTrips = 600, 42
	r.Series = []Sample{{T: 6, SimS: 60, Online: 90, Busy: 40}, {T: 30, SimS: 300, Online: 90, Busy: 45}, {T: 60, SimS: 600, Online: 90, Busy: 44}}
	w := Measure(Window{FromSimS: 120, ToSimS: 600, Offers: 10, Accepted: 9, DropOffs: 7, CarriedDropOffs: 30},
		[]TripFact{{RequestedSimS: 200, Zone: 0, Place: -1, Assigned: true, MatchMs: 600, ServiceMs: 20, FirstOfferMs: 5, ETAS: 40, WaitS: wait,
			Pickup: Leg{210, 250, 300}, Ride: Leg{250, 500, 2700}}}, r.Series)
	r.Window = &w
	var infos []ZoneInfo
	for _, row := range districtGrid {
		for _, id := range row {
			infos = append(infos, ZoneInfo{ID: id, Name: id + " name", Kind: "district"})
		}
	}
	r.ZoneKPIs = ZoneKPIs(infos, w, []TripFact{{RequestedSimS: 200, Zone: 0, Place: -1, Assigned: true, ETAS: 40, WaitS: wait}}, nil, 10)
	return r
}

// TestReportForAnAnalyst renders a run with a comparison and checks what
// an analyst reads: times of day, the warm-up, the definitions next to
// the figures, think time apart from the service's, the wind-down's
// outcomes apart, the districts' heat tables, the comparison; and a run
// without a comparison says why.
func TestReportForAnAnalyst(t *testing.T) {
	p, _ := city.PresetByName("taveuni")
	g, err := city.Grid(p.Grid)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	if err := WriteComparisonHTML(dir, Compare([]string{"greedy", "batch"}, []*Result{windowResult("greedy", 90), windowResult("batch", 60)}), g); err != nil {
		t.Fatal(err)
	}
	page, err := os.ReadFile(filepath.Join(dir, "index.html"))
	if err != nil {
		t.Fatal(err)
	}
	html := string(page)
	for _, want := range []string{
		"08:02–08:10",                      // the measured window in simulated time of day
		">08:04<", "simulated time of day", // chart axes in HH:MM
		"warm-up (not in the KPIs)",                                        // shaded on the charts
		"Busy driver time (accepted to drop-off) over online driver time.", // definitions inline
		"dispatch service time", "driver think time", "simulated s",        // think time apart
		"wind-down, synthetic", "warm start, synthetic", // synthetic outcomes apart
		"wait to pickup", "driver idle share", "deadhead share", "acceptance rate", "trips per driver-hour",
		"demand share / supply share", "unmatched requests, %", // the districts' heat tables
		"Matching modes compared", `href="batch/index.html"`, // the comparison section
		`id="reading"`, "Little&#39;s law",
	} {
		if !strings.Contains(html, want) {
			t.Errorf("the report has no %q", want)
		}
	}
	if strings.Contains(html, "seconds into the run") {
		t.Error("a chart still counts wall seconds into the run")
	}
	single := t.TempDir()
	r := windowResult("greedy", 90)
	r.Run.NoComparison = "the run used --target; comparing needs a fresh cluster."
	if err := WriteHTML(single, r, g); err != nil {
		t.Fatal(err)
	}
	page, err = os.ReadFile(filepath.Join(single, "index.html"))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(page), "No comparison: the run used --target") {
		t.Error("a report without a comparison does not say why")
	}
}

package report

import (
	"bytes"
	"math"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"strings"
	"testing"

	"github.com/uber/h3-go/v4"

	"github.com/geomatch/geomatch/simulator/city"
)

func TestNewDist(t *testing.T) {
	for _, tc := range []struct {
		name string
		in   []float64
		want Dist
	}{
		{"empty", nil, Dist{}},
		{"one", []float64{7}, Dist{Count: 1, Mean: 7, P50: 7, P90: 7, P99: 7, Max: 7}},
		{"nearest rank", []float64{5, 1, 4, 2, 3, 6, 7, 8, 9, 10}, Dist{Count: 10, Mean: 5.5, P50: 5, P90: 9, P99: 10, Max: 10}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := NewDist(tc.in)
			hist := got.Hist
			got.Hist = nil
			if !reflect.DeepEqual(got, tc.want) {
				t.Fatalf("NewDist = %+v, want %+v", got, tc.want)
			}
			var n int64
			for _, b := range hist {
				n += b.Count
			}
			if len(hist) > 0 && n != tc.want.Count {
				t.Fatalf("histogram holds %d values of %d", n, tc.want.Count)
			}
		})
	}
}

func sampleResult(mode string, dist float64) *Result {
	r := &Result{Version: SchemaVersion,
		Scenario:        Scenario{City: "taveuni", Drivers: 100, Seed: 3, MatchMode: mode, Speedup: 10, Transport: "stream"},
		Run:             Run{WallS: 10, SimS: 100},
		Trips:           Trips{Requests: 50, Assigned: 40, MatchRate: 0.8, Completed: 30, NoDriver: 10},
		TimeToMatchMs:   NewDist([]float64{100, 200, 300, 400}),
		PickupDistanceM: NewDist([]float64{dist, dist * 2, dist * 3}),
		Latency:         map[string]Latency{"RequestRide": {Count: 50, P50: 1, P90: 2, P99: 3, Max: 4}},
		Series: []Sample{{T: 1, Online: 90, Busy: 10, UpdatesOfferedPerS: 25, UpdatesSentPerS: 25, P99Ms: map[string]float64{"RequestRide": 3}},
			{T: 2, Online: 91, Busy: 20, UpdatesOfferedPerS: 25, UpdatesSentPerS: 24, P99Ms: map[string]float64{"RequestRide": 4}}},
		Shards:  []Shard{{Cell: cellAt(-16.8, 179.999), Owner: "m1", Drivers: 5}, {Cell: cellAt(-16.8, -179.99), Owner: "m2", Drivers: 0}},
		Pickups: []Pickup{{Lat: -16.8, Lng: 179.999, Outcome: "assigned"}, {Lat: -16.8, Lng: -179.999, Outcome: "no_driver"}},
	}
	return r
}

func TestCompareNamesTheBetterRun(t *testing.T) {
	c := Compare([]string{"greedy", "batch"}, []*Result{sampleResult("greedy", 400), sampleResult("batch", 300)})
	found := false
	for _, d := range c.Deltas {
		if d.KPI != "pickup distance mean" {
			continue
		}
		found = true
		if d.Better != "batch" || d.Values[0] != 800 || d.Values[1] != 600 || d.Change[1] != -200 || math.Abs(d.ChangePct[1]+25) > 1e-9 {
			t.Fatalf("pickup distance delta %+v", d)
		}
	}
	if !found {
		t.Fatal("no pickup distance delta")
	}
	for _, d := range c.Deltas {
		if d.KPI == "ride requests" && d.Better != "" {
			t.Fatalf("a tie names %q better", d.Better)
		}
	}
	var b bytes.Buffer
	if err := WriteComparison(&b, c); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(b.String(), "Δ batch") || !strings.Contains(b.String(), "-200 (-25%)") {
		t.Fatalf("comparison table:\n%s", b.String())
	}
}

func TestJSONRoundTrip(t *testing.T) {
	r := sampleResult("greedy", 100)
	var b bytes.Buffer
	if err := WriteJSON(&b, r); err != nil {
		t.Fatal(err)
	}
	got, err := ReadJSON(&b)
	if err != nil {
		t.Fatal(err)
	}
	if got.Trips != r.Trips || got.PickupDistanceM.Mean != r.PickupDistanceM.Mean || len(got.Series) != 2 {
		t.Fatalf("round trip changed the result: %+v", got)
	}
	if _, err := ReadJSON(strings.NewReader(`{"version": 99}`)); err == nil {
		t.Fatal("a future schema was accepted")
	}
}

// TestHTMLReportIsSelfContained writes the report of a run in the city
// across the antimeridian and checks that it stands alone and that the
// map is in one piece.
func TestHTMLReportIsSelfContained(t *testing.T) {
	p, _ := city.PresetByName("taveuni")
	g, err := city.Grid(p.Grid)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	if err := WriteComparisonHTML(dir, Compare([]string{"greedy", "batch"}, []*Result{sampleResult("greedy", 400), sampleResult("batch", 300)}), g); err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{"index.html", "comparison.json", "greedy/index.html", "greedy/report.json", "batch/index.html"} {
		if _, err := os.Stat(filepath.Join(dir, f)); err != nil {
			t.Fatalf("missing %s: %v", f, err)
		}
	}
	page, err := os.ReadFile(filepath.Join(dir, "greedy", "index.html"))
	if err != nil {
		t.Fatal(err)
	}
	html := string(page)
	for _, want := range []string{"<svg", "Drivers", "Location updates", "p99 latency", "Time to match", "matcher m1"} {
		if !strings.Contains(html, want) {
			t.Errorf("the report has no %q", want)
		}
	}
	// Nothing is fetched: the only URLs are SVG namespaces.
	for _, m := range regexp.MustCompile(`(src|href)="[a-z]+://[^"]*"`).FindAllString(html, -1) {
		t.Errorf("external reference %s", m)
	}
	// One shard: the one with drivers; its hexagon stays in one piece (a
	// shard across 180° drawn the long way round would span the world).
	doc := embeddedMap(t, html)
	if len(doc.Shards) != 1 {
		t.Fatalf("%d shards on the map, want 1 (shards without drivers are not drawn)", len(doc.Shards))
	}
	if span := boundarySpan(doc.Shards[0].Boundary); span > 1 {
		t.Fatalf("shard %s spans %v° of longitude", doc.Shards[0].Cell, span)
	}
}

// cellAt is the resolution-7 shard cell of a position.
func cellAt(lat, lng float64) string {
	return h3.LatLngToCell(h3.NewLatLng(lat, lng), 7).String()
}

package report

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/geomatch/geomatch/simulator/city"
)

func sampleZones() *Zones {
	return &Zones{Set: "sim-zones",
		Zones: []Zone{
			{ID: "sim-zones/district-sw", Name: "South-west district", Kind: "district", Shape: "polygon", Enters: 40, Exits: 30, EndInside: 12, EndAvailable: 9},
			{ID: "sim-zones/airport", Name: "Airport", Kind: "airport", Shape: "polygon", Enters: 5, Exits: 4, EndInside: 1, EndAvailable: 1},
		},
		Series: []ZoneSample{
			{T: 1, Inside: []int64{10, 2}, Available: []int64{8, 1}, EntersPerS: 30, ExitsPerS: 10},
			{T: 2, EntersPerS: 5, ExitsPerS: 5}, // the count failed
			{T: 3, Inside: []int64{14, 0}, Available: []int64{12, 0}, EntersPerS: 10, ExitsPerS: 20},
		},
		Events: 79, CountErrors: 1,
	}
}

func TestZonesSummarise(t *testing.T) {
	z := sampleZones()
	z.Summarise()
	d, a := z.Zones[0], z.Zones[1]
	if d.AvailableMean != 10 || d.AvailablePeak != 12 || d.InsideMean != 12 || d.InsidePeak != 14 {
		t.Fatalf("district summary %+v: want available mean 10, peak 12; inside mean 12, peak 14 (the failed count left out)", d)
	}
	if a.AvailableMean != 0.5 || a.AvailablePeak != 1 {
		t.Fatalf("airport summary %+v", a)
	}
	if z.EventsPerSMean != 80.0/3 || z.EventsPerSPeak != 40 {
		t.Fatalf("event rates: mean %v, peak %v; want 26.7 and 40", z.EventsPerSMean, z.EventsPerSPeak)
	}
}

// TestZonesInTheReport: the table, the JSON and the HTML page show the
// zones; a run without zones shows none.
func TestZonesInTheReport(t *testing.T) {
	r := sampleResult("greedy", 100)
	r.Zones = sampleZones()
	r.Zones.Summarise()
	var b bytes.Buffer
	if err := WriteTable(&b, r); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"zones (fence set sim-zones)", "South-west district", "Airport", "fence events: 79", "1 counts failed"} {
		if !strings.Contains(b.String(), want) {
			t.Errorf("the table has no %q:\n%s", want, b.String())
		}
	}
	var js bytes.Buffer
	if err := WriteJSON(&js, r); err != nil {
		t.Fatal(err)
	}
	got, err := ReadJSON(&js)
	if err != nil {
		t.Fatal(err)
	}
	if got.Zones == nil || len(got.Zones.Series) != 3 || got.Zones.Zones[0].AvailablePeak != 12 || got.Zones.Series[1].Inside != nil {
		t.Fatalf("zones after a JSON round trip: %+v", got.Zones)
	}
	p, _ := city.PresetByName("taveuni")
	g, err := city.Grid(p.Grid)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	if err := WriteHTML(dir, r, g); err != nil {
		t.Fatal(err)
	}
	page, err := os.ReadFile(filepath.Join(dir, "index.html"))
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"<h2>Zones</h2>", "Available drivers per district", "Available drivers at places", "Fence events (zones)"} {
		if !strings.Contains(string(page), want) {
			t.Errorf("the HTML report has no %q", want)
		}
	}
	// The map outlines the run's two zones (and nothing of the city's
	// other zones).
	var outlines []string
	for _, o := range embeddedMap(t, string(page)).Overlays {
		if o.Name == "zones" {
			for _, p := range o.Polygons {
				outlines = append(outlines, p.Title)
			}
		}
	}
	if len(outlines) != 2 || !strings.Contains(strings.Join(outlines, "\n"), "Airport (airport)") {
		t.Errorf("zone outlines on the map: %q", outlines)
	}

	r.Zones = nil
	b.Reset()
	if err := WriteTable(&b, r); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(b.String(), "zones") {
		t.Errorf("a run without zones shows some:\n%s", b.String())
	}
}

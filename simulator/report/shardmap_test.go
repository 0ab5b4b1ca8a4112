package report

import (
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"regexp"
	"testing"

	"github.com/geomatch/geomatch/simulator/city"
	"github.com/geomatch/geomatch/ui/mapview"
)

// embeddedMap returns the map document a report page embeds.
func embeddedMap(t *testing.T, page string) *mapview.Snapshot {
	t.Helper()
	m := regexp.MustCompile(`<script type="application/json" id="city-map-doc">(.*?)</script>`).FindStringSubmatch(page)
	if m == nil {
		t.Fatal("the report embeds no map document")
	}
	var s mapview.Snapshot
	if err := json.Unmarshal([]byte(m[1]), &s); err != nil {
		t.Fatalf("the embedded map document: %v", err)
	}
	return &s
}

// TestReportMapIsTheLiveRenderer checks that the report draws the city
// with the live map's renderer: its script, and a static snapshot with
// the shards holding drivers, owner colours, streets and pickups.
func TestReportMapIsTheLiveRenderer(t *testing.T) {
	p, _ := city.PresetByName("taveuni")
	g, err := city.Grid(p.Grid)
	if err != nil {
		t.Fatal(err)
	}
	r := sampleResult("greedy", 400)
	dir := t.TempDir()
	if err := WriteHTML(dir, r, g); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(filepath.Join(dir, "index.html"))
	if err != nil {
		t.Fatal(err)
	}
	page := string(b)
	if !regexp.MustCompile(`GeomatchMap\.create\(`).MatchString(page) {
		t.Fatal("the report does not run the map renderer")
	}
	doc := embeddedMap(t, page)
	if doc.Live || len(doc.Shards) == 0 || len(doc.Nodes) == 0 {
		t.Fatalf("map document: live %v, %d shards, %d nodes", doc.Live, len(doc.Shards), len(doc.Nodes))
	}
	colors := map[string]string{}
	for _, n := range doc.Nodes {
		colors[n.ID] = n.Color
	}
	for _, s := range doc.Shards {
		if s.Drivers == 0 || colors[s.Owner] == "" || len(s.Boundary) < 5 {
			t.Fatalf("shard %+v: want drivers, a coloured owner and a boundary", s)
		}
	}
	kinds := map[string]bool{}
	for _, o := range doc.Overlays {
		kinds[o.Kind] = true
	}
	if !kinds["lines"] || !kinds["points"] {
		t.Fatalf("overlays %v: want the streets and the pickups", kinds)
	}
}

// boundarySpan is the longitude span of a boundary, unwrapped around its
// first vertex as the renderer projects it.
func boundarySpan(b [][2]float64) float64 {
	lo, hi := 0.0, 0.0
	for _, v := range b {
		d := math.Mod(v[1]-b[0][1]+540, 360) - 180
		lo, hi = math.Min(lo, d), math.Max(hi, d)
	}
	return hi - lo
}

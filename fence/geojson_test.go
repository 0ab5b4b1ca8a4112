package fence

import (
	"fmt"
	"strings"
	"testing"

	"github.com/geomatch/geomatch/internal/geo"
)

const square = `[[0,0],[1,0],[1,1],[0,1],[0,0]]`

func TestParseGeoJSONRefuses(t *testing.T) {
	many := make([]string, 0, MaxVertices+1)
	for i := range MaxVertices {
		many = append(many, fmt.Sprintf("[%v,%v]", 0.001*float64(i%100), 0.001*float64(i/100)))
	}
	many = append(many, "[0,0]")
	tests := []struct {
		name, in, want string
	}{
		{"empty", "", "empty"},
		{"blank", "  \n", "empty"},
		{"not json", "{", "not a GeoJSON object"},
		{"not an object", "[1,2]", "not a GeoJSON object"},
		{"no type", `{"coordinates":[` + square + `]}`, `missing "type"`},
		{"point", `{"type":"Point","coordinates":[0,0]}`, `unsupported GeoJSON type "Point"`},
		{"feature collection", `{"type":"FeatureCollection","features":[]}`, `unsupported GeoJSON type "FeatureCollection"`},
		{"feature of a point", `{"type":"Feature","geometry":{"type":"Point","coordinates":[0,0]}}`, `unsupported GeoJSON type "Point"`},
		{"feature without geometry", `{"type":"Feature","geometry":null}`, "no geometry"},
		{"feature of a feature", `{"type":"Feature","geometry":{"type":"Feature"}}`, `geometry is a "Feature"`},
		{"no coordinates", `{"type":"Polygon"}`, `missing "coordinates"`},
		{"no rings", `{"type":"Polygon","coordinates":[]}`, "polygon has no rings"},
		{"no polygons", `{"type":"MultiPolygon","coordinates":[]}`, "MultiPolygon has no polygons"},
		{"multipolygon member without rings", `{"type":"MultiPolygon","coordinates":[[` + square + `],[]]}`, "polygon 1 has no rings"},
		{"coordinates not nested enough", `{"type":"Polygon","coordinates":[[0,0],[1,0],[1,1],[0,0]]}`, "want an array of numbers"},
		{"string coordinate", `{"type":"Polygon","coordinates":[[["0",0],[1,0],[1,1],["0",0]]]}`, "want a number"},
		{"short position", `{"type":"Polygon","coordinates":[[[0],[1,0],[1,1],[0]]]}`, "1 numbers"},
		{"huge number", `{"type":"Polygon","coordinates":[[[1e400,0],[1,0],[1,1],[1e400,0]]]}`, "not a finite number"},
		{"NaN", `{"type":"Polygon","coordinates":[[[NaN,0],[1,0],[1,1],[NaN,0]]]}`, "not a GeoJSON object"},
		{"three positions", `{"type":"Polygon","coordinates":[[[0,0],[1,0],[0,0]]]}`, "ring 0: 3 positions, a ring needs at least 4"},
		{"open ring", `{"type":"Polygon","coordinates":[[[0,0],[1,0],[1,1],[0,1]]]}`, "ring 0: not closed"},
		{"open hole", `{"type":"Polygon","coordinates":[` + square + `,[[0.2,0.2],[0.4,0.2],[0.4,0.4],[0.2,0.3]]]}`, "ring 1: not closed"},
		{"too many positions", `{"type":"Polygon","coordinates":[[` + strings.Join(many, ",") + `]]}`, "more than 10000 positions"},
		{"latitude out of range", `{"type":"Polygon","coordinates":[[[0,0],[1,0],[1,91],[0,0]]]}`, "latitude 91 outside [-90, 90]"},
		{"longitude out of range", `{"type":"Polygon","coordinates":[[[0,0],[361,0],[1,1],[0,0]]]}`, "longitude 361 outside [-360, 360]"},
		{"bow tie", `{"type":"Polygon","coordinates":[[[0,0],[1,1],[1,0],[0,1],[0,0]]]}`, "ring 0: crosses or touches itself"},
		{"ring touching itself", `{"type":"Polygon","coordinates":[[[0,0],[2,0],[2,2],[1,0],[0,2],[0,0]]]}`, "crosses or touches itself"},
		{"spike", `{"type":"Polygon","coordinates":[[[0,0],[1,0],[1,1],[1,2],[1,1],[0,1],[0,0]]]}`, "ring 0: crosses or touches itself"},
		{"zero area", `{"type":"Polygon","coordinates":[[[0,0],[1,1],[2,2],[0,0]]]}`, "zero area"},
		{"zero area hole", `{"type":"Polygon","coordinates":[` + square + `,[[0.2,0.2],[0.4,0.4],[0.6,0.6],[0.2,0.2]]]}`, "ring 1: folds back on itself"},
		{"repeated point only", `{"type":"Polygon","coordinates":[[[0,0],[0,0],[0,0],[0,0]]]}`, "zero area"},
		{"hole outside", `{"type":"Polygon","coordinates":[` + square + `,[[2,2],[3,2],[3,3],[2,2]]]}`, "ring 1: a hole outside its exterior ring"},
		{"hole crossing the exterior", `{"type":"Polygon","coordinates":[` + square + `,[[0.5,0.5],[1.5,0.5],[1.5,0.7],[0.5,0.5]]]}`, "ring 1: crosses or touches ring 0"},
		{"hole in a hole", `{"type":"Polygon","coordinates":[[[0,0],[10,0],[10,10],[0,10],[0,0]],[[1,1],[9,1],[9,9],[1,9],[1,1]],[[2,2],[3,2],[3,3],[2,2]]]}`, "ring 2: a hole inside hole 1"},
		{"around the north pole", `{"type":"Polygon","coordinates":[[[0,80],[120,80],[-120,80],[0,80]]]}`, "goes around a pole"},
		{"multipolygon member invalid", `{"type":"MultiPolygon","coordinates":[[` + square + `],[[[0,0],[1,1],[1,0],[0,1],[0,0]]]]}`, "polygon 1, ring 0: crosses or touches itself"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			pg, err := ParseGeoJSON(tt.in)
			if err == nil {
				t.Fatalf("ParseGeoJSON accepted it: %+v", pg.Bound())
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("error %q does not contain %q", err, tt.want)
			}
		})
	}
}

func TestParseGeoJSONAccepts(t *testing.T) {
	type probe struct {
		p  geo.LatLng
		in bool
	}
	inSquare := []probe{
		{geo.LatLng{Lat: 0.5, Lng: 0.5}, true},
		{geo.LatLng{Lat: 0, Lng: 0.5}, true}, // on an edge
		{geo.LatLng{Lat: 1, Lng: 1}, true},   // a vertex
		{geo.LatLng{Lat: 1.01, Lng: 0.5}, false},
		{geo.LatLng{Lat: 0.5, Lng: -0.01}, false},
	}
	tests := []struct {
		name   string
		in     string
		parts  int
		probes []probe
	}{
		{"counter-clockwise", `{"type":"Polygon","coordinates":[` + square + `]}`, 1, inSquare},
		{"clockwise", `{"type":"Polygon","coordinates":[[[0,0],[0,1],[1,1],[1,0],[0,0]]]}`, 1, inSquare},
		{"with altitude and repeated positions", `{"type":"Polygon","coordinates":[[[0,0,5],[1,0,5],[1,0,6],[1,1],[0,1],[0,0,5]]]}`, 1, inSquare},
		{"feature", `{"type":"Feature","properties":{"name":"x","n":[1,{"a":null}]},"geometry":{"type":"Polygon","coordinates":[` + square + `]}}`, 1, inSquare},
		{"hole", `{"type":"Polygon","coordinates":[[[0,0],[4,0],[4,4],[0,4],[0,0]],[[1,1],[1,3],[3,3],[3,1],[1,1]]]}`, 1, []probe{
			{geo.LatLng{Lat: 0.5, Lng: 0.5}, true},
			{geo.LatLng{Lat: 2, Lng: 2}, false}, // in the hole
			{geo.LatLng{Lat: 1, Lng: 2}, true},  // on the hole's edge: boundary counts as inside
			{geo.LatLng{Lat: 3, Lng: 3}, true},  // the hole's vertex
		}},
		{"multipolygon", `{"type":"MultiPolygon","coordinates":[[` + square + `],[[[5,5],[6,5],[6,6],[5,6],[5,5]]]]}`, 2, []probe{
			{geo.LatLng{Lat: 0.5, Lng: 0.5}, true},
			{geo.LatLng{Lat: 5.5, Lng: 5.5}, true},
			{geo.LatLng{Lat: 3, Lng: 3}, false},
		}},
		{"across the antimeridian", `{"type":"Polygon","coordinates":[[[170,-10],[-170,-10],[-170,10],[170,10],[170,-10]]]}`, 1, []probe{
			{geo.LatLng{Lat: 0, Lng: 180}, true},
			{geo.LatLng{Lat: 0, Lng: -180}, true},
			{geo.LatLng{Lat: 0, Lng: 175}, true},
			{geo.LatLng{Lat: 0, Lng: -175}, true},
			{geo.LatLng{Lat: 0, Lng: -170}, true}, // on the edge
			{geo.LatLng{Lat: 0, Lng: 0}, false},   // not the long way round
			{geo.LatLng{Lat: 0, Lng: 165}, false},
			{geo.LatLng{Lat: 0, Lng: -165}, false},
		}},
		{"across the antimeridian, longitudes past 180", `{"type":"Polygon","coordinates":[[[170,-10],[190,-10],[190,10],[170,10],[170,-10]]]}`, 1, []probe{
			{geo.LatLng{Lat: 0, Lng: 180}, true},
			{geo.LatLng{Lat: 0, Lng: -175}, true},
			{geo.LatLng{Lat: 0, Lng: 0}, false},
		}},
		{"west of -180", `{"type":"Polygon","coordinates":[[[-190,-10],[-170,-10],[-170,10],[-190,10],[-190,-10]]]}`, 1, []probe{
			{geo.LatLng{Lat: 0, Lng: 175}, true},
			{geo.LatLng{Lat: 0, Lng: -175}, true},
			{geo.LatLng{Lat: 0, Lng: 160}, false},
		}},
		{"antimeridian hole", `{"type":"Polygon","coordinates":[[[170,-10],[-170,-10],[-170,10],[170,10],[170,-10]],[[179,-1],[-179,-1],[-179,1],[179,1],[179,-1]]]}`, 1, []probe{
			{geo.LatLng{Lat: 0, Lng: 180}, false},
			{geo.LatLng{Lat: 0, Lng: 178}, true},
			{geo.LatLng{Lat: 5, Lng: -179.5}, true},
		}},
		{"near the pole", `{"type":"Polygon","coordinates":[[[0,89],[90,89],[90,89.9],[0,89.9],[0,89]]]}`, 1, []probe{
			{geo.LatLng{Lat: 89.5, Lng: 45}, true},
			{geo.LatLng{Lat: 89.5, Lng: -45}, false},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			pg, err := ParseGeoJSON(tt.in)
			if err != nil {
				t.Fatal(err)
			}
			if pg.NumParts() != tt.parts {
				t.Errorf("NumParts = %d, want %d", pg.NumParts(), tt.parts)
			}
			for _, pr := range tt.probes {
				if got := pg.Contains(pr.p); got != pr.in {
					t.Errorf("Contains(%v) = %v, want %v", pr.p, got, pr.in)
				}
			}
			b := pg.Bound()
			if b.MinLng < -180 || b.MinLng >= 180 || b.MaxLng < b.MinLng {
				t.Errorf("Bound() = %+v: MinLng must be in [-180, 180)", b)
			}
		})
	}
}

func TestPolygonCrosses(t *testing.T) {
	pg, err := ParseGeoJSON(`{"type":"Polygon","coordinates":[[[0,0],[4,0],[4,4],[0,4],[0,0]],[[1,1],[1,3],[3,3],[3,1],[1,1]]]}`)
	if err != nil {
		t.Fatal(err)
	}
	am, err := ParseGeoJSON(`{"type":"Polygon","coordinates":[[[179,-1],[-179,-1],[-179,1],[179,1],[179,-1]]]}`)
	if err != nil {
		t.Fatal(err)
	}
	ll := func(lat, lng float64) geo.LatLng { return geo.LatLng{Lat: lat, Lng: lng} }
	tests := []struct {
		name string
		s    *Polygon
		a, b geo.LatLng
		want bool
	}{
		{"through", pg, ll(0.5, -1), ll(0.5, 5), true},
		{"missing", pg, ll(5, -1), ll(5, 5), false},
		{"inside the hole only", pg, ll(1.5, 1.5), ll(2.5, 2.5), false},
		{"touching a vertex", pg, ll(-1, 3), ll(1, 5), true},
		{"along an edge", pg, ll(0, -1), ll(0, 5), true},
		{"endpoint inside", pg, ll(0.5, 0.5), ll(0.5, -1), true},
		{"across the antimeridian, the short way", am, ll(0, 178), ll(0, -178), true},
		{"near the antimeridian, missing", am, ll(5, 178), ll(5, -178), false},
		{"across the antimeridian, through", am, ll(-2, -179.5), ll(2, 179.5), true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.s.Crosses(tt.a, tt.b); got != tt.want {
				t.Fatalf("Crosses(%v, %v) = %v, want %v", tt.a, tt.b, got, tt.want)
			}
			if got := tt.s.Crosses(tt.b, tt.a); got != tt.want {
				t.Fatalf("Crosses(%v, %v) = %v, want %v (reversed)", tt.b, tt.a, got, tt.want)
			}
		})
	}
}

// TestCheckSimpleSpeed measures validating 10k-vertex rings of three
// kinds: a smooth outline, a comb (many long parallel edges) and a
// spiral (long edges overlapping along both axes).
func TestCheckSimpleSpeed(t *testing.T) {
	if testing.Short() {
		t.Skip("slow")
	}
	n := MaxVertices - 1
	shapes := map[string][][2]float64{}
	var smooth [][2]float64
	for i := range n {
		a := 2 * 3.141592653589793 * float64(i) / float64(n)
		smooth = append(smooth, [2]float64{0.01 * sin(a) * (1 + 0.1*sin(7*a)), 0.01 * cos(a) * (1 + 0.1*sin(7*a))})
	}
	shapes["smooth"] = smooth
	var comb [][2]float64
	teeth := (n - 2) / 4
	for i := range teeth {
		x := float64(i) * 0.001
		comb = append(comb, [2]float64{x, 0}, [2]float64{x, 1}, [2]float64{x + 0.0005, 1}, [2]float64{x + 0.0005, 0})
	}
	comb = append(comb, [2]float64{float64(teeth) * 0.001, -0.1}, [2]float64{0, -0.1})
	shapes["comb"] = comb
	shapes["spiral"] = spiral(n)
	for name, ring := range shapes {
		ring = append(ring, ring[0])
		s := fmt.Sprintf(`{"type":"Polygon","coordinates":[%s]}`, ringJSON(ring))
		start := nowNano()
		if _, err := ParseGeoJSON(s); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		t.Logf("%s: %d vertices parsed and validated in %.1f ms", name, len(ring), float64(nowNano()-start)/1e6)
	}
}

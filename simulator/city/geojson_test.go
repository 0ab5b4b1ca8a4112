package city

import (
	"math"
	"strings"
	"testing"
)

const crossRoads = `{"type":"FeatureCollection","features":[
 {"type":"Feature","properties":{"highway":"primary","maxspeed":"40"},
  "geometry":{"type":"LineString","coordinates":[[179.995,-16.8],[180.0,-16.8],[-179.995,-16.8]]}},
 {"type":"Feature","properties":{"class":"street"},
  "geometry":{"type":"LineString","coordinates":[[180.0,-16.805],[180.0,-16.8],[180.0,-16.795]]}},
 {"type":"Feature","properties":{"class":"highway","oneway":"yes"},
  "geometry":{"type":"LineString","coordinates":[[-179.995,-16.8],[-179.995,-16.805],[180.0,-16.805]]}},
 {"type":"Feature","properties":{},"geometry":{"type":"Point","coordinates":[0,0]}}
]}`

func TestLoadGeoJSONAcrossTheAntimeridian(t *testing.T) {
	g, err := LoadGeoJSON("cross", strings.NewReader(crossRoads), Speeds{})
	if err != nil {
		t.Fatal(err)
	}
	// Eight points, two of them shared: six intersections, all kept (the
	// one-way loop leads back into the cross).
	if len(g.Nodes) != 6 {
		t.Fatalf("%d nodes, want 6", len(g.Nodes))
	}
	if math.Abs(g.Frame.Origin.Lng) < 179.99 {
		t.Fatalf("origin %v is not at the antimeridian", g.Frame.Origin)
	}
	var primary, oneWay int
	for _, e := range g.Edges {
		if e.LengthM > 1100 {
			t.Fatalf("a segment of %v m: the antimeridian split a road", e.LengthM)
		}
		if e.Class == Arterial {
			primary++
			if math.Abs(e.SpeedMS*3.6-40) > 1e-9 {
				t.Fatalf("primary road at %v km/h, want its maxspeed 40", e.SpeedMS*3.6)
			}
		}
		if e.Class == Highway {
			oneWay++
			if e.Twin != NoEdge {
				t.Fatal("a one-way road got a twin")
			}
		}
	}
	if primary != 4 || oneWay != 2 {
		t.Fatalf("%d primary and %d one-way highway segments, want 4 and 2", primary, oneWay)
	}
}

func TestLoadGeoJSONRefusesBadFiles(t *testing.T) {
	for _, tc := range []struct{ name, in, want string }{
		{"not json", `{`, "unexpected"},
		{"not a collection", `{"type":"Feature"}`, "FeatureCollection"},
		{"no roads", `{"type":"FeatureCollection","features":[]}`, "no LineString"},
		{"bad latitude", `{"type":"FeatureCollection","features":[{"type":"Feature","geometry":{"type":"LineString","coordinates":[[0,95],[0,1]]}}]}`, "lat"},
		{"bad coordinates", `{"type":"FeatureCollection","features":[{"type":"Feature","geometry":{"type":"LineString","coordinates":"x"}}]}`, "coordinates"},
		{"too wide", `{"type":"FeatureCollection","features":[{"type":"Feature","geometry":{"type":"LineString","coordinates":[[0,0],[10,0]]}}]}`, "span"},
		{"one point", `{"type":"FeatureCollection","features":[{"type":"Feature","geometry":{"type":"LineString","coordinates":[[0,0]]}}]}`, "fewer than two"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := LoadGeoJSON(tc.name, strings.NewReader(tc.in), Speeds{})
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want one about %q", err, tc.want)
			}
		})
	}
}

func FuzzLoadGeoJSON(f *testing.F) {
	f.Add(crossRoads)
	f.Add(`{"type":"FeatureCollection","features":[{"type":"Feature","geometry":{"type":"MultiLineString","coordinates":[[[0,0],[0.001,0]],[[0.001,0],[0.001,0.001]]]}}]}`)
	f.Fuzz(func(t *testing.T, in string) {
		g, err := LoadGeoJSON("fuzz", strings.NewReader(in), Speeds{})
		if err != nil {
			return
		}
		for _, e := range g.Edges {
			if !(e.LengthM > 0) || !(e.SpeedMS > 0) {
				t.Fatalf("segment %+v", e)
			}
		}
		if _, ok := g.Route(Loc{Edge: 0}, NodeID(len(g.Nodes)-1)); !ok {
			t.Fatal("the kept part is not connected")
		}
	})
}

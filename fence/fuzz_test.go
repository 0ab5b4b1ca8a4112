package fence

import (
	"encoding/json"
	"math"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/geomatch/geomatch/internal/geo"
)

// FuzzParseGeoJSON: ParseGeoJSON never panics, and an accepted shape keeps
// its invariants: a bound holding every vertex, vertices and edge points
// inside (the boundary counts), and a coarse index agreeing with Contains.
func FuzzParseGeoJSON(f *testing.F) {
	for _, s := range []string{
		`{"type":"Polygon","coordinates":[` + square + `]}`,
		`{"type":"Polygon","coordinates":[[[0,0],[4,0],[4,4],[0,4],[0,0]],[[1,1],[1,3],[3,3],[3,1],[1,1]]]}`,
		`{"type":"MultiPolygon","coordinates":[[` + square + `],[[[5,5],[6,5],[6,6],[5,6],[5,5]]]]}`,
		`{"type":"Feature","geometry":{"type":"Polygon","coordinates":[[[170,-10],[-170,-10],[-170,10],[170,10],[170,-10]]]}}`,
		`{"type":"Polygon","coordinates":[[[0,0],[1,1],[1,0],[0,1],[0,0]]]}`,
		`{"type":"Polygon","coordinates":[[[0,89],[90,89],[90,89.9],[0,89.9],[0,89]]]}`,
		`{"type":"Polygon","coordinates":[[[-190,-10],[-170,-10],[-170,10],[-190,10],[-190,-10]]]}`,
		`{"type":"Point","coordinates":[0,0]}`,
		`{"type":"Polygon","coordinates":[[[0,0],[1e400,0],[1,1],[0,0]]]}`,
		``, `{`, `null`, `{"a":[1,-0.5e+3,"x\u00e9\n",true,null,{}]}`, `{"a":01}`, `{"a":"\x"}`, `{"a":1,}`, `{} x`,
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		// The scanner validates JSON exactly as encoding/json does.
		_, err := scanGeoJSONObject(s)
		refused := err != nil && (strings.HasPrefix(err.Error(), "invalid JSON") || err.Error() == "not a JSON object")
		object := json.Valid([]byte(s)) && strings.HasPrefix(strings.TrimLeft(s, " \t\r\n"), "{")
		if (refused && object) || (err == nil && !object) {
			t.Fatalf("scanGeoJSONObject error %v, json.Valid %v", err, json.Valid([]byte(s)))
		}
		pg, err := ParseGeoJSON(s)
		if err != nil {
			if pg != nil {
				t.Fatal("a polygon with an error")
			}
			return
		}
		if pg.NumVertices() > MaxVertices || pg.NumParts() == 0 {
			t.Fatalf("NumVertices %d, NumParts %d", pg.NumVertices(), pg.NumParts())
		}
		b := pg.Bound()
		if !(b.MinLng >= -180 && b.MinLng <= b.MaxLng && b.MaxLng <= b.MinLng+720 && b.MinLat <= b.MaxLat) {
			t.Fatalf("bad bound %+v", b)
		}
		var pts []geo.LatLng
		pg.trace(math.Inf(1), func(p geo.LatLng) bool { pts = append(pts, p); return len(pts) < 200 })
		for _, p := range pts {
			if !pg.Contains(p) {
				t.Fatalf("boundary point %v is not contained", p)
			}
			if !pg.Crosses(p, p) {
				t.Fatalf("Crosses(%v, %v) = false on the boundary", p, p)
			}
		}
		// A coarse index (cheap to build for any size) agrees with Contains.
		ix, _ := NewIndex(2)
		fence := &Fence{ID: "f", Shape: pg}
		if err := ix.Put(fence); err != nil {
			return // too many cells: refused cleanly
		}
		probes := append(pts, geo.LatLng{Lat: (b.MinLat + b.MaxLat) / 2, Lng: normLng((b.MinLng + b.MaxLng) / 2)})
		for _, p := range probes {
			got := len(indexContaining(ix, p, 0)) == 1
			if got != pg.Contains(p) {
				t.Fatalf("index says %v for %v, Contains %v", got, p, !got)
			}
		}
	})
}

var fuzzIndex struct {
	once   sync.Once
	ix     *Index
	fences []*Fence
}

// FuzzTransitions: for any two positions and vehicle class, the index
// reports exactly the transitions of brute force, over fences of every
// awkward region (poles, antimeridian, a pentagon, a city).
func FuzzTransitions(f *testing.F) {
	f.Add(40.75, -73.98, 40.751, -73.981, true, uint8(0))
	f.Add(89.0, 10.0, 88.9, -170.0, true, uint8(1))
	f.Add(-17.5, 179.99, -17.5, -179.99, true, uint8(2))
	f.Add(-17.5, 180.0, -17.5, -180.0, false, uint8(3))
	f.Add(pentagonLat(), pentagonLng(), pentagonLat()+0.01, pentagonLng(), true, uint8(0))
	f.Fuzz(func(t *testing.T, lat1, lng1, lat2, lng2 float64, hasPrev bool, class uint8) {
		fuzzIndex.once.Do(func() {
			r := newRand(41)
			for _, rg := range regions {
				fuzzIndex.fences = append(fuzzIndex.fences, randomFences(t, r, rg, 40)...)
			}
			fuzzIndex.ix = mustIndex(t, 9, fuzzIndex.fences)
		})
		classes := []string{"", "car", "bike", "truck"}
		vc := classes[int(class)%len(classes)]
		cur := geo.LatLng{Lat: lat2, Lng: lng2}
		var prev *geo.LatLng
		if hasPrev {
			prev = &geo.LatLng{Lat: lat1, Lng: lng1}
		}
		want := bruteTransitions(fuzzIndex.fences, prev, cur, vc)
		got := indexTransitions(fuzzIndex.ix, prev, 0, cur, 0, vc)
		if !slices.Equal(got, want) {
			t.Fatalf("%v -> %v (%q): index %v, brute force %v", prev, cur, vc, got, want)
		}
	})
}

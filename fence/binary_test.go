package fence

import (
	"bytes"
	"testing"

	"github.com/geomatch/geomatch/internal/geo"
)

// TestShapeBinaryRoundTrip checks that a shape rebuilt from its binary
// form answers every Contains and Crosses exactly as the original, in
// every test region (poles, antimeridian, pentagon) and for polygons with
// holes and several parts, and that it encodes to the same bytes.
func TestShapeBinaryRoundTrip(t *testing.T) {
	r := newRand(11)
	for _, rg := range regions {
		fences := randomFences(t, r, rg, 40)
		for _, s := range []string{holedMultiPolygon, antimeridianHoled} {
			pg, err := ParseGeoJSON(s)
			if err != nil {
				t.Fatal(err)
			}
			fences = append(fences, &Fence{ID: "extra", Shape: pg})
		}
		points := probePoints(r, rg, fences, 2000)
		for _, f := range fences {
			b := AppendShape(nil, f.Shape)
			got, err := DecodeShape(b)
			if err != nil {
				t.Fatalf("%s %s: %v", rg.name, f.ID, err)
			}
			if again := AppendShape(nil, got); !bytes.Equal(again, b) {
				t.Fatalf("%s %s: encoding differs after a round trip", rg.name, f.ID)
			}
			if got.Bound() != f.Shape.Bound() {
				t.Fatalf("%s %s: bound %+v, want %+v", rg.name, f.ID, got.Bound(), f.Shape.Bound())
			}
			for i, p := range points {
				if got.Contains(p) != f.Shape.Contains(p) {
					t.Fatalf("%s %s: Contains(%v) differs after a round trip", rg.name, f.ID, p)
				}
				q := points[(i+1)%len(points)]
				if got.Crosses(p, q) != f.Shape.Crosses(p, q) {
					t.Fatalf("%s %s: Crosses(%v, %v) differs after a round trip", rg.name, f.ID, p, q)
				}
			}
		}
	}
}

const holedMultiPolygon = `{"type":"MultiPolygon","coordinates":[
 [[[-74.0,40.7],[-73.9,40.7],[-73.9,40.8],[-74.0,40.8],[-74.0,40.7]],[[-73.97,40.73],[-73.93,40.73],[-73.93,40.77],[-73.97,40.77],[-73.97,40.73]]],
 [[[-73.85,40.7],[-73.8,40.7],[-73.8,40.75],[-73.85,40.7]]]]}`

const antimeridianHoled = `{"type":"Polygon","coordinates":[
 [[179.5,-17.8],[-179.5,-17.8],[-179.5,-17.2],[179.5,-17.2],[179.5,-17.8]],
 [[179.9,-17.6],[-179.9,-17.6],[-179.9,-17.4],[179.9,-17.4],[179.9,-17.6]]]}`

// FuzzDecodeShape feeds DecodeShape arbitrary bytes: it must not panic,
// and what it accepts must encode back to the same bytes.
func FuzzDecodeShape(f *testing.F) {
	for _, s := range []string{holedMultiPolygon, antimeridianHoled} {
		pg, err := ParseGeoJSON(s)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(AppendShape(nil, pg))
	}
	c, _ := NewCircle(geoPoint(40.75, -73.98), 500)
	f.Add(AppendShape(nil, c))
	f.Add([]byte{shapePolygon, 4, 1, 1, 4})
	f.Fuzz(func(t *testing.T, b []byte) {
		s, err := DecodeShape(b)
		if err != nil {
			return
		}
		if again := AppendShape(nil, s); !bytes.Equal(again, b) && b[0] == shapePolygon {
			t.Fatalf("accepted bytes do not encode back: %x -> %x", b, again)
		}
		s.Contains(geoPoint(40.75, -73.98))
		s.Crosses(geoPoint(40.75, -73.98), geoPoint(-17.5, 179.9))
	})
}

func geoPoint(lat, lng float64) geo.LatLng { return geo.LatLng{Lat: lat, Lng: lng} }

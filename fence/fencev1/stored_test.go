package fencev1_test

import (
	"testing"

	"google.golang.org/protobuf/proto"

	"github.com/geomatch/geomatch/fence/fencetest"
	"github.com/geomatch/geomatch/fence/fencev1"
	"github.com/geomatch/geomatch/internal/geo"
)

// TestStoredRoundTrip checks that a stored fence gives back its message
// and a fence equal to Decode's, and that a bare message (as stored by
// earlier releases) still decodes.
func TestStoredRoundTrip(t *testing.T) {
	defs := append(fencetest.Fences(), fencetest.AntimeridianFences()...)
	for _, pb := range defs {
		want, err := fencev1.Decode(pb)
		if err != nil {
			t.Fatalf("%s: %v", pb.GetFenceId(), err)
		}
		data, err := fencev1.EncodeStored(pb, want)
		if err != nil {
			t.Fatal(err)
		}
		bare, err := proto.Marshal(pb)
		if err != nil {
			t.Fatal(err)
		}
		for _, d := range [][]byte{data, bare} {
			gotPB, _, err := fencev1.DecodeStored(d)
			if err != nil {
				t.Fatalf("%s: %v", pb.GetFenceId(), err)
			}
			if !proto.Equal(gotPB, pb) {
				t.Fatalf("%s: message differs after storing", pb.GetFenceId())
			}
			got, err := fencev1.DecodeStoredFence(d)
			if err != nil {
				t.Fatalf("%s: %v", pb.GetFenceId(), err)
			}
			if got.ID != want.ID || got.Set != want.Set || got.Detect != want.Detect || got.VehicleClass != want.VehicleClass || got.Shape.Bound() != want.Shape.Bound() {
				t.Fatalf("%s: fence differs after storing: %+v, want %+v", pb.GetFenceId(), got, want)
			}
			b := want.Shape.Bound()
			for i := range 200 {
				p := geo.LatLng{Lat: b.MinLat + (b.MaxLat-b.MinLat)*float64(i%20)/19, Lng: b.MinLng + (b.MaxLng-b.MinLng)*float64(i/20)/9}
				if p.Lng >= 180 {
					p.Lng -= 360
				}
				if got.Shape.Contains(p) != want.Shape.Contains(p) {
					t.Fatalf("%s: Contains(%v) differs after storing", pb.GetFenceId(), p)
				}
			}
		}
	}
	for _, bad := range [][]byte{{0}, {0, 9}, {0, 1, 200}, {0, 1, 0, 7}} {
		if _, err := fencev1.DecodeStoredFence(bad); err == nil {
			t.Fatalf("%x decoded", bad)
		}
	}
}

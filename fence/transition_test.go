package fence

import (
	"slices"
	"testing"

	"github.com/geomatch/geomatch/internal/geo"
)

// The transition rules (Tile38's), one case each, checked on Eval and on an
// Index holding the fence among decoys.
func TestTransitionRules(t *testing.T) {
	sq, err := ParseGeoJSON(`{"type":"Polygon","coordinates":[[[0,0],[0.01,0],[0.01,0.01],[0,0.01],[0,0]]]}`)
	if err != nil {
		t.Fatal(err)
	}
	circ, err := NewCircle(geo.LatLng{Lat: 0.005, Lng: 0.005}, 500)
	if err != nil {
		t.Fatal(err)
	}
	ll := func(lat, lng float64) *geo.LatLng { return &geo.LatLng{Lat: lat, Lng: lng} }
	in, out := ll(0.005, 0.005), ll(0.005, 0.02)
	west, east := ll(0.005, -0.01), ll(0.005, 0.02)
	north := ll(0.02, 0.005)
	const all = DetectEnter | DetectExit | DetectInside | DetectCross
	tests := []struct {
		name      string
		detect    Detect
		class     string // the fence's
		prev, cur *geo.LatLng
		driver    string
		want      Transition // 0: nothing
	}{
		{"enter: outside then inside", all, "", out, in, "", Enter},
		{"exit: inside then outside", all, "", in, out, "", Exit},
		{"inside: inside twice", all, "", in, in, "", Inside},
		{"cross: outside twice, the segment passes through", all, "", west, east, "", Cross},
		{"nothing: outside twice, the segment misses", all, "", east, north, "", 0},
		{"first sighting inside: enter", all, "", nil, in, "", Enter},
		{"first sighting outside: nothing", all, "", nil, out, "", 0},
		{"default detect reports enter", 0, "", out, in, "", Enter},
		{"default detect reports exit", 0, "", in, out, "", Exit},
		{"default detect hides inside", 0, "", in, in, "", 0},
		{"default detect hides cross", 0, "", west, east, "", 0},
		{"detect exit only hides enter", DetectExit, "", out, in, "", 0},
		{"detect cross only hides exit", DetectCross, "", in, out, "", 0},
		{"detect inside only hides first-sighting enter", DetectInside, "", nil, in, "", 0},
		{"vehicle class matches", all, "car", out, in, "car", Enter},
		{"vehicle class differs", all, "car", out, in, "bike", 0},
		{"vehicle class required", all, "car", out, in, "", 0},
		{"classless fence watches every class", all, "", out, in, "bike", Enter},
		{"invalid current position: nothing", all, "", out, ll(91, 0), "", 0},
		{"invalid previous position counts as none", all, "", ll(0, 200), in, "", Enter},
	}
	decoys := benchFences(t, newRand(9), 0, 30) // far away, in New York
	for _, shape := range []Shape{sq, circ} {
		for _, tt := range tests {
			name := "polygon/" + tt.name
			if shape == Shape(circ) {
				name = "circle/" + tt.name
			}
			t.Run(name, func(t *testing.T) {
				f := &Fence{ID: "f", Shape: shape, Detect: tt.detect, VehicleClass: tt.class}
				got, ok := f.Eval(tt.prev, *tt.cur, tt.driver)
				if !ok {
					got = 0
				}
				if got != tt.want {
					t.Fatalf("Eval = %v, want %v", got, tt.want)
				}
				fences := append(slices.Clone(decoys), f)
				ix := mustIndex(t, 9, fences)
				var hits []hit
				ix.Transitions(tt.prev, 0, *tt.cur, 0, tt.driver, func(f *Fence, tr Transition) { hits = append(hits, hit{f.ID, tr}) })
				var want []hit
				if tt.want != 0 {
					want = []hit{{"f", tt.want}}
				}
				if !slices.Equal(hits, want) {
					t.Fatalf("Transitions = %v, want %v", hits, want)
				}
			})
		}
	}
}

func TestDetectAndTransitionStrings(t *testing.T) {
	if got := (DetectEnter | DetectCross).String(); got != "enter|cross" {
		t.Errorf("String = %q", got)
	}
	if got := Detect(0).String(); got != "none" {
		t.Errorf("String = %q", got)
	}
	for tr := Enter; tr <= Cross; tr++ {
		if !tr.Detect().Has(tr) || tr.String() == "unknown" {
			t.Errorf("transition %d: Detect %v, String %q", tr, tr.Detect(), tr)
		}
	}
	if Transition(9).Detect() != 0 {
		t.Error("unknown transition has a detect bit")
	}
}

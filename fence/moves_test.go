package fence

import (
	"math/rand/v2"
	"testing"

	"github.com/geomatch/geomatch/internal/geo"
)

// TestMovesEqualsBruteForce: Moves reports exactly the fences holding
// either position, with the right flags, plus the crossed cross fences,
// as a loop over every fence with Contains and Crosses says.
func TestMovesEqualsBruteForce(t *testing.T) {
	r := rand.New(rand.NewPCG(7, 9))
	fences := benchFences(t, r, 60, 60)
	for i, f := range fences {
		if i%3 == 0 {
			f.Detect = DetectCross | DefaultDetect
		}
		if i%7 == 0 {
			f.VehicleClass = "xl"
		}
	}
	ix, err := NewIndex(9)
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range fences {
		if err := ix.Put(f); err != nil {
			t.Fatal(err)
		}
	}
	type got struct{ was, is bool }
	for n := range 20000 {
		prev := benchPoint(r)
		cur := geo.LatLng{Lat: prev.Lat + (r.Float64()-0.5)*0.02, Lng: prev.Lng + (r.Float64()-0.5)*0.02}
		if n%4 == 0 {
			cur = benchPoint(r)
		}
		class := ""
		if n%2 == 0 {
			class = "xl"
		}
		seen := map[string]got{}
		ix.Moves(&prev, 0, cur, 0, class, func(f *Fence, was, is bool) {
			if _, dup := seen[f.ID]; dup {
				t.Fatalf("fence %s reported twice", f.ID)
			}
			seen[f.ID] = got{was, is}
		})
		for _, f := range fences {
			if !f.Applies(class) {
				if _, ok := seen[f.ID]; ok {
					t.Fatalf("fence %s of class %q reported for class %q", f.ID, f.VehicleClass, class)
				}
				continue
			}
			was, is := f.Shape.Contains(prev), f.Shape.Contains(cur)
			crossed := !was && !is && f.detect()&DetectCross != 0 && f.Shape.Crosses(prev, cur)
			g, ok := seen[f.ID]
			switch {
			case was || is:
				if !ok || g != (got{was, is}) {
					t.Fatalf("move %d, fence %s: reported %v (%v), want was=%v is=%v", n, f.ID, g, ok, was, is)
				}
			case crossed:
				if !ok || g != (got{}) {
					t.Fatalf("move %d, fence %s: crossed, reported %v (%v)", n, f.ID, g, ok)
				}
			case ok:
				t.Fatalf("move %d, fence %s: reported %v, holds neither position and is not crossed", n, f.ID, g)
			}
		}
	}
}

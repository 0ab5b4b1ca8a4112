package fence

import (
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/geomatch/geomatch/internal/geo"
)

func TestIndexPutGetDeleteFences(t *testing.T) {
	if _, err := NewIndex(16); err == nil {
		t.Fatal("NewIndex(16) accepted")
	}
	ix, err := NewIndex(9)
	if err != nil {
		t.Fatal(err)
	}
	r := newRand(21)
	fences := randomFences(t, r, regions[0], 40)
	for _, f := range fences {
		if err := ix.Put(f); err != nil {
			t.Fatal(err)
		}
	}
	if ix.Len() != 40 || ix.Res() != 9 {
		t.Fatalf("Len = %d, Res = %d", ix.Len(), ix.Res())
	}
	if f, ok := ix.Get(fences[3].ID); !ok || f != fences[3] {
		t.Fatalf("Get = %v, %v", f, ok)
	}
	if _, ok := ix.Get("nope"); ok {
		t.Fatal("Get of a missing ID succeeded")
	}
	// Paging by set, ordered by ID.
	var a []string
	for _, f := range fences {
		if f.Set == "a" {
			a = append(a, f.ID)
		}
	}
	slices.Sort(a)
	var paged []string
	after := ""
	for {
		var page []string
		for f := range ix.Fences("a", after) {
			page = append(page, f.ID)
			if len(page) == 7 {
				break
			}
		}
		if len(page) == 0 {
			break
		}
		paged = append(paged, page...)
		after = page[len(page)-1]
	}
	if !slices.Equal(paged, a) {
		t.Fatalf("paging set a gave %v, want %v", paged, a)
	}
	var allIDs []string
	for f := range ix.Fences("", "") {
		allIDs = append(allIDs, f.ID)
	}
	if len(allIDs) != 40 || !slices.IsSorted(allIDs) {
		t.Fatalf("Fences(\"\", \"\") = %v", allIDs)
	}
	// Replace: same ID, another shape, another set.
	c, _ := NewCircle(geo.LatLng{Lat: 40.75, Lng: -73.98}, 300)
	repl := &Fence{ID: fences[0].ID, Set: "z", Shape: c}
	if err := ix.Put(repl); err != nil {
		t.Fatal(err)
	}
	if f, _ := ix.Get(repl.ID); f != repl || ix.Len() != 40 {
		t.Fatalf("replace: Get = %v, Len = %d", f, ix.Len())
	}
	fences[0] = repl
	checkAgainstBrute(t, ix, fences, r)
	// Delete half, check, delete the rest: the index empties completely.
	for _, f := range fences[:20] {
		if !ix.Delete(f.ID) {
			t.Fatalf("Delete(%s) = false", f.ID)
		}
	}
	if ix.Delete(fences[0].ID) {
		t.Fatal("second Delete succeeded")
	}
	checkAgainstBrute(t, ix, fences[20:], r)
	for _, f := range fences[20:] {
		ix.Delete(f.ID)
	}
	if ix.Len() != 0 || len(ix.cells) != 0 || ix.cross.Len() != 0 || len(ix.ids) != 0 || len(ix.sets) != 0 || ix.wrapped != 0 {
		t.Fatalf("empty index keeps %d cells, %d cross rects, %d ids, %d sets", len(ix.cells), ix.cross.Len(), len(ix.ids), len(ix.sets))
	}
	for res, n := range ix.levels {
		if n != 0 {
			t.Fatalf("levels[%d] = %d after deleting everything", res, n)
		}
	}
}

// checkAgainstBrute compares Containing and Transitions with brute force
// at random points of the city.
func checkAgainstBrute(t *testing.T, ix *Index, fences []*Fence, r interface{ Float64() float64 }) {
	t.Helper()
	rg := regions[0]
	for range 3000 {
		p := geo.LatLng{Lat: rg.lat + rg.dLat*(2*r.Float64()-1), Lng: rg.lng + rg.dLng*(2*r.Float64()-1)}
		q := geo.LatLng{Lat: p.Lat + 0.003*(r.Float64()-0.5), Lng: p.Lng + 0.003*(r.Float64()-0.5)}
		if got, want := indexContaining(ix, p, 0), bruteContaining(fences, p); !slices.Equal(got, want) {
			t.Fatalf("Containing(%v) = %v, want %v", p, got, want)
		}
		if got, want := indexTransitions(ix, &q, 0, p, 0, "car"), bruteTransitions(fences, &q, p, "car"); !slices.Equal(got, want) {
			t.Fatalf("Transitions(%v -> %v) = %v, want %v", q, p, got, want)
		}
	}
}

func TestIndexRefuses(t *testing.T) {
	c, _ := NewCircle(geo.LatLng{Lat: 1, Lng: 1}, 100)
	ix, _ := NewIndex(9)
	tests := []struct {
		name string
		f    *Fence
		want string
	}{
		{"nil", nil, "nil fence"},
		{"no ID", &Fence{Shape: c}, "no ID"},
		{"no shape", &Fence{ID: "x"}, "no shape"},
		{"nil polygon", &Fence{ID: "x", Shape: (*Polygon)(nil)}, "empty polygon"},
		{"zero circle", &Fence{ID: "x", Shape: &Circle{}}, "empty circle"},
		{"unknown detect", &Fence{ID: "x", Shape: c, Detect: 1 << 6}, "unknown detect"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := ix.Put(tt.f)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("Put = %v, want an error containing %q", err, tt.want)
			}
		})
	}
	ix8, _ := NewIndex(8)
	p, err := ix8.Prepare(&Fence{ID: "x", Shape: c})
	if err != nil {
		t.Fatal(err)
	}
	if err := ix.PutPrepared(p); err == nil || !strings.Contains(err.Error(), "resolution 8") {
		t.Fatalf("PutPrepared at another resolution: %v", err)
	}
	if ix.Len() != 0 {
		t.Fatal("a refused fence was indexed")
	}
}

func TestPrepareRefusesHugeCovers(t *testing.T) {
	if testing.Short() {
		t.Skip("slow")
	}
	c, _ := NewCircle(geo.LatLng{Lat: 10, Lng: 10}, MaxRadiusM)
	ix12, _ := NewIndex(12)
	_, err := ix12.Prepare(&Fence{ID: "big", Shape: c})
	if err == nil || !strings.Contains(err.Error(), fmt.Sprintf("more than %d index cells", MaxCells)) {
		t.Fatalf("Prepare = %v, want a too-many-cells error", err)
	}
	// The largest circle fits at resolution 9.
	ix9, _ := NewIndex(9)
	p, err := ix9.Prepare(&Fence{ID: "big", Shape: c})
	if err != nil {
		t.Fatal(err)
	}
	b, in := p.Cells()
	t.Logf("a %d km circle at resolution 9: %d boundary and %d interior cells", MaxRadiusM/1000, b, in)
}

// TestIndexConcurrentReads runs lookups from several goroutines at once
// (run with -race).
func TestIndexConcurrentReads(t *testing.T) {
	r := newRand(22)
	fences := randomFences(t, r, regions[3], 60)
	ix := mustIndex(t, 9, fences)
	points := probePoints(r, regions[3], fences, 400)
	want := make([][]string, len(points))
	for i, p := range points {
		want[i] = bruteContaining(fences, p)
	}
	var wg sync.WaitGroup
	errs := make(chan string, 4)
	for g := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range points {
				p := points[(i+g*97)%len(points)]
				if got := indexContaining(ix, p, 0); !slices.Equal(got, want[(i+g*97)%len(points)]) {
					errs <- fmt.Sprintf("Containing(%v) = %v", p, got)
					return
				}
				prev := points[(i+1)%len(points)]
				ix.Transitions(&prev, 0, p, 0, "", func(*Fence, Transition) {})
			}
		}()
	}
	wg.Wait()
	close(errs)
	for e := range errs {
		t.Fatal(e)
	}
}

// TestMixedWorkload puts, replaces and deletes fences at random and
// checks the index against brute force along the way.
func TestMixedWorkload(t *testing.T) {
	r := newRand(23)
	pool := randomFences(t, r, regions[0], 120)
	ix, _ := NewIndex(9)
	live := map[string]*Fence{}
	for step := range 400 {
		f := pool[r.IntN(len(pool))]
		switch r.IntN(3) {
		case 0, 1:
			g := *f
			g.Detect = Detect(r.IntN(16))
			if err := ix.Put(&g); err != nil {
				t.Fatal(err)
			}
			live[g.ID] = &g
		case 2:
			_, was := live[f.ID]
			if got := ix.Delete(f.ID); got != was {
				t.Fatalf("step %d: Delete(%s) = %v, want %v", step, f.ID, got, was)
			}
			delete(live, f.ID)
		}
	}
	var cur []*Fence
	for _, f := range live {
		cur = append(cur, f)
	}
	if ix.Len() != len(cur) {
		t.Fatalf("Len = %d, want %d", ix.Len(), len(cur))
	}
	checkAgainstBrute(t, ix, cur, r)
}

// TestCrossFencesListedWhereverTheirBoundaryIs checks what the in-cell
// Cross search relies on: a fence detecting Cross has an entry in every
// cell whose micro box holds a point of its boundary (or covers the cell
// as interior), with that point's micro cell mixed.
func TestCrossFencesListedWhereverTheirBoundaryIs(t *testing.T) {
	r := newRand(24)
	fences := randomFences(t, r, regions[0], 40)
	for _, f := range fences {
		f.Detect = DetectCross
	}
	ix := mustIndex(t, 9, fences)
	checked := 0
	for _, f := range fences {
		var samples []geo.LatLng
		f.Shape.trace(2, func(p geo.LatLng) bool { samples = append(samples, p); return true })
		for _, q := range samples {
			for _, n := range cellAt(q, 9).GridDisk(1) {
				l := ix.cells[n]
				if l == nil || !l.box.ok {
					if b := newMicroBox(n); b.ok && b.cell(q) >= 0 {
						t.Fatalf("fence %s: boundary point %v lies in the box of %s, which has no list", f.ID, q, n)
					}
					continue
				}
				k := l.box.cell(q)
				if k < 0 {
					continue
				}
				checked++
				found := false
				for _, e := range l.entries {
					if e.f == f {
						found = true
						if e.in == microAllIn || (e.in|e.out)&(1<<k) != 0 {
							t.Fatalf("fence %s: boundary point %v in micro cell %d of %s, not marked mixed", f.ID, q, k, n)
						}
					}
				}
				if !found && !slices.Contains(indexContaining(ix, cellCenter(n), n), f.ID) {
					t.Fatalf("fence %s: boundary point %v lies in the box of %s, where the fence has no entry", f.ID, q, n)
				}
			}
		}
	}
	t.Logf("%d (boundary point, box) pairs checked", checked)
}

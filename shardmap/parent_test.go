package shardmap

import (
	"testing"

	"github.com/uber/h3-go/v4"
)

// randomCells returns n valid cells at random resolutions and places.
func randomCells(n int, seed uint64) []Cell {
	r := newRand(seed)
	out := make([]Cell, n)
	for i := range out {
		res := r.IntN(maxRes + 1)
		out[i] = h3.LatLngToCell(toH3(awkwardPoint(r, res)), res)
	}
	return out
}

func TestParentMatchesH3(t *testing.T) {
	for _, c := range randomCells(20000, 1) {
		for res := -1; res <= maxRes+1; res++ {
			want := Cell(0) // h3 leaves the output zero when it refuses
			if res >= 0 && res <= maxRes {
				want = c.Parent(res)
			}
			if got := Parent(c, res); got != want {
				t.Fatalf("Parent(%s, %d) = %s, h3 says %s", c, res, got, want)
			}
		}
	}
}

func TestResolutionMatchesH3(t *testing.T) {
	for _, c := range randomCells(20000, 2) {
		if got, want := Resolution(c), c.Resolution(); got != want {
			t.Fatalf("Resolution(%s) = %d, h3 says %d", c, got, want)
		}
	}
}

func TestPentagonBaseCells(t *testing.T) {
	n := 0
	for b := 0; b < 128; b++ {
		if pentagonBaseCell(b) {
			n++
		}
	}
	if n != h3.NumPentagons {
		t.Fatalf("%d pentagon base cells, want %d", n, h3.NumPentagons)
	}
	for _, p := range h3.Pentagons(0) {
		if !pentagonBaseCell(baseCell(p)) {
			t.Fatalf("pentagon %s has base cell %d, not in the list", p, baseCell(p))
		}
	}
}

// TestValidCellMatchesH3 compares the pure Go validity check with h3's on
// valid cells, their children's deleted subsequences, and random bit flips.
func TestValidCellMatchesH3(t *testing.T) {
	r := newRand(3)
	check := func(c Cell) {
		t.Helper()
		if got, want := validCell(c), c.IsValid(); got != want {
			t.Fatalf("validCell(%s = %#x) = %v, h3 says %v", c, uint64(c), got, want)
		}
	}
	for _, c := range randomCells(5000, 4) {
		check(c)
		for range 8 {
			check(c ^ Cell(1)<<r.IntN(64)) // one flipped bit
		}
		check(Cell(r.Uint64()))
	}
	for _, p := range h3.Pentagons(5) {
		check(p)
		for d := uint64(0); d < 8; d++ { // every first digit under a pentagon, incl. K
			check(Cell(uint64(p)&^(digitMask<<uint((maxRes-1)*digitBits)) | d<<uint((maxRes-1)*digitBits)))
		}
	}
	check(0)
	check(-1)
}

func BenchmarkParent(b *testing.B) {
	b.ReportAllocs()
	c := h3.LatLngToCell(toH3(nyc), 9)
	var sink Cell
	for b.Loop() {
		sink ^= Parent(c, 7)
	}
	_ = sink
}

package shardmap

import (
	"math"
	"slices"
	"strings"
	"testing"

	"github.com/uber/h3-go/v4"

	"github.com/geomatch/geomatch/internal/geo"
)

func TestNewLayoutValidation(t *testing.T) {
	c7 := h3.LatLngToCell(toH3(nyc), 7)
	c8 := c7.Children(8)[3]
	c9 := c8.Children(9)[2]
	other8 := h3.LatLngToCell(toH3(geo.LatLng{Lat: 48.85, Lng: 2.35}), 8)
	tests := []struct {
		name       string
		res, depth int
		splits     []Cell
		wantErr    string // substring; "" means valid
	}{
		{"default, no splits", 7, 2, nil, ""},
		{"split at the shard resolution", 7, 2, []Cell{c7}, ""},
		{"nested split under its split parent", 7, 2, []Cell{c8, c7}, ""},
		{"resolution 0, depth 3", 0, 3, nil, ""},
		{"resolution 15, depth 0", 15, 0, nil, ""},
		{"negative resolution", -1, 2, nil, "shard resolution -1"},
		{"resolution above 15", 16, 0, nil, "shard resolution 16"},
		{"negative depth", 7, -1, nil, "max split depth -1"},
		{"depth above 3", 7, 4, nil, "max split depth 4"},
		{"res + depth above 15", 14, 2, nil, "must not exceed 15"},
		{"split with depth 0", 7, 0, []Cell{c7}, "split cell " + c7.String()},
		{"split coarser than the shard resolution", 8, 1, []Cell{c7}, "split cell " + c7.String()},
		{"split at the fine resolution", 7, 2, []Cell{c7, c8, c9}, "split cell " + c9.String()},
		{"nested split without its parent split", 7, 2, []Cell{other8}, "split cell " + other8.String() + ": its parent"},
		{"nested split next to another split", 7, 2, []Cell{c7, other8}, "split cell " + other8.String()},
		{"invalid cell", 7, 2, []Cell{c7 | math.MinInt64}, "not a valid H3 cell"},
		{"zero cell", 7, 2, []Cell{0}, "not a valid H3 cell"},
		{"deleted pentagon subsequence", 0, 2, []Cell{h3.Pentagons(0)[0].Children(1)[0] | 1<<(3*(maxRes-1))}, "not a valid H3 cell"},
		{"duplicate split", 7, 2, []Cell{c7, c7}, "listed twice"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			l, err := NewLayout(tt.res, tt.depth, tt.splits)
			switch {
			case tt.wantErr == "" && err != nil:
				t.Fatalf("NewLayout: %v, want success", err)
			case tt.wantErr != "" && err == nil:
				t.Fatalf("NewLayout succeeded, want an error containing %q", tt.wantErr)
			case tt.wantErr != "" && !strings.Contains(err.Error(), tt.wantErr):
				t.Fatalf("NewLayout: %v, want an error containing %q", err, tt.wantErr)
			case err == nil:
				if l.Res() != tt.res || l.MaxSplitDepth() != tt.depth || l.FineRes() != tt.res+tt.depth {
					t.Fatalf("got res %d depth %d fine %d", l.Res(), l.MaxSplitDepth(), l.FineRes())
				}
				want := slices.Sorted(slices.Values(tt.splits))
				if got := l.Splits(); !slices.Equal(got, want) {
					t.Fatalf("Splits() = %v, want %v", got, want)
				}
			}
		})
	}
}

// TestShardOfPartition checks that the shards partition the globe: among the
// ancestors of a point's fine cell exactly one is a shard, ShardOf returns
// it, and a point of a split cell belongs to one of its descendants.
func TestShardOfPartition(t *testing.T) {
	r := newRand(10)
	for _, cfg := range []struct{ res, depth int }{{7, 2}, {0, 3}, {5, 3}, {9, 1}, {12, 0}} {
		for range 40 {
			center := awkwardPoint(r, cfg.res)
			splits := splitsAround(r, center, cfg.res, cfg.depth)
			l := mustLayout(t, cfg.res, cfg.depth, splits)
			for range 100 {
				p := destination(center, 6.3*r.Float64(), 3*circMaxM(cfg.res)*r.Float64())
				fine := l.FineCell(p)
				s := l.ShardOf(p)
				if s != l.ShardOfFine(fine) || !l.IsShard(s) {
					t.Fatalf("ShardOf(%v) = %s: ShardOfFine = %s, IsShard = %v", p, s, l.ShardOfFine(fine), l.IsShard(s))
				}
				n := 0
				for res := cfg.res; res <= l.FineRes(); res++ {
					if l.IsShard(Parent(fine, res)) {
						n++
					}
				}
				if n != 1 {
					t.Fatalf("point %v: %d ancestors of its fine cell %s are shards, want 1", p, n, fine)
				}
				if top := Parent(fine, cfg.res); l.isSplit(top) {
					if Resolution(s) <= cfg.res || Parent(s, cfg.res) != top {
						t.Fatalf("point %v in split cell %s has shard %s, not one of its descendants", p, top, s)
					}
				} else if s != top {
					t.Fatalf("point %v in unsplit cell %s has shard %s", p, top, s)
				}
			}
		}
	}
}

// TestSplitLocality checks that splitting a shard X changes the shard of
// exactly the points whose shard was X (they move to X's children), and
// that merging X back restores every point's shard.
func TestSplitLocality(t *testing.T) {
	r := newRand(11)
	for i := range 60 {
		res, depth := 7, 2
		if i%3 == 0 {
			res, depth = 4, 3
		}
		center := awkwardPoint(r, res)
		base := splitsAround(r, center, res, depth)
		before := mustLayout(t, res, depth, base)
		// X: the shard of a point near the center, if it can still be split.
		x := before.ShardOf(destination(center, 6.3*r.Float64(), circMaxM(res)*r.Float64()))
		if Resolution(x) >= before.FineRes() {
			continue
		}
		after := mustLayout(t, res, depth, append(slices.Clone(base), x))
		for range 300 {
			p := destination(center, 6.3*r.Float64(), 3*circMaxM(res)*r.Float64())
			was, now := before.ShardOf(p), after.ShardOf(p)
			if was != x && now != was {
				t.Fatalf("splitting %s moved %v from %s to %s", x, p, was, now)
			}
			if was == x && (Resolution(now) != Resolution(x)+1 || Parent(now, Resolution(x)) != x) {
				t.Fatalf("splitting %s moved %v to %s, not a child of %s", x, p, now, x)
			}
		}
		if after.IsShard(x) || !before.IsShard(x) {
			t.Fatalf("IsShard(%s) before %v after %v", x, before.IsShard(x), after.IsShard(x))
		}
		merged := mustLayout(t, res, depth, slices.DeleteFunc(after.Splits(), func(c Cell) bool { return c == x }))
		if !slices.Equal(merged.Splits(), before.Splits()) {
			t.Fatalf("merge: splits %v, want %v", merged.Splits(), before.Splits())
		}
		for range 300 {
			p := destination(center, 6.3*r.Float64(), 3*circMaxM(res)*r.Float64())
			if got, want := merged.ShardOf(p), before.ShardOf(p); got != want {
				t.Fatalf("after merging %s back, %v is in %s, was in %s", x, p, got, want)
			}
		}
	}
}

func TestIsShard(t *testing.T) {
	c7 := h3.LatLngToCell(toH3(nyc), 7)
	c8 := c7.Children(8)[3]
	l := mustLayout(t, 7, 2, []Cell{c7, c8})
	tests := []struct {
		name string
		c    Cell
		want bool
	}{
		{"unsplit cell at Res", c7.GridDisk(1)[1], true},
		{"split cell", c7, false},
		{"unsplit child of a split cell", c7.Children(8)[0], true},
		{"split child", c8, false},
		{"grandchild under a split child", c8.Children(9)[4], true},
		{"grandchild under an unsplit child", c7.Children(8)[0].Children(9)[0], false},
		{"child of an unsplit cell", c7.GridDisk(1)[1].Children(8)[0], false},
		{"coarser than Res", c7.Parent(6), false},
		{"finer than FineRes", c8.Children(10)[0], false},
		{"invalid index", c7 | math.MinInt64, false},
		{"zero", 0, false},
	}
	for _, tt := range tests {
		if got := l.IsShard(tt.c); got != tt.want {
			t.Errorf("%s: IsShard(%s) = %v, want %v", tt.name, tt.c, got, tt.want)
		}
	}
}

func TestShardOfRejectsBadInput(t *testing.T) {
	l := mustLayout(t, 7, 2, nil)
	for _, p := range []geo.LatLng{{Lat: 91}, {Lng: -180.5}} {
		if f, s := l.FineCell(p), l.ShardOf(p); f != 0 || s != 0 {
			t.Errorf("FineCell(%v) = %s, ShardOf = %s, want 0", p, f, s)
		}
	}
	if s := l.ShardOfFine(h3.LatLngToCell(toH3(nyc), 6)); s != 0 {
		t.Errorf("ShardOfFine of a cell coarser than Res = %s, want 0", s)
	}
}

// nycSplitLayout is the default layout with the New York shards around
// the query point split twice, for benchmarks.
func nycSplitLayout(b testing.TB) *Layout {
	c7 := h3.LatLngToCell(toH3(nyc), 7)
	splits := append([]Cell{c7}, c7.Children(8)...)
	return mustLayout(b, 7, 2, splits)
}

func BenchmarkShardOfFine(b *testing.B) {
	fine := h3.LatLngToCell(toH3(nyc), 9)
	for _, bc := range []struct {
		name string
		l    *Layout
	}{{"unsplit", mustLayout(b, 7, 2, nil)}, {"split-twice", nycSplitLayout(b)}} {
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			var sink Cell
			for b.Loop() {
				sink ^= bc.l.ShardOfFine(fine)
			}
			_ = sink
		})
	}
}

func BenchmarkShardOf(b *testing.B) {
	b.ReportAllocs()
	l := nycSplitLayout(b)
	var sink Cell
	for b.Loop() {
		sink ^= l.ShardOf(nyc)
	}
	_ = sink
}

// FuzzShardOfFine checks, for any index, that the pure Go helpers agree
// with h3 and never panic, and, for the fine cell of any position, that
// ShardOfFine returns a shard that is an ancestor of the cell.
func FuzzShardOfFine(f *testing.F) {
	f.Add(uint64(h3.LatLngToCell(toH3(nyc), 9)), nyc.Lat, nyc.Lng)
	f.Add(uint64(0), 90.0, 0.0)
	f.Add(uint64(1)<<63, -89.95, 179.99)
	f.Add(uint64(h3.Pentagons(9)[3]), 0.0, -180.0)
	f.Fuzz(func(t *testing.T, raw uint64, lat, lng float64) {
		c := Cell(raw)
		if got, want := validCell(c), c.IsValid(); got != want {
			t.Fatalf("validCell(%#x) = %v, h3 says %v", raw, got, want)
		}
		p := geo.LatLng{Lat: lat, Lng: lng}
		var splits []Cell
		if p.Validate() == nil {
			splits = splitsAround(newRand(raw), p, 7, 2)
		}
		l := mustLayout(t, 7, 2, splits)
		l.IsShard(c)
		s := l.ShardOfFine(c) // must not panic on garbage
		if c.IsValid() {
			for res := 0; res <= maxRes; res++ {
				if res <= Resolution(c) && Parent(c, res) != c.Parent(res) {
					t.Fatalf("Parent(%s, %d) = %s, h3 says %s", c, res, Parent(c, res), c.Parent(res))
				}
			}
			if Resolution(c) == l.FineRes() && (!l.IsShard(s) || Parent(c, Resolution(s)) != s) {
				t.Fatalf("ShardOfFine(%s) = %s: not a shard containing it", c, s)
			}
		}
		if p.Validate() != nil {
			return
		}
		fine := l.FineCell(p)
		s = l.ShardOfFine(fine)
		if !l.IsShard(s) || Parent(fine, Resolution(s)) != s {
			t.Fatalf("ShardOfFine(%s) = %s for %v: not a shard containing it", fine, s, p)
		}
	})
}

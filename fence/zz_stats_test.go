package fence

import "testing"

func TestZZStats(t *testing.T) {
	if testing.Short() {
		t.Skip()
	}
	r := newRand(1)
	fences := benchFences(t, r, 10000, 10000)
	ix, _ := NewIndex(9)
	for _, f := range fences {
		ix.Put(f)
	}
	moves := benchMoves(newRand(2), 5000)
	var entries, interior, mixed, noBox, poly, circ int
	for _, m := range moves {
		var ls cellLists
		ix.collect(m.cur, m.curCell, &ls)
		if ls.micro < 0 {
			noBox++
		}
		for li, list := range ls.lists[:ls.n] {
			for _, e := range list {
				entries++
				k := ls.micro
				if li > 0 {
					k = -1
				}
				switch e.side(k) {
				case -1:
					mixed++
					if e.rec.isCircle {
						circ++
					} else {
						poly++
					}
				}
				if e.in == microAllIn {
					interior++
				}
			}
		}
	}
	n := float64(len(moves))
	t.Logf("per lookup: %.1f entries, %.1f interior, %.1f mixed (%.1f polygons, %.1f circles), %.3f outside box", float64(entries)/n, float64(interior)/n, float64(mixed)/n, float64(poly)/n, float64(circ)/n, float64(noBox)/n)
}

func TestZZCPUTransitions(t *testing.T) {
	if testing.Short() {
		t.Skip()
	}
	r := newRand(1)
	fences := benchFences(t, r, 10000, 10000)
	ix, _ := NewIndex(9)
	for _, f := range fences {
		ix.Put(f)
	}
	moves := benchMoves(newRand(2), 1<<14)
	n := 0
	fn := func(*Fence, Transition) { n++ }
	for round := 0; round < 3; round++ {
		c0 := cpuNow()
		const N = 200000
		for i := range N {
			m := &moves[i&(len(moves)-1)]
			ix.Transitions(&m.prev, m.prevCell, m.cur, m.curCell, "car", fn)
		}
		t.Logf("Transitions: cpu %v/op", (cpuNow()-c0)/N)
		c0 = cpuNow()
		for i := range N {
			m := &moves[i&(len(moves)-1)]
			ix.Containing(m.cur, m.curCell, func(*Fence) { n++ })
		}
		t.Logf("Containing: cpu %v/op", (cpuNow()-c0)/N)
	}
}

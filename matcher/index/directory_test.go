package index

import (
	"math/rand/v2"
	"strconv"
	"testing"
)

// TestDirectoryMatchesMap drives the directory and a Go map with the same
// random puts and deletes, through growth and shrinking, and compares them.
func TestDirectoryMatchesMap(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	var ids []string // by slot
	d := newDirectory(func(s int32) string { return ids[s] })
	m := map[string]int32{}
	check := func(step int) {
		t.Helper()
		if d.n != len(m) {
			t.Fatalf("step %d: n = %d, map has %d", step, d.n, len(m))
		}
		sum := 0
		for i := range d.parts {
			p := &d.parts[i]
			sum += p.n
			if len(p.cells) > 0 && p.n*4 > len(p.cells)*3 {
				t.Fatalf("step %d: part %d over-full: %d in %d cells", step, i, p.n, len(p.cells))
			}
		}
		if sum != d.n {
			t.Fatalf("step %d: parts hold %d, n = %d", step, sum, d.n)
		}
		for id, s := range m {
			if d.get(id) != s {
				t.Fatalf("step %d: get(%s) lost", step, id)
			}
		}
	}
	for step := range 60_000 {
		id := strconv.Itoa(r.IntN(5000 + step/4))
		// Phases: grow, churn, shrink.
		putBias := 2
		if step > 40_000 {
			putBias = 0
		}
		if s, ok := m[id]; ok && r.IntN(3) >= putBias {
			d.del(s)
			delete(m, id)
			if d.get(id) >= 0 {
				t.Fatalf("step %d: %s still found after delete", step, id)
			}
		} else if !ok {
			s := int32(len(ids))
			ids = append(ids, id)
			d.put(s)
			m[id] = s
		}
		if d.get("absent-"+id) >= 0 {
			t.Fatalf("step %d: found an absent id", step)
		}
		if step%5000 == 0 {
			check(step)
		}
	}
	check(-1)
	for id, s := range m {
		d.del(s)
		delete(m, id)
	}
	check(-2)
	for i := range d.parts {
		if len(d.parts[i].cells) > minDirSlots {
			t.Fatalf("part %d did not shrink: %d cells", i, len(d.parts[i].cells))
		}
	}
}

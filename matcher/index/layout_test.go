package index

import (
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/uber/h3-go/v4"

	"github.com/geomatch/geomatch/internal/geo"
)

// checkLayout verifies the pointer-free layout against itself: every live
// slot's point is where its shard and pos say, chained once in the grid
// cell of its position and inside its shard's box; every slot in a list is
// in the directory under its id; the arena's live bytes are those of the
// ids slots point to. It returns the first inconsistency, or "".
func checkLayout(ix *Index) string {
	ix.mu.Lock()
	defer ix.mu.Unlock()
	byNum := *ix.byNum.Load()
	livePts := 0
	for cell, sh := range ix.shards {
		if sh.cell != cell || byNum[sh.num] != sh {
			return fmt.Sprintf("shard %v: cell %v, number %d not its own", cell, sh.cell, sh.num)
		}
		if sh.len() == 0 {
			return fmt.Sprintf("shard %v: empty but in the set", cell)
		}
		seen := make([]int, sh.len())
		for c, head := range sh.heads {
			for i := head; i >= 0; i = sh.link[i] {
				p := &sh.pts[i]
				if got := sh.cellOf(p.lat, p.lng); got != int32(c) {
					return fmt.Sprintf("shard %v: point %d chained in cell %d, belongs in %d", cell, i, c, got)
				}
				seen[i]++
			}
		}
		for i := range sh.pts {
			p := &sh.pts[i]
			if seen[i] != 1 {
				return fmt.Sprintf("shard %v: point %d chained %d times", cell, i, seen[i])
			}
			if h := ix.slots.hot.at(p.slot); h.shard != sh.num || *ix.slots.pos.at(p.slot) != int32(i) {
				return fmt.Sprintf("shard %v: point %d (slot %d) recorded in shard %d at %d", cell, i, p.slot, h.shard, *ix.slots.pos.at(p.slot))
			}
			if p.lat < sh.minLat || p.lat > sh.maxLat || p.lng < sh.minLng || p.lng > sh.maxLng {
				return fmt.Sprintf("shard %v: point %d outside the shard's box", cell, i)
			}
		}
		livePts += sh.len()
	}
	if livePts != ix.live.n {
		return fmt.Sprintf("shards hold %d points, live list %d", livePts, ix.live.n)
	}
	if ix.dir.n != ix.live.n+ix.tombs.n {
		return fmt.Sprintf("directory holds %d, lists %d + %d", ix.dir.n, ix.live.n, ix.tombs.n)
	}
	liveBytes := make(map[int32]int32)
	for _, l := range []*list{&ix.live, &ix.tombs} {
		n := 0
		for s := l.head; s >= 0; s = ix.slots.links.at(s).next {
			id := ix.idOf(s)
			if ix.dir.get(id) != s {
				return fmt.Sprintf("slot %d (%s) not in the directory", s, id)
			}
			if tomb := l == &ix.tombs; tomb != (ix.slots.hot.at(s).shard < 0) {
				return fmt.Sprintf("slot %d (%s): tombstone %v, shard %d", s, id, tomb, ix.slots.hot.at(s).shard)
			}
			liveBytes[int32(ix.slots.hot.at(s).idOff>>arenaPageBits)] += region(id)
			n++
		}
		if n != l.n {
			return fmt.Sprintf("list holds %d, counts %d", n, l.n)
		}
	}
	for num, live := range ix.ids.live {
		if (*ix.ids.pages.Load())[num] != nil && live != liveBytes[int32(num)] {
			return fmt.Sprintf("arena page %d: %d live bytes counted, %d in use", num, live, liveBytes[int32(num)])
		}
	}
	return ""
}

// TestLayoutUnderChurn drives an index through every kind of change, with
// ids of many lengths (so arena pages fill, empty and are evacuated) and
// a small MaxDrivers (so tombstones and slots are recycled), and checks
// the layout and every driver's state against a model along the way.
func TestLayoutUnderChurn(t *testing.T) {
	steps := 40_000
	if testing.Short() || raceEnabled {
		steps = 10_000
	}
	ix, clk := newTestIndex(t, 10*time.Second, 3000)
	r := rand.New(rand.NewPCG(5, 6))
	m := model{}
	cells := h3.GridDisk(cellOf(timesSquare, 7), 2)
	ids := make([]string, 6000)
	for i := range ids {
		ids[i] = fmt.Sprintf("%d-%s", i, strings.Repeat("x", r.IntN(300)))
	}
	ts := map[string]int64{}
	batch := make([]Update, 0, 16)
	res := make([]Result, 16)
	for step := range steps {
		switch op := r.IntN(100); {
		case op < 85:
			batch = batch[:0]
			for range 1 + r.IntN(16) {
				id := ids[r.IntN(len(ids))]
				ts[id] += 1 + int64(r.IntN(3))
				c := cells[r.IntN(len(cells))]
				ll := c.LatLng()
				// Mostly within the cell; now and then far outside it, so
				// points fall outside their shard's grid.
				spread := 0.01
				if r.IntN(50) == 0 {
					spread = 1
				}
				p := geo.LatLng{Lat: ll.Lat + (r.Float64()-0.5)*spread, Lng: ll.Lng + (r.Float64()-0.5)*spread}
				batch = append(batch, Update{ID: id, Pos: p, TimestampMs: ts[id], Shard: c,
					Status: Status(r.IntN(int(StatusOffline) + 1)), VehicleClass: testClasses[r.IntN(len(testClasses))]})
			}
			ix.Apply(batch, res)
			for i, u := range batch {
				if res[i].Outcome != OutcomeApplied {
					continue
				}
				d, ok := ix.Get(u.ID)
				if !ok {
					t.Fatalf("step %d: %s applied but not found", step, u.ID)
				}
				m[u.ID] = d
			}
		case op < 90:
			id := ids[r.IntN(len(ids))]
			if ix.Remove(id) {
				delete(m, id)
			}
		case op < 93:
			id := ids[r.IntN(len(ids))]
			if ix.Evict(id, ts[id]+1) {
				delete(m, id)
			}
		case op < 99:
			clk.Advance(time.Duration(r.IntN(3000)) * time.Millisecond)
			ix.ExpireFunc(func(d Driver) { delete(m, d.ID) })
		default:
			c := cells[r.IntN(len(cells))]
			ix.DropShard(c)
			for id, d := range m {
				if d.Shard == c {
					delete(m, id)
				}
			}
		}
		if step%500 == 0 || step == steps-1 {
			if msg := checkLayout(ix); msg != "" {
				t.Fatalf("step %d: %s", step, msg)
			}
			if ix.Len() != len(m) {
				t.Fatalf("step %d: Len %d, model %d", step, ix.Len(), len(m))
			}
			for id, want := range m {
				if got, ok := ix.Get(id); !ok || got != want {
					t.Fatalf("step %d: Get(%s) = %+v, %v; want %+v", step, id, got, ok, want)
				}
			}
		}
	}
	if ix.ids.bytes() > 4*arenaPageSize+8*3000*310 {
		t.Errorf("arena holds %d bytes for at most 3000 ids of at most 310 bytes", ix.ids.bytes())
	}
}

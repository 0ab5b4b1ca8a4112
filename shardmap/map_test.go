package shardmap

import (
	"math"
	"reflect"
	"slices"
	"sync"
	"testing"

	"github.com/uber/h3-go/v4"

	"github.com/geomatch/geomatch/internal/geo"
)

// nycPoint returns a random point of the New York box.
func nycPoint(r interface{ Float64() float64 }) geo.LatLng {
	return geo.LatLng{Lat: nycMinLat + (nycMaxLat-nycMinLat)*r.Float64(), Lng: nycMinLng + (nycMaxLng-nycMinLng)*r.Float64()}
}

func TestMapAccessors(t *testing.T) {
	d := testDoc()
	m := mustMap(t, d)
	if m.Epoch() != 42 || !reflect.DeepEqual(m.Doc(), d) {
		t.Fatalf("Epoch %d, Doc %+v", m.Epoch(), m.Doc())
	}
	got := m.Doc()
	got.Members[0].ID = "changed"
	if m.Doc().Members[0].ID == "changed" {
		t.Fatalf("Doc() shares the map's document")
	}
	d.Members[0].ID = "changed too"
	if m.Doc().Members[0].ID != "m00" {
		t.Fatalf("NewMap shares the caller's document")
	}
	if ms := m.Members(); len(ms) != 4 || !slices.IsSortedFunc(ms, func(a, b Member) int { return compareIDs(a, b) }) {
		t.Fatalf("Members() = %v", ms)
	}
	if mem, ok := m.Member("m02"); !ok || mem.ID != "m02" {
		t.Fatalf("Member(m02) = %v %v, want the drained member", mem, ok)
	}
	if _, ok := m.Member("nobody"); ok {
		t.Fatalf("Member(nobody) found someone")
	}
	if m.Layout().Res() != 7 || len(m.Layout().Splits()) != 2 {
		t.Fatalf("Layout() = res %d, splits %v", m.Layout().Res(), m.Layout().Splits())
	}
}

func compareIDs(a, b Member) int {
	switch {
	case a.ID < b.ID:
		return -1
	case a.ID > b.ID:
		return 1
	}
	return 0
}

func TestOwnerPinsOverrideTheRing(t *testing.T) {
	d := testDoc()
	m := mustMap(t, d)
	for shard, id := range d.Pins {
		if o, ok := m.Owner(shard); !ok || o.ID != id {
			t.Errorf("pinned shard %s: Owner = %v %v, want %s", shard, o.ID, ok, id)
		}
	}
	// Unpinned shards follow the ring of non-drained members.
	ring := mustRing(t, []Member{d.Members[0], d.Members[1], d.Members[3]}, d.VNodes)
	for _, s := range nycCells(7) {
		if !m.Layout().IsShard(s) || d.Pins[s] != "" {
			continue
		}
		if o, ok := m.Owner(s); !ok || o.ID != ring.Owner(s) {
			t.Fatalf("shard %s: Owner = %s, ring says %s", s, o.ID, ring.Owner(s))
		}
	}
}

func TestOwnerRefusesNonShards(t *testing.T) {
	d := testDoc()
	m := mustMap(t, d)
	c7 := h3.LatLngToCell(toH3(nyc), 7)
	for _, c := range []Cell{c7, c7.Parent(6), c7.GridDisk(1)[1].Children(8)[0], 0, c7 | math.MinInt64} {
		if o, ok := m.Owner(c); ok {
			t.Errorf("Owner(%s) = %s, want no owner: not a shard", c, o.ID)
		}
	}
}

// TestDrainedMembersOwnNothing checks that draining a member moves only its
// own shards, and that with everyone drained nobody owns anything.
func TestDrainedMembersOwnNothing(t *testing.T) {
	d := DefaultDoc(members(5))
	before := mustMap(t, d)
	d.Drained = []string{"m01", "m03"}
	d.Epoch++
	after := mustMap(t, d)
	r := newRand(40)
	for range 5000 {
		p := nycPoint(r)
		if r.IntN(2) == 0 {
			p = randomPoint(r)
		}
		_, s, was, ok1 := before.Locate(p)
		_, _, now, ok2 := after.Locate(p)
		if !ok1 || !ok2 {
			t.Fatalf("Locate(%v) failed", p)
		}
		if now.ID == "m01" || now.ID == "m03" {
			t.Fatalf("shard %s is owned by drained member %s", s, now.ID)
		}
		if was.ID != "m01" && was.ID != "m03" && now != was {
			t.Fatalf("draining m01 and m03 moved shard %s from %s to %s", s, was.ID, now.ID)
		}
	}
	d.Drained = []string{"m00", "m01", "m02", "m03", "m04"}
	none := mustMap(t, d)
	if _, _, _, ok := none.Locate(nyc); ok {
		t.Fatalf("Locate found an owner with every member drained")
	}
	if o, ok := none.Owner(none.Layout().ShardOf(nyc)); ok {
		t.Fatalf("Owner = %s with every member drained", o.ID)
	}
	if ts := none.Route(nyc, 2000); len(ts) != 0 {
		t.Fatalf("Route = %v with every member drained", ts)
	}
}

func TestLocateAgreesWithLayoutAndOwner(t *testing.T) {
	m := mustMap(t, testDoc())
	r := newRand(41)
	for range 5000 {
		p := nycPoint(r)
		if r.IntN(3) == 0 {
			p = awkwardPoint(r, 9)
		}
		fine, shard, owner, ok := m.Locate(p)
		if fine != m.Layout().FineCell(p) || shard != m.Layout().ShardOf(p) {
			t.Fatalf("Locate(%v) = %s, %s; layout says %s, %s", p, fine, shard, m.Layout().FineCell(p), m.Layout().ShardOf(p))
		}
		if o, ok2 := m.Owner(shard); ok != ok2 || o != owner {
			t.Fatalf("Locate(%v) owner %v %v, Owner says %v %v", p, owner, ok, o, ok2)
		}
	}
	if _, _, _, ok := m.Locate(geo.LatLng{Lat: math.NaN()}); ok {
		t.Fatalf("Locate accepted NaN")
	}
}

// TestRouteCacheMatchesUncached checks that cached answers equal a fresh
// computation of the same key, and that repeated calls are served from the
// cache (the same shared slice).
func TestRouteCacheMatchesUncached(t *testing.T) {
	m := mustMap(t, testDoc())
	r := newRand(42)
	for i := range 2000 {
		p := nycPoint(r)
		radius := []float64{0, 300, 2000, 2000, 5000, 20000}[i%6]
		got := m.Route(p, radius)
		k := routeKey{cell: h3.LatLngToCell(toH3(p), m.routes.keyRes), bucket: uint8(m.routes.bucket(radius))}
		fresh := mustMap(t, testDoc()).routeKeyed(k)
		if !reflect.DeepEqual(got, fresh) {
			t.Fatalf("Route(%v, %v) = %v, uncached %v", p, radius, got, fresh)
		}
		again := m.Route(p, radius)
		if len(got) > 0 && &again[0] != &got[0] {
			t.Fatalf("Route(%v, %v) computed again instead of using the cache", p, radius)
		}
	}
	// Above MaxCachedRadiusM answers are computed on every call.
	big := m.Route(nyc, MaxCachedRadiusM+1)
	if again := m.Route(nyc, MaxCachedRadiusM+1); &again[0] == &big[0] {
		t.Fatalf("a radius above MaxCachedRadiusM was cached")
	}
	for _, bad := range []float64{math.NaN(), math.Inf(1)} {
		if ts := m.Route(nyc, bad); ts != nil {
			t.Fatalf("Route(nyc, %v) = %v, want nil", bad, ts)
		}
	}
	if ts, want := m.Route(nyc, -1), m.Route(nyc, 0); !reflect.DeepEqual(ts, want) {
		t.Fatalf("Route with a negative radius = %v, want Route with 0", ts)
	}
}

func TestRouteBuckets(t *testing.T) {
	c := newRouteCache(mustLayout(t, 7, 2, nil), 16, 1000)
	for _, r := range []float64{0, 1e-9, 49.9, 50, 50.1, 999, 2000, 30000, MaxCachedRadiusM} {
		b := c.bucket(r)
		if b < 0 || c.buckets[b] < r || (b > 0 && c.buckets[b-1] >= r) {
			t.Fatalf("bucket(%v) = %d: radius %v", r, b, c.buckets[max(b, 0)])
		}
		if c.buckets[b] > math.Max(r, minRouteBucketM)*1.19 {
			t.Fatalf("bucket(%v) rounds up to %v, more than 19%%", r, c.buckets[b])
		}
	}
	if b := c.bucket(MaxCachedRadiusM * 1.0001); b != -1 {
		t.Fatalf("bucket above the last = %d, want -1", b)
	}
}

func TestRouteCacheIsBounded(t *testing.T) {
	m := mustMap(t, DefaultDoc(members(3)))
	m.routes = newRouteCache(m.layout, 64, 1<<20)
	r := newRand(43)
	for range 2000 {
		m.Route(nycPoint(r), 1000*r.Float64())
	}
	if n := m.routes.len(); n > 64 {
		t.Fatalf("cache holds %d answers, bound 64", n)
	}
	// The size bound holds too, and answers too large are not cached.
	m.routes = newRouteCache(m.layout, 1<<16, 32*200)
	for range 200 {
		m.Route(nycPoint(r), 5000*r.Float64())
	}
	if n := m.routes.size(); n > 32*200 {
		t.Fatalf("cache holds %d cells, bound %d", n, 32*200)
	}
	huge := m.Route(nyc, 50000)
	if again := m.Route(nyc, 50000); &again[0] == &huge[0] {
		t.Fatalf("an answer larger than a generation was cached")
	}
	// A hot key survives the churn: promoted on every use.
	hot := m.Route(nyc, 2000)
	for range 2000 {
		m.Route(nycPoint(r), 1000*r.Float64())
		if again := m.Route(nyc, 2000); &again[0] != &hot[0] {
			t.Fatalf("the hot entry was evicted")
		}
	}
}

// TestRouteConcurrent runs Route from many goroutines (run it with -race).
func TestRouteConcurrent(t *testing.T) {
	m := mustMap(t, testDoc())
	m.routes = newRouteCache(m.layout, 256, 1<<20) // force evictions too
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := newRand(uint64(50 + g))
			for range 300 {
				p := nycPoint(r)
				radius := 3000 * r.Float64()
				ts := m.Route(p, radius)
				k := routeKey{cell: h3.LatLngToCell(toH3(p), m.routes.keyRes), bucket: uint8(m.routes.bucket(radius))}
				if want := m.routeKeyed(k); !reflect.DeepEqual(ts, want) {
					t.Errorf("Route(%v, %v) = %v, want %v", p, radius, ts, want)
					return
				}
			}
		}()
	}
	wg.Wait()
}

func BenchmarkLocate(b *testing.B) {
	b.ReportAllocs()
	m := mustMap(b, DefaultDoc(members(10)))
	for b.Loop() {
		m.Locate(nyc)
	}
}

// BenchmarkRouteCached measures a 2 km search from New York points whose
// answers are all cached.
func BenchmarkRouteCached(b *testing.B) {
	b.ReportAllocs()
	m := mustMap(b, DefaultDoc(members(10)))
	r := newRand(44)
	points := make([]geo.LatLng, 1024)
	for i := range points {
		points[i] = nycPoint(r)
		m.Route(points[i], 2000)
	}
	i := 0
	for b.Loop() {
		m.Route(points[i&1023], 2000)
		i++
	}
}

// TestDrainedAndActiveMembers: a drained member stays a member but is not
// active; the active ids are the others, sorted.
func TestDrainedAndActiveMembers(t *testing.T) {
	d := DefaultDoc([]Member{{ID: "c", Addr: "c:1", Weight: 1}, {ID: "a", Addr: "a:1", Weight: 1}, {ID: "b", Addr: "b:1", Weight: 1}})
	d.Drained = []string{"b"}
	m, err := NewMap(d)
	if err != nil {
		t.Fatal(err)
	}
	if !m.Drained("b") || m.Drained("a") || m.Drained("zz") {
		t.Fatalf("Drained: b %v, a %v, zz %v", m.Drained("b"), m.Drained("a"), m.Drained("zz"))
	}
	if got := m.ActiveIDs(); !slices.Equal(got, []string{"a", "c"}) {
		t.Fatalf("ActiveIDs = %v, want [a c]", got)
	}
}

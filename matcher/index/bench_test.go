package index

import (
	"math/rand/v2"
	"os"
	"runtime"
	"strconv"
	"sync"
	"testing"

	"github.com/uber/h3-go/v4"

	"github.com/geomatch/geomatch/internal/geo"
)

// nyc returns a uniform position over New York.
func nyc(r *rand.Rand) geo.LatLng {
	return geo.LatLng{Lat: 40.55 + 0.4*r.Float64(), Lng: -74.10 + 0.4*r.Float64()}
}

// benchIndex is an index built once per benchmark size, with the heap it
// took.
type benchIndex struct {
	ix             *Index
	bytesPerDriver float64
}

// benchIndexes caches the big indexes across benchmark runs (b.Run calls a
// benchmark function several times while it sizes b.N).
type benchIndexes struct {
	mu    sync.Mutex
	built map[string]*benchIndex
}

var benchCache = benchIndexes{built: map[string]*benchIndex{}}

// get returns the index called name, building it with n drivers placed by
// pos on first use, and measuring the heap it holds.
func (c *benchIndexes) get(b *testing.B, name string, n int, pos func(r *rand.Rand) geo.LatLng) *benchIndex {
	c.mu.Lock()
	defer c.mu.Unlock()
	if bi := c.built[name]; bi != nil {
		return bi
	}
	b.StopTimer()
	defer b.StartTimer()
	bi := &benchIndex{}
	before := heapInUse()
	bi.ix = buildIndex(b, n, pos)
	after := heapInUse()
	bi.bytesPerDriver = float64(after-before) / float64(n)
	c.built[name] = bi
	b.Logf("%s: %d drivers, %d shards, %.0f heap bytes per driver", name, bi.ix.Len(), len(bi.ix.Shards()), bi.bytesPerDriver)
	return bi
}

func heapInUse() uint64 {
	runtime.GC()
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.HeapAlloc
}

// buildIndex loads n drivers with 16-byte ids and one of four classes, in
// batches of 256 as the gRPC layer would.
func buildIndex(tb testing.TB, n int, pos func(r *rand.Rand) geo.LatLng) *Index {
	ix, err := New(Config{MaxDrivers: n})
	if err != nil {
		tb.Fatal(err)
	}
	r := rand.New(rand.NewPCG(7, uint64(n)))
	batch := make([]Update, 0, 256)
	res := make([]Result, 256)
	for i := 0; i < n; i++ {
		p := pos(r)
		batch = append(batch, Update{
			ID:           "driver-" + strconv.FormatInt(1e8+int64(i), 10)[1:] + "x", // 16 bytes
			Pos:          p,
			TimestampMs:  1,
			Status:       Status(1 + r.IntN(4)),
			VehicleClass: testClasses[r.IntN(len(testClasses))],
			Shard:        cellOf(p, 7),
		})
		if len(batch) == cap(batch) || i == n-1 {
			ix.Apply(batch, res)
			batch = batch[:0]
		}
	}
	return ix
}

// benchQuery is a query with the shards covering its 2 km circle.
type benchQuery struct {
	q      geo.LatLng
	shards []h3.Cell
}

func benchQueries(n int, pos func(r *rand.Rand) geo.LatLng) []benchQuery {
	r := rand.New(rand.NewPCG(99, 99))
	qs := make([]benchQuery, n)
	for i := range qs {
		q := pos(r)
		qs[i] = benchQuery{q: q, shards: h3.GridDisk(cellOf(q, 7), 2)} // res-7 ring 2 covers 2 km
	}
	return qs
}

// benchSizes are the fleet sizes of the scaling benchmarks: 10k to 1M, and
// 10M with GEOMATCH_BENCH_10M=1 (about 1 GB of heap and a minute to build
// on a small machine).
func benchSizes() []int {
	sizes := []int{10_000, 100_000, 1_000_000}
	if os.Getenv("GEOMATCH_BENCH_10M") != "" {
		sizes = append(sizes, 10_000_000)
	}
	return sizes
}

// sizeName is 10k, 100k, 1000k, 10000k: names that sort and compare.
func sizeName(n int) string { return strconv.Itoa(n/1000) + "k" }

// BenchmarkNearby: k=10 within 2 km, uniform drivers over New York, the
// query's shards from a res-7 GridDisk of radius 2. The cost should grow
// like log n (the trees' depth), not like n. Budget: 0 allocs/op.
func BenchmarkNearby(b *testing.B) {
	for _, n := range benchSizes() {
		b.Run(sizeName(n), func(b *testing.B) {
			bi := benchCache.get(b, "nyc-"+strconv.Itoa(n), n, nyc)
			queries := benchQueries(1024, nyc)
			dst := make([]Neighbor, 0, 10)
			b.ReportAllocs()
			b.ResetTimer()
			i := 0
			for b.Loop() {
				bq := &queries[i%len(queries)]
				dst = bi.ix.Nearby(bq.q, 2000, 10, bq.shards, Filter{}, dst[:0])
				i++
			}
			b.ReportMetric(bi.bytesPerDriver, "heapB/driver")
		})
	}
}

// BenchmarkNearbyFiltered: as BenchmarkNearby at 100k, asking for available
// drivers of one class (1 in 16 drivers qualifies).
func BenchmarkNearbyFiltered(b *testing.B) {
	bi := benchCache.get(b, "nyc-100000", 100_000, nyc)
	queries := benchQueries(1024, nyc)
	dst := make([]Neighbor, 0, 10)
	f := Filter{Status: StatusAvailable, VehicleClass: "xl"}
	b.ReportAllocs()
	b.ResetTimer()
	i := 0
	for b.Loop() {
		bq := &queries[i%len(queries)]
		dst = bi.ix.Nearby(bq.q, 2000, 10, bq.shards, f, dst[:0])
		i++
	}
}

// BenchmarkNearby1MDensityHotspot: 1M drivers, half of them within about
// 1 km of Times Square, queried there: many drivers per leaf and per shard.
func BenchmarkNearby1MDensityHotspot(b *testing.B) {
	hot := func(r *rand.Rand) geo.LatLng {
		if r.IntN(2) == 0 {
			return nyc(r)
		}
		return geo.LatLng{Lat: timesSquare.Lat + (r.Float64()-0.5)*0.018, Lng: timesSquare.Lng + (r.Float64()-0.5)*0.024}
	}
	bi := benchCache.get(b, "hotspot-1000000", 1_000_000, hot)
	near := func(r *rand.Rand) geo.LatLng {
		return geo.LatLng{Lat: timesSquare.Lat + (r.Float64()-0.5)*0.01, Lng: timesSquare.Lng + (r.Float64()-0.5)*0.01}
	}
	queries := benchQueries(1024, near)
	dst := make([]Neighbor, 0, 10)
	b.ReportAllocs()
	b.ResetTimer()
	i := 0
	for b.Loop() {
		bq := &queries[i%len(queries)]
		dst = bi.ix.Nearby(bq.q, 2000, 10, bq.shards, Filter{}, dst[:0])
		i++
	}
}

// benchUpdates builds an index of n drivers and returns it with a generator
// of updates: each call takes the next driver (round robin), advances its
// timestamp and lets change adjust the rest.
func benchUpdates(b *testing.B, n int, change func(r *rand.Rand, u *Update)) (*Index, func() Update) {
	ix := buildIndex(b, n, nyc)
	var us []Update
	for _, st := range ix.Shards() {
		for _, d := range ix.ShardDrivers(st.Shard) {
			us = append(us, Update{ID: d.ID, Pos: d.Pos, TimestampMs: d.TimestampMs, Shard: d.Shard})
		}
	}
	r := rand.New(rand.NewPCG(3, 3))
	i := 0
	return ix, func() Update {
		u := &us[i%len(us)]
		i++
		u.TimestampMs++
		change(r, u)
		return *u
	}
}

// BenchmarkApply: updates of known drivers that stay in their shard (a few
// meters of movement). Budget: 0 allocs/op.
func BenchmarkApply(b *testing.B) {
	jitter := func(r *rand.Rand, u *Update) { // about a meter, same shard
		p := geo.LatLng{Lat: u.Pos.Lat + (r.Float64()-0.5)*1e-5, Lng: u.Pos.Lng + (r.Float64()-0.5)*1e-5}
		if cellOf(p, 7) == u.Shard {
			u.Pos = p
		}
	}
	b.Run("single", func(b *testing.B) {
		ix, next := benchUpdates(b, 100_000, jitter)
		ups := make([]Update, 4096)
		for i := range ups {
			ups[i] = next()
		}
		res := make([]Result, 1)
		b.ReportAllocs()
		b.ResetTimer()
		i := 0
		for b.Loop() {
			u := &ups[i%len(ups)]
			u.TimestampMs += 1000
			ix.Apply(ups[i%len(ups):i%len(ups)+1], res)
			i++
		}
	})
	b.Run("batch256", func(b *testing.B) {
		ix, next := benchUpdates(b, 100_000, jitter)
		ups := make([]Update, 256*64)
		for i := range ups {
			ups[i] = next()
		}
		res := make([]Result, 256)
		b.ReportAllocs()
		b.ResetTimer()
		i := 0
		for b.Loop() {
			batch := ups[(i%64)*256 : (i%64+1)*256]
			for j := range batch {
				batch[j].TimestampMs += 1000
			}
			ix.Apply(batch, res)
			i++
		}
	})
}

// BenchmarkApplyScaling: batches of 256 updates of known drivers that stay
// in their shard, over the indexes of BenchmarkNearby (10k to 1M drivers,
// 10M with GEOMATCH_BENCH_10M=1): the cost per update should stay flat.
// The updates cycle over a random quarter of the fleet (at most 256k
// drivers), so at scale each one finds its driver's entry, directory slot
// and tree nodes out of the CPU cache, as a real fleet's updates do.
// Reported per update. Budget: 0 allocs/op.
func BenchmarkApplyScaling(b *testing.B) {
	for _, n := range benchSizes() {
		b.Run(sizeName(n), func(b *testing.B) {
			bi := benchCache.get(b, "nyc-"+strconv.Itoa(n), n, nyc)
			b.StopTimer()
			r := rand.New(rand.NewPCG(8, uint64(n)))
			var all []Driver
			for _, st := range bi.ix.Shards() {
				all = append(all, bi.ix.ShardDrivers(st.Shard)...)
			}
			r.Shuffle(len(all), func(i, j int) { all[i], all[j] = all[j], all[i] })
			batches := max(1, min(n/4, 256<<10)/256)
			ups := make([]Update, 0, 256*batches)
			for _, d := range all[:cap(ups)] {
				// About a meter of movement within the shard.
				p := geo.LatLng{Lat: d.Pos.Lat + (r.Float64()-0.5)*1e-5, Lng: d.Pos.Lng + (r.Float64()-0.5)*1e-5}
				if cellOf(p, 7) != d.Shard {
					p = d.Pos
				}
				ups = append(ups, Update{ID: d.ID, Pos: p, TimestampMs: d.TimestampMs, Status: d.Status,
					VehicleClass: d.VehicleClass, Shard: d.Shard})
			}
			all = nil
			res := make([]Result, 256)
			b.StartTimer()
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				batch := ups[(i%batches)*256 : (i%batches+1)*256]
				for j := range batch {
					batch[j].TimestampMs += 1000
				}
				bi.ix.Apply(batch, res)
				i++
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*256), "ns/update")
		})
	}
}

// BenchmarkApplyMove: every update moves its driver to a neighboring shard
// and back. Budget: 0 allocs/op (a tree node split may allocate).
func BenchmarkApplyMove(b *testing.B) {
	ix, next := benchUpdates(b, 100_000, func(*rand.Rand, *Update) {})
	type hop struct{ a, b Update }
	hops := make([]hop, 4096)
	for i := range hops {
		u := next()
		other := h3.GridDisk(u.Shard, 1)[1]
		ll := other.LatLng()
		v := u
		v.Pos, v.Shard = geo.LatLng{Lat: ll.Lat, Lng: ll.Lng}, other
		hops[i] = hop{u, v}
	}
	one := make([]Update, 1)
	res := make([]Result, 1)
	b.ReportAllocs()
	b.ResetTimer()
	i := 0
	for b.Loop() {
		h := &hops[i%len(hops)]
		h.a.TimestampMs += 1000
		h.b.TimestampMs += 1000
		one[0] = h.b // odd passes over hops move there, even ones back
		if (i/len(hops))%2 == 1 {
			one[0] = h.a
		}
		ix.Apply(one, res)
		if res[0].MovedFrom == 0 {
			b.Fatalf("update did not move: %+v", res[0])
		}
		i++
	}
}

// BenchmarkHeapPerDriver reports the live heap the index holds per driver
// (B/driver: runtime.MemStats.HeapAlloc after two collections, before and
// after loading the fleet of BenchmarkNearby with 16-byte ids), at 100k and
// 1M drivers, and 10M with GEOMATCH_BENCH_10M=1. Budget: 100 B/driver. The
// timed loop is a Get of a random driver.
func BenchmarkHeapPerDriver(b *testing.B) {
	for _, n := range benchSizes() {
		if n < 100_000 {
			continue
		}
		b.Run(sizeName(n), func(b *testing.B) {
			bi := benchCache.get(b, "nyc-"+strconv.Itoa(n), n, nyc)
			r := rand.New(rand.NewPCG(1, 2))
			ids := make([]string, 1024)
			for i := range ids {
				ids[i] = "driver-" + strconv.FormatInt(1e8+int64(r.IntN(n)), 10)[1:] + "x"
			}
			b.ReportAllocs()
			b.ResetTimer()
			i := 0
			for b.Loop() {
				if _, ok := bi.ix.Get(ids[i%len(ids)]); !ok {
					b.Fatalf("%s not found", ids[i%len(ids)])
				}
				i++
			}
			b.ReportMetric(bi.bytesPerDriver, "B/driver")
		})
	}
}

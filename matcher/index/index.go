package index

import (
	"cmp"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/tidwall/rtree"
	"github.com/uber/h3-go/v4"

	"github.com/geomatch/geomatch/internal/geo"
)

// Index is the driver index of one matcher node. All methods are safe for
// concurrent use; see the package doc for the locking scheme.
type Index struct {
	cfg   Config
	epoch time.Time // receive times are nanoseconds since epoch (monotonic when Now is time.Now)

	// mu is the writer mutex: it serialises Apply, Evict, Remove, Expire and
	// DropShard, and guards the fields below up to the next blank line.
	mu          sync.Mutex
	live        list  // live drivers by receive time of their last update
	tombs       list  // tombstones by the time they were made
	lastRecv    int64 // latest receive time handed out; keeps the lists ordered if the clock steps back
	expireSteps int   // list elements Expire looked at (test hook for its O(expired) bound)

	// dirMu guards dir against the readers (Get); the writer holds mu too
	// and takes dirMu only to change the directory.
	dirMu sync.RWMutex
	dir   *directory // live drivers and tombstones

	// shardsMu guards the shard set the same way.
	shardsMu sync.RWMutex
	shards   map[h3.Cell]*shard // non-empty shards only

	classes  atomic.Pointer[classTable]
	liveN    atomic.Int64  // live.n as of the last write, for Len without locks
	tombN    atomic.Int64  // tombs.n as of the last write
	relocs   atomic.Uint64 // bumped whenever drivers leave a shard's tree other than to go straight back (see Nearby)
	searches sync.Pool     // *search, reused by Nearby

	// testBetweenShards, when set by a test before any use, runs in Nearby
	// before each shard is searched, holding no lock.
	testBetweenShards func()
}

// entry is one driver, live or tombstone: 80 bytes (a size class of its own).
// The writer mutex guards prev, next and recv. The other mutable fields are
// read by queries and written only while holding the lock of the shard the
// entry is in, shard included (nil for a tombstone).
type entry struct {
	id         string
	lat, lng   float64
	ts         int64 // client timestamp of the last applied update (tombstone: newest known superseded timestamp)
	recv       int64 // receive time of the last update, or when it became a tombstone
	prev, next *entry
	shard      atomic.Pointer[shard]
	class      uint16
	status     Status
	// handedOver: the entry came from a handoff (another node's copy, the
	// store, a snapshot) and no update of the driver's own has confirmed
	// it since. Written with ts.
	handedOver bool
}

// point is the entry's position as a degenerate R-tree box corner {lng, lat}.
func (e *entry) point() [2]float64 { return [2]float64{e.lng, e.lat} }

// item is what a shard's R-tree stores for a driver: the entry and a copy of
// the fields filters test, so a search rejects drivers without touching
// their entries (a cache miss each at scale). The copy changes with the
// entry, by a delete and an insert, under the shard lock.
type item struct {
	e      *entry
	status Status
	class  uint16
}

// item returns e as its tree item, from its current fields.
func (e *entry) item() item { return item{e: e, status: e.status, class: e.class} }

// shard is the R-tree of one shard's live drivers.
type shard struct {
	cell h3.Cell
	mu   sync.RWMutex // guards tree and the query-visible fields of its entries
	tree rtree.RTreeG[item]
}

// New returns an empty index. Zero fields of cfg take their defaults.
func New(cfg Config) (*Index, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, fmt.Errorf("index config: %w", err)
	}
	ix := &Index{
		cfg:    cfg,
		epoch:  cfg.Now(),
		dir:    newDirectory(),
		shards: make(map[h3.Cell]*shard),
	}
	ix.classes.Store(newClassTable())
	ix.searches.New = func() any { return ix.newSearch() }
	return ix, nil
}

// Config returns the configuration in force, defaults filled in.
func (ix *Index) Config() Config { return ix.cfg }

// Len returns the number of live drivers.
func (ix *Index) Len() int { return int(ix.liveN.Load()) }

// Tombstones returns the number of tombstones held.
func (ix *Index) Tombstones() int { return int(ix.tombN.Load()) }

// publishCounts makes the list lengths visible to Len and Tombstones.
// Writer only, at the end of each write.
func (ix *Index) publishCounts() {
	ix.liveN.Store(int64(ix.live.n))
	ix.tombN.Store(int64(ix.tombs.n))
}

// Get returns the live driver id.
func (ix *Index) Get(id string) (Driver, bool) {
	ix.dirMu.RLock()
	e := ix.dir.get(id)
	ix.dirMu.RUnlock()
	if e == nil {
		return Driver{}, false
	}
	for {
		sh := e.shard.Load()
		if sh == nil {
			return Driver{}, false
		}
		sh.mu.RLock()
		if e.shard.Load() == sh {
			t := ix.classes.Load()
			d := ix.snapshot(e, sh, &t)
			sh.mu.RUnlock()
			return d, true
		}
		sh.mu.RUnlock() // moved meanwhile: look again
	}
}

// snapshot copies e. The caller holds sh.mu (read or write).
func (ix *Index) snapshot(e *entry, sh *shard, classes **classTable) Driver {
	return Driver{
		ID:           e.id,
		Pos:          geo.LatLng{Lat: e.lat, Lng: e.lng},
		TimestampMs:  e.ts,
		Status:       e.status,
		VehicleClass: ix.className(classes, e.class),
		Shard:        sh.cell,
		HandedOver:   e.handedOver,
	}
}

// Shards lists the shards holding live drivers, most drivers first, then by
// cell.
func (ix *Index) Shards() []ShardStat {
	ix.shardsMu.RLock()
	all := make([]*shard, 0, len(ix.shards))
	for _, sh := range ix.shards {
		all = append(all, sh)
	}
	ix.shardsMu.RUnlock()
	stats := make([]ShardStat, 0, len(all))
	for _, sh := range all {
		sh.mu.RLock()
		n := sh.tree.Len()
		sh.mu.RUnlock()
		if n > 0 {
			stats = append(stats, ShardStat{Shard: sh.cell, Drivers: n})
		}
	}
	slices.SortFunc(stats, func(a, b ShardStat) int {
		if c := cmp.Compare(b.Drivers, a.Drivers); c != 0 {
			return c
		}
		return cmp.Compare(a.Shard, b.Shard)
	})
	return stats
}

// ShardDrivers returns a copy of the live drivers of shard, sorted by id (for
// a handoff to another node); nil if the shard is unknown or empty.
func (ix *Index) ShardDrivers(cell h3.Cell) []Driver {
	sh := ix.lookupShard(cell)
	if sh == nil {
		return nil
	}
	t := ix.classes.Load()
	sh.mu.RLock()
	out := make([]Driver, 0, sh.tree.Len())
	sh.tree.Scan(func(_, _ [2]float64, it item) bool {
		out = append(out, ix.snapshot(it.e, sh, &t))
		return true
	})
	sh.mu.RUnlock()
	slices.SortFunc(out, func(a, b Driver) int { return cmp.Compare(a.ID, b.ID) })
	return out
}

// lookupShard returns the shard of cell, or nil.
func (ix *Index) lookupShard(cell h3.Cell) *shard {
	ix.shardsMu.RLock()
	sh := ix.shards[cell]
	ix.shardsMu.RUnlock()
	return sh
}

// shardFor returns the shard of cell, creating it. Writer only: the writer is
// the only one changing the map, so it may read it without shardsMu.
func (ix *Index) shardFor(cell h3.Cell) *shard {
	if sh := ix.shards[cell]; sh != nil {
		return sh
	}
	sh := &shard{cell: cell}
	ix.shardsMu.Lock()
	ix.shards[cell] = sh
	ix.shardsMu.Unlock()
	return sh
}

// forgetIfEmpty drops sh from the shard set if its tree is empty, so cells
// drivers only passed through do not pile up. A query still holding sh sees
// an empty tree; a later insert into the cell makes a new shard. Writer only.
func (ix *Index) forgetIfEmpty(sh *shard) {
	sh.mu.RLock()
	empty := sh.tree.Len() == 0
	sh.mu.RUnlock()
	if !empty || ix.shards[sh.cell] != sh {
		return
	}
	ix.shardsMu.Lock()
	delete(ix.shards, sh.cell)
	ix.shardsMu.Unlock()
}

// clock returns the receive time for now, never earlier than the previous
// one so the lists stay ordered. Writer only.
func (ix *Index) clock() int64 {
	now := int64(ix.cfg.Now().Sub(ix.epoch))
	if now < ix.lastRecv {
		now = ix.lastRecv
	}
	ix.lastRecv = now
	return now
}

// Within calls fn with a copy of every live driver of the listed shards
// (every shard when shards is nil) whose position lies in the box
// [minLat, maxLat] × [minLng, maxLng] (minLng ≤ maxLng; a box across the
// antimeridian is two calls), until fn returns false. It holds one shard's
// read lock at a time, so the drivers of different shards are not one
// snapshot.
func (ix *Index) Within(shards []h3.Cell, minLat, minLng, maxLat, maxLng float64, fn func(Driver) bool) {
	var all []*shard
	ix.shardsMu.RLock()
	if shards == nil {
		all = make([]*shard, 0, len(ix.shards))
		for _, sh := range ix.shards {
			all = append(all, sh)
		}
	} else {
		for _, c := range shards {
			if sh := ix.shards[c]; sh != nil {
				all = append(all, sh)
			}
		}
	}
	ix.shardsMu.RUnlock()
	t := ix.classes.Load()
	for _, sh := range all {
		more := true
		sh.mu.RLock()
		sh.tree.Search([2]float64{minLng, minLat}, [2]float64{maxLng, maxLat}, func(_, _ [2]float64, it item) bool {
			more = fn(ix.snapshot(it.e, sh, &t))
			return more
		})
		sh.mu.RUnlock()
		if !more {
			return
		}
	}
}

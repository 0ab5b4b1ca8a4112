package index

import (
	"cmp"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"time"

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
	live        list    // live drivers by receive time of their last update
	tombs       list    // tombstones by the time they were made
	lastRecv    int64   // latest receive time handed out; keeps the lists ordered if the clock steps back
	expireSteps int     // list elements Expire looked at (test hook for its O(expired) bound)
	spareShards []int32 // numbers of forgotten (empty) shards, for reuse
	evacuations []int32 // arena pages to evacuate (see release)
	scratch     []point // the shards' sorting buffer (see shard.rebuild)

	// slots holds every driver's fields by slot; see slotTable for which
	// lock guards which column. ids holds their ids.
	slots slotTable
	ids   *arena

	// dirMu guards dir against the readers (Get); the writer holds mu too
	// and takes dirMu only to change the directory.
	dirMu sync.RWMutex
	dir   *directory // live drivers and tombstones

	// shardsMu guards the shard set the same way.
	shardsMu sync.RWMutex
	shards   map[h3.Cell]*shard // non-empty shards only
	// byNum is every shard object by number, replaced (copy on write) when
	// one is added. A forgotten shard's object is kept and recycled for
	// another cell under its own lock, so a slot's shard number always
	// leads to the lock that guards it.
	byNum atomic.Pointer[[]*shard]

	classes  atomic.Pointer[classTable]
	liveN    atomic.Int64  // live.n as of the last write, for Len without locks
	tombN    atomic.Int64  // tombs.n as of the last write
	relocs   atomic.Uint64 // bumped whenever drivers leave a shard other than to go straight back (see Nearby)
	searches sync.Pool     // *search, reused by Nearby

	// testBetweenShards, when set by a test before any use, runs in Nearby
	// before each shard is searched, holding no lock.
	testBetweenShards func()
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
		live:   newList(),
		tombs:  newList(),
		slots:  slotTable{free: -1},
		ids:    newArena(),
		shards: make(map[h3.Cell]*shard),
	}
	ix.dir = newDirectory(ix.idOf)
	ix.byNum.Store(new([]*shard))
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

// idOf returns the id of slot s. The caller holds a lock that keeps the
// slot's id in place: dirMu, the lock of the slot's shard, or mu.
func (ix *Index) idOf(s int32) string { return ix.ids.id(ix.slots.hot.at(s).idOff) }

// shardNum returns the number of slot s's shard, or -1 for a tombstone.
func (ix *Index) shardNum(s int32) int32 { return atomic.LoadInt32(&ix.slots.hot.at(s).shard) }

// shardOf returns the shard of slot s, or nil for a tombstone. Writer only
// (a reader must lock the shard and check again).
func (ix *Index) shardOf(s int32) *shard {
	num := ix.shardNum(s)
	if num < 0 {
		return nil
	}
	return (*ix.byNum.Load())[num]
}

// Get returns the live driver id.
func (ix *Index) Get(id string) (Driver, bool) {
	ix.dirMu.RLock()
	s := ix.dir.get(id)
	ix.dirMu.RUnlock()
	if s < 0 {
		return Driver{}, false
	}
	for {
		num := ix.shardNum(s)
		if num < 0 {
			return Driver{}, false
		}
		sh := (*ix.byNum.Load())[num]
		sh.mu.RLock()
		if ix.shardNum(s) == num {
			// The slot may have been freed and reused by another driver
			// since the directory was read.
			if ix.idOf(s) != id {
				sh.mu.RUnlock()
				return ix.Get(id)
			}
			t := ix.classes.Load()
			d := ix.snapshot(s, sh, &t)
			sh.mu.RUnlock()
			return d, true
		}
		sh.mu.RUnlock() // moved meanwhile: look again
	}
}

// snapshot copies the live driver of slot s. The caller holds sh.mu (read
// or write), or is the writer.
func (ix *Index) snapshot(s int32, sh *shard, classes **classTable) Driver {
	p := &sh.pts[*ix.slots.pos.at(s)]
	return Driver{
		ID:           ix.idOf(s),
		Pos:          geo.LatLng{Lat: p.lat, Lng: p.lng},
		TimestampMs:  ix.slots.hot.at(s).ts,
		Status:       p.status,
		VehicleClass: ix.className(classes, p.class),
		Shard:        sh.cell,
		HandedOver:   p.handedOver(),
		OnStream:     p.onStream(),
	}
}

// allShards returns the shards of the listed cells (every shard when cells
// is nil), with the cell each was found under.
func (ix *Index) allShards(cells []h3.Cell) []candidate {
	ix.shardsMu.RLock()
	defer ix.shardsMu.RUnlock()
	var all []candidate
	if cells == nil {
		all = make([]candidate, 0, len(ix.shards))
		for c, sh := range ix.shards {
			all = append(all, candidate{sh: sh, cell: c})
		}
		return all
	}
	for _, c := range cells {
		if sh := ix.shards[c]; sh != nil {
			all = append(all, candidate{sh: sh, cell: c})
		}
	}
	return all
}

// Shards lists the shards holding live drivers, most drivers first, then by
// cell.
func (ix *Index) Shards() []ShardStat {
	all := ix.allShards(nil)
	stats := make([]ShardStat, 0, len(all))
	for _, c := range all {
		c.sh.mu.RLock()
		n := c.sh.len()
		if c.sh.cell != c.cell {
			n = 0 // forgotten meanwhile
		}
		c.sh.mu.RUnlock()
		if n > 0 {
			stats = append(stats, ShardStat{Shard: c.cell, Drivers: n})
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
	if sh.cell != cell || sh.len() == 0 {
		sh.mu.RUnlock()
		return nil
	}
	out := make([]Driver, 0, sh.len())
	for i := range sh.pts {
		out = append(out, ix.snapshot(sh.pts[i].slot, sh, &t))
	}
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

// shardFor returns the shard of cell, creating it (or recycling a forgotten
// one). Writer only: the writer is the only one changing the map, so it may
// read it without shardsMu.
func (ix *Index) shardFor(cell h3.Cell) *shard {
	if sh := ix.shards[cell]; sh != nil {
		return sh
	}
	var sh *shard
	if n := len(ix.spareShards); n > 0 {
		sh = (*ix.byNum.Load())[ix.spareShards[n-1]]
		ix.spareShards = ix.spareShards[:n-1]
		sh.mu.Lock()
		sh.cell = cell
		sh.mu.Unlock()
	} else {
		cur := *ix.byNum.Load()
		sh = newShard(cell, int32(len(cur)), &ix.slots.pos, &ix.scratch)
		next := append(slices.Clip(cur), sh)
		ix.byNum.Store(&next)
	}
	ix.shardsMu.Lock()
	ix.shards[cell] = sh
	ix.shardsMu.Unlock()
	return sh
}

// forgetIfEmpty drops sh from the shard set if it is empty, so cells
// drivers only passed through do not pile up; its object is kept for
// another cell. A query still holding sh sees it empty or, once recycled,
// under another cell, and skips it. Writer only.
func (ix *Index) forgetIfEmpty(sh *shard) {
	if sh.len() != 0 || ix.shards[sh.cell] != sh {
		return
	}
	ix.shardsMu.Lock()
	delete(ix.shards, sh.cell)
	ix.shardsMu.Unlock()
	ix.spareShards = append(ix.spareShards, sh.num)
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
	all := ix.allShards(shards)
	t := ix.classes.Load()
	for _, c := range all {
		sh := c.sh
		more := true
		sh.mu.RLock()
		if sh.cell == c.cell {
			c0, c1, r0, r1 := sh.cells(minLat, minLng, maxLat, maxLng)
		scan:
			for r := r0; r <= r1; r++ {
				for col := c0; col <= c1; col++ {
					for i := sh.heads[r*sh.cols+col]; i >= 0; i = sh.link[i] {
						p := &sh.pts[i]
						if p.lat < minLat || p.lat > maxLat || p.lng < minLng || p.lng > maxLng {
							continue
						}
						if more = fn(ix.snapshot(p.slot, sh, &t)); !more {
							break scan
						}
					}
				}
			}
		}
		sh.mu.RUnlock()
		if !more {
			return
		}
	}
}

// StatusCounts returns how many live drivers the index holds in each
// dispatch status (indexed by Status). It reads every shard's points
// under its read lock, one at a time: O(drivers), no allocation beyond
// the shard list; meant for a metrics scrape, not a hot path.
func (ix *Index) StatusCounts() [StatusOffline + 1]int64 {
	var n [StatusOffline + 1]int64
	for _, c := range ix.allShards(nil) {
		c.sh.mu.RLock()
		if c.sh.cell == c.cell {
			for i := range c.sh.pts {
				if s := c.sh.pts[i].status; int(s) < len(n) {
					n[s]++
				}
			}
		}
		c.sh.mu.RUnlock()
	}
	return n
}

package index

import (
	"fmt"
	"sync/atomic"

	"github.com/geomatch/geomatch/internal/geo"
)

// Apply applies a batch of updates in order under one writer lock and stores
// the outcome of updates[i] in results[i]; len(results) must be at least
// len(updates). Updates are ordered per driver by TimestampMs: an older one
// is Stale, an equal one a Duplicate, and neither changes anything. A driver
// whose Shard changed moves from the old shard to the new one. A
// driver coming back from a tombstone starts afresh, like a new one:
// available unless the update gives a status, without a class unless it
// gives one.
//
// Allocation budget: an update of a known driver allocates nothing (the
// shard's arrays and the slot columns grow now and then, amortized to
// nothing); a new driver allocates only that amortized growth, its id
// going into the arena; a new vehicle class or shard allocates a little
// more, once.
func (ix *Index) Apply(updates []Update, results []Result) {
	if len(results) < len(updates) {
		panic(fmt.Sprintf("index: Apply: %d results for %d updates", len(results), len(updates)))
	}
	ix.mu.Lock()
	defer ix.mu.Unlock()
	now := ix.clock()
	for i := range updates {
		results[i] = ix.apply(&updates[i], now)
	}
	ix.publishCounts()
}

// apply applies one update received at now. Writer only.
func (ix *Index) apply(u *Update, now int64) Result {
	if !validUpdate(u) {
		return Result{Outcome: OutcomeInvalid}
	}
	s := ix.dir.get(u.ID) // the writer may read the directory without dirMu
	var cur *shard
	var p *point
	if s >= 0 {
		if cur = ix.shardOf(s); cur != nil {
			p = &cur.pts[*ix.slots.pos.at(s)]
		}
		ts := ix.slots.hot.at(s).ts
		switch {
		case u.TimestampMs < ts:
			return Result{Outcome: OutcomeStale}
		case u.TimestampMs == ts && !(p != nil && p.handedOver() && !u.HandedOver):
			// A handed-over copy of the same update (its node wrote the
			// position behind, then died before answering) is confirmed
			// by the driver's own retry, below, not ignored: the caller
			// learns the driver is new here.
			return Result{Outcome: OutcomeDuplicate}
		}
	}
	// The driver's own update of a handed-over copy claims it, as a new
	// driver's first update does.
	confirms := p != nil && p.handedOver() && !u.HandedOver
	// A driver that is not live (new or tombstone) starts afresh:
	// available, no class, unless the update says otherwise.
	status, class := StatusAvailable, uint16(0)
	if p != nil {
		status, class = p.status, p.class
	}
	if u.Status != StatusUnspecified {
		status = u.Status
	}
	if u.VehicleClass != "" {
		var ok bool
		if class, ok = ix.internClass(u.VehicleClass); !ok {
			return Result{Outcome: OutcomeFull}
		}
	}
	pt := point{lat: u.Pos.Lat, lng: u.Pos.Lng, status: status, class: class, flags: pointFlags(u.HandedOver, u.OnStream)}
	switch {
	case s < 0:
		if ix.dir.n >= ix.cfg.MaxDrivers && !ix.recycleTombstone() {
			return Result{Outcome: OutcomeFull}
		}
		s = ix.slots.alloc(ix.cfg.MaxDrivers)
		ix.slots.hot.at(s).idOff = ix.ids.add(u.ID)
		ix.dirMu.Lock()
		ix.dir.put(s)
		ix.dirMu.Unlock()
		ix.insert(s, u, pt, now)
		return Result{Outcome: OutcomeApplied, Claimed: true}
	case cur == nil:
		ix.tombs.remove(&ix.slots, s)
		ix.insert(s, u, pt, now)
		return Result{Outcome: OutcomeApplied, Claimed: true}
	case cur.cell != u.Shard:
		prev := ix.prevOf(s, p)
		ix.move(s, cur, u, pt)
		ix.slots.links.at(s).recv = now
		ix.live.moveToBack(&ix.slots, s)
		return Result{Outcome: OutcomeApplied, MovedFrom: cur.cell, Claimed: confirms, Prev: prev}
	default:
		prev := ix.prevOf(s, p)
		cur.mu.Lock()
		p.status, p.class, p.flags = status, class, pt.flags
		if p.lat != pt.lat || p.lng != pt.lng {
			cur.move(*ix.slots.pos.at(s), pt.lat, pt.lng) // may rebuild: p is stale after
		}
		ix.slots.hot.at(s).ts = u.TimestampMs
		cur.mu.Unlock()
		ix.slots.links.at(s).recv = now
		ix.live.moveToBack(&ix.slots, s)
		return Result{Outcome: OutcomeApplied, Claimed: confirms, Prev: prev}
	}
}

// prevOf returns the state of live slot s, whose point is p, before an
// update. Writer only (the writer is the only one that changes the fields
// it reads).
func (ix *Index) prevOf(s int32, p *point) Prev {
	return Prev{Live: true, Pos: geo.LatLng{Lat: p.lat, Lng: p.lng}, TimestampMs: ix.slots.hot.at(s).ts, Status: p.status, HandedOver: p.handedOver()}
}

// insert puts slot s, which is in no shard and no list, into the shard of
// u.Shard as pt and at the back of the live list. Writer only.
func (ix *Index) insert(s int32, u *Update, pt point, now int64) {
	sh := ix.shardFor(u.Shard)
	pt.slot = s
	sh.mu.Lock()
	ix.slots.hot.at(s).ts = u.TimestampMs
	sh.add(pt)
	atomic.StoreInt32(&ix.slots.hot.at(s).shard, sh.num)
	sh.mu.Unlock()
	ix.slots.links.at(s).recv = now
	ix.live.pushBack(&ix.slots, s)
}

// move takes slot s from shard from into the shard of u.Shard as pt,
// holding both shard locks so no query sees it half-moved and its fields
// change under the locks of both shards a reader may have found it
// through. Writer only (the writer is the only one holding two shard
// locks, so there is no lock order to respect).
func (ix *Index) move(s int32, from *shard, u *Update, pt point) {
	to := ix.shardFor(u.Shard)
	pt.slot = s
	from.mu.Lock()
	to.mu.Lock()
	from.remove(*ix.slots.pos.at(s))
	ix.slots.hot.at(s).ts = u.TimestampMs
	to.add(pt)
	atomic.StoreInt32(&ix.slots.hot.at(s).shard, to.num)
	ix.relocs.Add(1) // before the unlock: a query that reads `to` after this sees it
	to.mu.Unlock()
	from.mu.Unlock()
	ix.forgetIfEmpty(from)
}

// recycleTombstone forgets the oldest tombstone to make room for a new
// driver; false if there is none. Writer only.
func (ix *Index) recycleTombstone() bool {
	s := ix.tombs.head
	if s < 0 {
		return false
	}
	ix.forget(s)
	return true
}

// forget removes the tombstone s from its list and the directory and frees
// its slot. Writer only.
func (ix *Index) forget(s int32) {
	ix.tombs.remove(&ix.slots, s)
	ix.dirMu.Lock()
	ix.dir.del(s)
	ix.dirMu.Unlock()
	ix.release(s)
	ix.evacuatePending()
}

// release frees slot s, which is in no list, no shard and not in the
// directory, and its id. Writer only. The arena pages it leaves nearly
// empty are evacuated by evacuatePending, once every slot the caller
// frees is freed (a page may hold the ids of several).
func (ix *Index) release(s int32) {
	if page := ix.ids.free(ix.slots.hot.at(s).idOff); page >= 0 {
		ix.evacuations = append(ix.evacuations, page)
	}
	ix.slots.release(s)
}

// evacuatePending evacuates the arena pages release found nearly empty.
// Writer only.
func (ix *Index) evacuatePending() {
	for _, num := range ix.evacuations {
		if ix.ids.sparse(num) {
			ix.evacuate(num)
		}
	}
	ix.evacuations = ix.evacuations[:0]
}

// evacuate moves the live ids of arena page num to the page being filled
// and drops it. Each slot's offset changes under dirMu and the lock of its
// shard, the locks under which readers read it. Writer only.
func (ix *Index) evacuate(num int32) {
	ix.dirMu.Lock()
	defer ix.dirMu.Unlock()
	ix.ids.regions(num, func(off uint32, id string) {
		s := ix.dir.get(id)
		if s < 0 || ix.slots.hot.at(s).idOff != off {
			return // freed
		}
		to := ix.ids.add(id)
		if sh := ix.shardOf(s); sh != nil {
			sh.mu.Lock()
			ix.slots.hot.at(s).idOff = to
			sh.mu.Unlock()
		} else {
			ix.slots.hot.at(s).idOff = to
		}
	})
	ix.ids.drop(num)
}

// validUpdate checks what the shards and lists rely on: a non-empty id of
// at most maxIDLen bytes, a finite position on the globe, a known status
// and a shard.
func validUpdate(u *Update) bool {
	return u.ID != "" && len(u.ID) <= maxIDLen && u.Shard != 0 && u.Status.Valid() && validPoint(u.Pos)
}

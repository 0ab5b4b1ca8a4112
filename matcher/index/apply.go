package index

import (
	"fmt"
	"strings"

	"github.com/geomatch/geomatch/internal/geo"
)

// Apply applies a batch of updates in order under one writer lock and stores
// the outcome of updates[i] in results[i]; len(results) must be at least
// len(updates). Updates are ordered per driver by TimestampMs: an older one
// is Stale, an equal one a Duplicate, and neither changes anything. A driver
// whose Shard changed moves from the old shard's tree to the new one. A
// driver coming back from a tombstone starts afresh, like a new one:
// available unless the update gives a status, without a class unless it
// gives one.
//
// Allocation budget: an update of a known driver allocates nothing (the
// R-tree may allocate a node when one splits); a new driver allocates its
// entry, a copy of its id and its share of the directory map; a new vehicle
// class or shard allocates a little more, once.
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
	e := ix.dir.get(u.ID)
	var cur *shard
	if e != nil {
		cur = e.shard.Load()
		switch {
		case u.TimestampMs < e.ts:
			return Result{Outcome: OutcomeStale}
		case u.TimestampMs == e.ts && !(cur != nil && e.handedOver && !u.HandedOver):
			// A handed-over copy of the same update (its node wrote the
			// position behind, then died before answering) is confirmed
			// by the driver's own retry, below, not ignored: the caller
			// learns the driver is new here.
			return Result{Outcome: OutcomeDuplicate}
		}
	}
	// The driver's own update of a handed-over copy claims it, as a new
	// driver's first update does.
	confirms := cur != nil && e.handedOver && !u.HandedOver
	// A driver that is not live (new or tombstone) starts afresh:
	// available, no class, unless the update says otherwise.
	status, class := StatusAvailable, uint16(0)
	if cur != nil {
		status, class = e.status, e.class
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
	switch {
	case e == nil:
		if ix.dir.n >= ix.cfg.MaxDrivers && !ix.recycleTombstone() {
			return Result{Outcome: OutcomeFull}
		}
		e = &entry{id: strings.Clone(u.ID)}
		ix.dirMu.Lock()
		ix.dir.put(e)
		ix.dirMu.Unlock()
		ix.insert(e, u, status, class, now)
		return Result{Outcome: OutcomeApplied, Claimed: true}
	case cur == nil:
		ix.tombs.remove(e)
		ix.insert(e, u, status, class, now)
		return Result{Outcome: OutcomeApplied, Claimed: true}
	case cur.cell != u.Shard:
		prev := e.prevOf()
		ix.move(e, cur, u, status, class)
		e.recv = now
		ix.live.moveToBack(e)
		return Result{Outcome: OutcomeApplied, MovedFrom: cur.cell, Claimed: confirms, Prev: prev}
	default:
		prev := e.prevOf()
		cur.mu.Lock()
		if e.lat != u.Pos.Lat || e.lng != u.Pos.Lng || e.status != status || e.class != class {
			p := e.point()
			cur.tree.Delete(p, p, e.item())
			e.lat, e.lng, e.status, e.class = u.Pos.Lat, u.Pos.Lng, status, class
			p = e.point()
			cur.tree.Insert(p, p, e.item())
		}
		e.ts, e.handedOver = u.TimestampMs, u.HandedOver
		cur.mu.Unlock()
		e.recv = now
		ix.live.moveToBack(e)
		return Result{Outcome: OutcomeApplied, Claimed: confirms, Prev: prev}
	}
}

// prevOf returns the live entry's state before an update. Writer only
// (the writer is the only one that changes the fields it reads).
func (e *entry) prevOf() Prev {
	return Prev{Live: true, Pos: geo.LatLng{Lat: e.lat, Lng: e.lng}, TimestampMs: e.ts, Status: e.status, HandedOver: e.handedOver}
}

// insert puts e, which is in no tree and no list, into the tree of u.Shard
// and at the back of the live list. Writer only.
func (ix *Index) insert(e *entry, u *Update, status Status, class uint16, now int64) {
	sh := ix.shardFor(u.Shard)
	sh.mu.Lock()
	e.lat, e.lng = u.Pos.Lat, u.Pos.Lng
	e.ts, e.status, e.class, e.handedOver = u.TimestampMs, status, class, u.HandedOver
	p := e.point()
	sh.tree.Insert(p, p, e.item())
	e.shard.Store(sh)
	sh.mu.Unlock()
	e.recv = now
	ix.live.pushBack(e)
}

// move takes e from the tree of from into the tree of u.Shard, holding both
// shard locks so no query sees it half-moved and its fields change under the
// locks of both shards a reader may have found it through. Writer only (the
// writer is the only one holding two shard locks, so there is no lock order
// to respect).
func (ix *Index) move(e *entry, from *shard, u *Update, status Status, class uint16) {
	to := ix.shardFor(u.Shard)
	from.mu.Lock()
	to.mu.Lock()
	p := e.point()
	from.tree.Delete(p, p, e.item())
	e.lat, e.lng = u.Pos.Lat, u.Pos.Lng
	e.ts, e.status, e.class, e.handedOver = u.TimestampMs, status, class, u.HandedOver
	p = e.point()
	to.tree.Insert(p, p, e.item())
	e.shard.Store(to)
	ix.relocs.Add(1) // before the unlock: a query that reads `to` after this sees it
	to.mu.Unlock()
	from.mu.Unlock()
	ix.forgetIfEmpty(from)
}

// recycleTombstone forgets the oldest tombstone to make room for a new
// driver; false if there is none. Writer only.
func (ix *Index) recycleTombstone() bool {
	e := ix.tombs.head
	if e == nil {
		return false
	}
	ix.forget(e)
	return true
}

// forget removes the tombstone e from its list and the directory. Writer only.
func (ix *Index) forget(e *entry) {
	ix.tombs.remove(e)
	ix.dirMu.Lock()
	ix.dir.del(e)
	ix.dirMu.Unlock()
}

// validUpdate checks what the trees and lists rely on: a non-empty id, a
// finite position on the globe, a known status and a shard.
func validUpdate(u *Update) bool {
	return u.ID != "" && u.Shard != 0 && u.Status.Valid() && validPoint(u.Pos)
}

package index

import "github.com/uber/h3-go/v4"

// Evict removes the live driver id if its last applied update is older than
// olderThanMs: another node claimed the driver with that newer update. The
// driver leaves a tombstone whose timestamp is raised to olderThanMs-1, so no
// update older than the claiming one is applied here any more (an update
// between the two would otherwise bring back a second, older copy of the
// driver). An existing tombstone is raised the same way. Evict of an unknown
// id does nothing: a node must not hold tombstones for every driver of the
// cluster. It reports whether a live driver was removed.
func (ix *Index) Evict(id string, olderThanMs int64) bool {
	ix.mu.Lock()
	defer ix.mu.Unlock()
	e := ix.dir.get(id)
	if e == nil || e.ts >= olderThanMs {
		return false
	}
	removed := false
	if e.shard.Load() != nil {
		ix.tombstone(e, ix.clock())
		ix.publishCounts()
		removed = true
	}
	e.ts = olderThanMs - 1 // a tombstone: no query reads it
	return removed
}

// Remove removes the live driver id unconditionally (signed off, banned, …),
// leaving a tombstone with its last timestamp. It reports whether the driver
// was live.
func (ix *Index) Remove(id string) bool {
	ix.mu.Lock()
	defer ix.mu.Unlock()
	e := ix.dir.get(id)
	if e == nil || e.shard.Load() == nil {
		return false
	}
	ix.tombstone(e, ix.clock())
	ix.publishCounts()
	return true
}

// tombstone takes the live entry e out of its tree and turns it into a
// tombstone made at now. Writer only.
func (ix *Index) tombstone(e *entry, now int64) {
	sh := e.shard.Load()
	sh.mu.Lock()
	p := e.point()
	sh.tree.Delete(p, p, e.item())
	e.shard.Store(nil)
	ix.relocs.Add(1) // e may come back in another shard while a query runs
	sh.mu.Unlock()
	ix.forgetIfEmpty(sh)
	ix.live.remove(e)
	e.recv = now
	ix.tombs.pushBack(e)
}

// DropShard forgets every driver of shard (the node lost it) and returns how
// many. Unlike Remove it leaves no tombstones: the node no longer speaks for
// these drivers, and if the shard comes back later its handoff must apply
// even at the timestamps this node last saw. Its cost is linear in the
// shard's drivers, under the writer lock; the shard's own lock is held only
// while its tree is detached.
func (ix *Index) DropShard(cell h3.Cell) int {
	ix.mu.Lock()
	defer ix.mu.Unlock()
	sh := ix.shards[cell]
	if sh == nil {
		return 0
	}
	ix.shardsMu.Lock()
	delete(ix.shards, cell)
	ix.shardsMu.Unlock()

	sh.mu.Lock()
	dropped := make([]*entry, 0, sh.tree.Len())
	sh.tree.Scan(func(_, _ [2]float64, it item) bool {
		dropped = append(dropped, it.e)
		it.e.shard.Store(nil)
		return true
	})
	sh.tree.Clear()
	ix.relocs.Add(1)
	sh.mu.Unlock()

	ix.dirMu.Lock()
	for _, e := range dropped {
		ix.dir.del(e)
	}
	ix.dirMu.Unlock()
	for _, e := range dropped {
		ix.live.remove(e)
	}
	ix.publishCounts()
	return len(dropped)
}

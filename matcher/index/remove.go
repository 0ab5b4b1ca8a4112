package index

import (
	"sync/atomic"

	"github.com/uber/h3-go/v4"
)

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
	s := ix.dir.get(id)
	if s < 0 || ix.slots.hot.at(s).ts >= olderThanMs {
		return false
	}
	removed := false
	if ix.shardNum(s) >= 0 {
		ix.tombstone(s, ix.clock())
		ix.publishCounts()
		removed = true
	}
	ix.slots.hot.at(s).ts = olderThanMs - 1 // a tombstone: no query reads it
	return removed
}

// Remove removes the live driver id unconditionally (signed off, banned, …),
// leaving a tombstone with its last timestamp. It reports whether the driver
// was live.
func (ix *Index) Remove(id string) bool {
	ix.mu.Lock()
	defer ix.mu.Unlock()
	s := ix.dir.get(id)
	if s < 0 || ix.shardNum(s) < 0 {
		return false
	}
	ix.tombstone(s, ix.clock())
	ix.publishCounts()
	return true
}

// tombstone takes the live slot s out of its shard and turns it into a
// tombstone made at now. Writer only.
func (ix *Index) tombstone(s int32, now int64) {
	sh := ix.shardOf(s)
	sh.mu.Lock()
	sh.remove(*ix.slots.pos.at(s))
	atomic.StoreInt32(&ix.slots.hot.at(s).shard, -1)
	ix.relocs.Add(1) // s may come back in another shard while a query runs
	sh.mu.Unlock()
	ix.forgetIfEmpty(sh)
	ix.live.remove(&ix.slots, s)
	ix.slots.links.at(s).recv = now
	ix.tombs.pushBack(&ix.slots, s)
}

// DropShard forgets every driver of shard (the node lost it) and returns how
// many. Unlike Remove it leaves no tombstones: the node no longer speaks for
// these drivers, and if the shard comes back later its handoff must apply
// even at the timestamps this node last saw. Its cost is linear in the
// shard's drivers, under the writer lock; the shard's own lock is held only
// while it is emptied.
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
	dropped := make([]int32, 0, sh.len())
	for i := range sh.pts {
		s := sh.pts[i].slot
		dropped = append(dropped, s)
		atomic.StoreInt32(&ix.slots.hot.at(s).shard, -1)
	}
	sh.clear()
	ix.relocs.Add(1)
	sh.mu.Unlock()
	ix.spareShards = append(ix.spareShards, sh.num)

	ix.dirMu.Lock()
	for _, s := range dropped {
		ix.dir.del(s)
	}
	ix.dirMu.Unlock()
	for _, s := range dropped {
		ix.live.remove(&ix.slots, s)
		ix.release(s)
	}
	ix.evacuatePending()
	ix.publishCounts()
	return len(dropped)
}

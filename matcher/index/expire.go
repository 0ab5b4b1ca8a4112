package index

// expireBatch bounds the entries one Expire step handles under the writer
// lock, so a mass expiry (a node coming back from a pause) does not stall
// updates for long: Expire releases the lock between steps.
const expireBatch = 1024

// Expire turns the live drivers whose last update was received more than
// TTL ago (by Config.Now) into tombstones and forgets the tombstones older
// than TTL. It returns how many live drivers expired. Its work is
// proportional to what it removes: both lists are ordered by time, so it
// pops from their fronts and stops at the first entry still young enough.
func (ix *Index) Expire() int { return ix.ExpireFunc(nil) }

// ExpireFunc is Expire, calling fn (when not nil) with each driver as it
// was when it expired, holding no lock.
func (ix *Index) ExpireFunc(fn func(Driver)) int {
	expired := 0
	var gone []Driver
	for {
		n, done := ix.expireStep(expireBatch, fn != nil, &gone)
		expired += n
		for _, d := range gone {
			fn(d)
		}
		gone = gone[:0]
		if done {
			return expired
		}
	}
}

// expireStep handles at most budget entries and reports whether nothing is
// left to expire; with keep, it appends the expired drivers to gone.
func (ix *Index) expireStep(budget int, keep bool, gone *[]Driver) (expired int, done bool) {
	ix.mu.Lock()
	defer ix.mu.Unlock()
	defer ix.publishCounts()
	t := ix.classes.Load()
	now := ix.clock()
	cutoff := now - int64(ix.cfg.TTL) // received before cutoff: older than TTL
	for ; budget > 0; budget-- {
		if s := ix.tombs.head; s >= 0 {
			ix.expireSteps++
			if ix.slots.links.at(s).recv < cutoff {
				ix.forget(s)
				continue
			}
		}
		if s := ix.live.head; s >= 0 {
			ix.expireSteps++
			if ix.slots.links.at(s).recv < cutoff {
				if keep {
					*gone = append(*gone, ix.snapshot(s, ix.shardOf(s), &t))
				}
				ix.tombstone(s, now)
				expired++
				continue
			}
		}
		return expired, true
	}
	return expired, false
}

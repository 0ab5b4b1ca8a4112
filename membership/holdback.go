package membership

import (
	"slices"
	"time"

	"github.com/geomatch/geomatch/shardmap"
)

// Departures of many members at once are held back.
//
// A matcher whose health check goes critical is taken off the ring at once
// (its shards move to the others within a failover). But when half the
// members or more go critical together, the likelier cause is Consul
// itself: an agent or server paused or restarted for longer than the check
// TTL marks every check critical when it returns, before the matchers'
// next passes (every TTL/4) turn them back. Moving half the shards of the
// cluster for that, and moving them back a second later, would cost two
// handoffs and a storm of warm-ups for nothing. So such a mass departure
// is held back for a grace (WriterConfig.DepartureGrace): members still
// critical after it leave the ring then. A real failure of half the fleet
// at once is served DepartureGrace later than a single failure.
//
// A member whose alive check is critical is not held back: Consul failed
// to connect to its process, which a Consul pause does not cause (the
// agent runs the check after it resumes, and a live process accepts).
//
// holdBack is the rule, free of I/O. current are the members of the ring
// in force, healthy the members whose checks pass now, exited those
// whose alive check is critical (they leave at once); goneSince records
// since when each member of current has been seen missing from healthy (it
// is updated). It returns the missing members to keep on the ring for now
// and, when it keeps any, how long until the next one's grace ends.
func holdBack(current, healthy []shardmap.Member, exited map[string]bool, goneSince map[string]time.Time, now time.Time, grace time.Duration) (keep []shardmap.Member, recheck time.Duration) {
	var gone []shardmap.Member
	for _, m := range current {
		if !exited[m.ID] && !slices.ContainsFunc(healthy, func(h shardmap.Member) bool { return h.ID == m.ID }) {
			gone = append(gone, m)
		}
	}
	for id := range goneSince {
		if !slices.ContainsFunc(gone, func(m shardmap.Member) bool { return m.ID == id }) {
			delete(goneSince, id)
		}
	}
	for _, m := range gone {
		if _, ok := goneSince[m.ID]; !ok {
			goneSince[m.ID] = now
		}
	}
	if len(gone) == 0 || len(current) < 2 || 2*len(gone) < len(current) {
		return nil, 0
	}
	for _, m := range gone {
		if left := grace - now.Sub(goneSince[m.ID]); left > 0 {
			keep = append(keep, m)
			if recheck == 0 || left < recheck {
				recheck = left
			}
		}
	}
	return keep, recheck
}

package fleet

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/geomatch/geomatch/driver"
)

// Updates whose owner cannot be reached are parked, not refused.
//
// A matcher that dies takes a couple of seconds to be replaced on the ring
// (its health check must lapse, then the ring writer moves its shards): an
// update for one of its shards that failed at once would make every driver
// there see a rejection and resend. Instead the client holds such updates
// in one bounded lot and routes them again when the ring changes (the
// shards have a new owner) or, failing that, every parkRetry (the owner may
// be back), until each update's own deadline. Only a full lot
// (Config.ParkMax updates) or a deadline that passes refuses an update,
// with UNAVAILABLE, a reason and a hint of when to retry; both are counted
// (Client.ParkStats). Resending a parked update to a node that did get it
// before it broke is harmless: a matcher ignores a duplicate timestamp.
//
// The lot is one mutex-guarded slice: it is touched only while owners are
// unreachable, never on the path of an update whose owner answers.

// parkRetry is how often parked updates are routed again while the ring
// does not change.
const parkRetry = 100 * time.Millisecond

// parkRetryAfter is the retry hint of an update refused because the lot
// was full: about a failover's length.
const parkRetryAfter = 2 * time.Second

type parking struct {
	mu    sync.Mutex
	items []item
	// newest is, for each driver with an update parked or waiting to be
	// retried, the newest timestamp sent for it since: such an update
	// older than that is superseded and is not delivered (it could
	// otherwise land on a node after the newer one was applied on another,
	// leaving a stale copy there). tracked counts those updates; the map
	// is dropped when it falls to 0.
	newest  map[string]int64
	tracked atomic.Int64
	// accepted is, for each driver in newest, the newest timestamp
	// answered as accepted since; waiters are the superseded updates
	// waiting for a newer one's answer (superseded), waiting of them in
	// all, at most Config.ParkMax. Each waiter holds a tracking count.
	accepted map[string]int64
	waiters  map[string][]item
	waiting  int

	parked   atomic.Uint64 // updates ever parked
	full     atomic.Uint64 // refused: the lot was full
	timedOut atomic.Uint64 // refused: deadline passed while parked
}

// ParkStats says how the lot of updates waiting for an unreachable owner
// is doing.
type ParkStats struct {
	// Held is the number of updates in the lot now.
	Held int64
	// Parked counts updates ever parked; FullRefused and
	// DeadlineRefused count the ones refused because the lot was full or
	// their deadline passed while they waited.
	Parked, FullRefused, DeadlineRefused uint64
}

// ParkStats returns the lot's counters.
func (c *Client) ParkStats() ParkStats {
	p := &c.parking
	p.mu.Lock()
	held := int64(len(p.items))
	p.mu.Unlock()
	return ParkStats{Held: held, Parked: p.parked.Load(), FullRefused: p.full.Load(), DeadlineRefused: p.timedOut.Load()}
}

// park holds it until its owner can be reached, or refuses it when its
// deadline has passed or the lot is full. why says what failed.
func (c *Client) park(it item, why string) {
	p := &c.parking
	if time.Now().After(it.deadline) {
		p.timedOut.Add(1)
		c.finish(it, driver.Unavailable, fmt.Sprintf("%s; the update's deadline passed while it waited for the shard's owner", why))
		return
	}
	p.mu.Lock()
	if len(p.items) >= c.cfg.ParkMax {
		p.mu.Unlock()
		p.full.Add(1)
		c.finish(it, driver.Unavailable, fmt.Sprintf("%s; %d updates already wait for unreachable owners: retry after %s", why, c.cfg.ParkMax, parkRetryAfter))
		return
	}
	it.why = why
	p.items = append(p.items, it)
	p.trackLocked(it)
	p.mu.Unlock()
	p.parked.Add(1)
}

// runParking routes parked updates again on every ring change and every
// parkRetry, until ctx is done; then it refuses what is left.
func (c *Client) runParking(ctx context.Context) {
	t := time.NewTicker(parkRetry)
	defer t.Stop()
	_, changed := c.src.Current()
	for {
		select {
		case <-ctx.Done():
			for _, it := range c.takeParked() {
				c.finish(it, driver.Unavailable, "fleet client is shutting down")
				c.parking.untrack()
			}
			c.dropWaiters()
			return
		case <-changed:
			_, changed = c.src.Current()
		case <-t.C:
		}
		items := c.takeParked()
		if len(items) > 0 {
			// Owners unreachable: if the ring moved on where this client
			// cannot see it (cut off from Consul), the members know.
			c.askPeersForRing()
		}
		for _, it := range items {
			switch {
			case c.superseded(it):
			case time.Now().After(it.deadline):
				c.parking.timedOut.Add(1)
				c.finish(it, driver.Unavailable, it.why+"; the update's deadline passed while it waited for the shard's owner")
			default:
				c.route(ctx, it, false) // may park it again (tracked again)
			}
			c.parking.untrack()
		}
	}
}

// takeParked empties the lot and returns what it held; each update stays
// tracked until the caller untracks it.
func (c *Client) takeParked() []item {
	p := &c.parking
	p.mu.Lock()
	items := p.items
	p.items = nil
	p.mu.Unlock()
	return items
}

// trackLocked starts tracking it (parked, or waiting for a retry): newer
// updates of its driver are recorded until it is untracked. p.mu is held.
func (p *parking) trackLocked(it item) {
	if p.newest == nil {
		p.newest = make(map[string]int64)
	}
	if ts := it.u.GetTimestampMs(); ts > p.newest[it.u.GetDriverId()] {
		p.newest[it.u.GetDriverId()] = ts
	}
	p.tracked.Add(1)
}

// track is trackLocked for a caller without the lock.
func (p *parking) track(it item) {
	p.mu.Lock()
	p.trackLocked(it)
	p.mu.Unlock()
}

// untrack ends the tracking of one update; the last one drops the map.
func (p *parking) untrack() {
	if p.tracked.Add(-1) > 0 {
		return
	}
	p.mu.Lock()
	if p.tracked.Load() == 0 {
		p.newest, p.accepted = nil, nil
	}
	p.mu.Unlock()
}

// superseded reports whether its driver's client sent a newer update
// since it was tracked, and then takes it over: delivering it could leave
// a stale copy of the driver on another node, and its information is in
// the newer update. It is answered as a duplicate (accepted) once a newer
// update of the driver has been accepted, at once if one already was,
// and refused with the newer one's refusal otherwise (see driverDone):
// acknowledging it earlier would acknowledge a position that no node
// shows, while searches still show the one before.
func (c *Client) superseded(it item) bool {
	p := &c.parking
	id, ts := it.u.GetDriverId(), it.u.GetTimestampMs()
	p.mu.Lock()
	if p.newest[id] <= ts {
		p.mu.Unlock()
		return false
	}
	if p.accepted[id] > ts {
		p.mu.Unlock()
		c.finish(it, driver.Duplicate, "superseded by a newer update of the driver, accepted")
		return true
	}
	if p.waiting >= c.cfg.ParkMax {
		p.mu.Unlock()
		p.full.Add(1)
		c.finish(it, driver.Unavailable, fmt.Sprintf("superseded by a newer update of the driver, not yet answered, and %d updates already wait for theirs: retry after %s", c.cfg.ParkMax, parkRetryAfter))
		return true
	}
	if p.waiters == nil {
		p.waiters = make(map[string][]item)
	}
	p.waiters[id] = append(p.waiters[id], it)
	p.waiting++
	p.trackLocked(it) // its own tracking, until the newer update's answer
	p.mu.Unlock()
	return true
}

// driverDone hears the final outcome of every update while updates are
// tracked (one atomic load otherwise): an accepted update is recorded for
// superseded, and the updates of its driver waiting for a newer one's
// answer (superseded) get theirs.
func (c *Client) driverDone(it item, o driver.Outcome, msg string) {
	p := &c.parking
	if p.tracked.Load() == 0 {
		return
	}
	id, ts := it.u.GetDriverId(), it.u.GetTimestampMs()
	// A stale update is older than what the node holds: the driver's
	// position is newer still, as for an accepted one.
	accepted := o.Accepted() || o == driver.Stale
	p.mu.Lock()
	if _, ok := p.newest[id]; !ok {
		p.mu.Unlock()
		return
	}
	if accepted && ts > p.accepted[id] {
		if p.accepted == nil {
			p.accepted = make(map[string]int64)
		}
		p.accepted[id] = ts
	}
	var done []item
	if ws := p.waiters[id]; len(ws) > 0 {
		keep := ws[:0]
		for _, w := range ws {
			if w.u.GetTimestampMs() < ts {
				done = append(done, w)
			} else {
				keep = append(keep, w)
			}
		}
		if len(keep) == 0 {
			delete(p.waiters, id)
		} else {
			p.waiters[id] = keep
		}
		p.waiting -= len(done)
	}
	p.mu.Unlock()
	for _, w := range done {
		if accepted {
			w.sink.Done(w.idx, Result{Outcome: driver.Duplicate, Msg: "superseded by a newer update of the driver, accepted"})
		} else {
			w.sink.Done(w.idx, Result{Outcome: driver.Unavailable, Msg: "superseded by a newer update of the driver, which was refused: " + msg})
		}
		p.untrack()
	}
}

// dropWaiters refuses every update waiting for a newer one's answer: the
// client is shutting down.
func (c *Client) dropWaiters() {
	p := &c.parking
	p.mu.Lock()
	var all []item
	for id, ws := range p.waiters {
		all = append(all, ws...)
		delete(p.waiters, id)
	}
	p.waiting = 0
	p.mu.Unlock()
	for _, w := range all {
		w.sink.Done(w.idx, Result{Outcome: driver.Unavailable, Msg: "fleet client is shutting down"})
		p.untrack()
	}
}

// sent records an update sent for driver id at ts while updates are
// tracked (it may supersede one of them). It costs one atomic load when
// none is.
func (p *parking) sent(id string, ts int64) {
	if p.tracked.Load() == 0 {
		return
	}
	p.mu.Lock()
	if old, ok := p.newest[id]; ok && ts > old {
		p.newest[id] = ts
	}
	p.mu.Unlock()
}

package fleet

import (
	"context"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/geomatch/geomatch/driver"
	"github.com/geomatch/geomatch/internal/geo"
	matcherv1 "github.com/geomatch/geomatch/proto/geomatch/matcher/v1"
)

// Update is one location update on its way to the matcher that owns its
// shard. The caller has validated it.
type Update struct {
	DriverID     string
	Pos          geo.LatLng
	TimestampMs  int64
	Status       driver.Status // Unspecified: keep the current status
	VehicleClass string        // "": keep the current class
	// OnStream: the update came on the driver's Connect stream, which
	// makes the driver one a ride can be offered to.
	OnStream bool
}

// Result is the final word on one update: its outcome and, for a refusal,
// why (empty when the outcome says it all).
type Result struct {
	Outcome driver.Outcome
	Msg     string
}

// Sink receives the result of each update sent with one Send call site (a
// client call or a driver stream); idx is the index the sender gave.
// Done is called exactly once per update, from any goroutine, and must
// not block.
type Sink interface {
	Done(idx int32, r Result)
}

// item is one location update on its way to a matcher.
type item struct {
	u        *matcherv1.Update
	epoch    uint64 // ring epoch it was routed by
	sink     Sink
	idx      int32
	attempt  int
	deadline time.Time
	why      string // why it was last parked
}

// Send routes u towards the owner of its shard on the current ring; sink
// hears its result (under idx) once a matcher has answered, or when the
// update could not be delivered before deadline or within MaxAttempts
// routings. Send blocks while the owner's queue is full, until ctx is done.
func (c *Client) Send(ctx context.Context, u Update, sink Sink, idx int32, deadline time.Time) {
	it := item{
		u: &matcherv1.Update{
			DriverId: u.DriverID, Lat: u.Pos.Lat, Lng: u.Pos.Lng, TimestampMs: u.TimestampMs,
			Status: geomatchStatus(u.Status), VehicleClass: u.VehicleClass, OnStream: u.OnStream,
		},
		sink: sink, idx: idx, deadline: deadline,
	}
	c.parking.sent(u.DriverID, u.TimestampMs)
	c.route(ctx, it, true)
}

// route sends one update towards the owner of its shard on the current
// ring. block says whether to wait for room in a full queue (callers) or to
// fail at once (retries from the client's own goroutines).
func (c *Client) route(ctx context.Context, it item, block bool) {
	m, _ := c.src.Current()
	layout := m.Layout()
	if it.u.GetFineCell() == 0 || it.epoch != m.Epoch() {
		// New update, or the layout may have changed since it was routed.
		it.u.FineCell = uint64(layout.FineCell(geo.LatLng{Lat: it.u.GetLat(), Lng: it.u.GetLng()}))
	}
	shard := layout.ShardOfFine(cellOf(it.u.GetFineCell()))
	owner, ok := m.Owner(shard)
	if !ok {
		c.park(it, fmt.Sprintf("no matcher owns shard %s at epoch %d", shard, m.Epoch()))
		return
	}
	p, err := c.peer(owner)
	if err != nil {
		c.park(it, err.Error())
		return
	}
	it.epoch = m.Epoch()
	if p.enqueue(ctx, it, block) {
		return
	}
	if block && ctx.Err() != nil {
		c.finish(it, driver.Unavailable, fmt.Sprintf("queue to matcher %s is full: %v", owner.ID, ctx.Err()))
		return
	}
	c.park(it, fmt.Sprintf("queue to matcher %s is full or closed", owner.ID))
}

// retry routes an update again after its owner refused it or its stream
// broke, until it runs out of attempts or time. nodeEpoch is the refusing
// node's epoch (0 when unknown). The delayed routing runs on a goroutine
// Run owns.
func (c *Client) retry(it item, why string, nodeEpoch uint64) {
	it.attempt++
	switch {
	case nodeEpoch != 0 && it.attempt >= c.cfg.MaxAttempts:
		c.finish(it, driver.NotOwner, why) // the ring kept moving
		return
	case it.attempt >= c.cfg.MaxAttempts || time.Now().After(it.deadline):
		c.park(it, why) // refused at once if its deadline passed
		return
	}
	c.parking.track(it) // a newer update of the driver sent meanwhile supersedes it
	started := c.goOwned(func(ctx context.Context) {
		defer c.parking.untrack()
		if m, _ := c.src.Current(); nodeEpoch > m.Epoch() {
			c.refresh(ctx)
		}
		t := time.NewTimer(backoff(it.attempt))
		defer t.Stop()
		select {
		case <-t.C:
			if !c.superseded(it) {
				c.route(ctx, it, false)
			}
		case <-ctx.Done():
			c.finish(it, driver.Unavailable, "fleet client is shutting down")
		}
	})
	if !started {
		c.parking.untrack()
		c.finish(it, driver.Unavailable, "fleet client is shutting down")
	}
}

// finish delivers the final result of an update to its sender.
func (c *Client) finish(it item, o driver.Outcome, msg string) {
	it.sink.Done(it.idx, Result{Outcome: o, Msg: msg})
	c.driverDone(it, o, msg)
}

// evictElsewhere tells every matcher but owner to drop copies of driver id
// older than ts: the driver has crossed to a shard of owner. Best effort:
// a full queue drops the eviction and the stale copy expires by TTL.
func (c *Client) evictElsewhere(owner, id string, ts int64) {
	c.evictElsewhereFor(owner, id, ts, nil)
}

// evictElsewhereFor is evictElsewhere for an update's claim: each eviction
// sent to a matcher that is reachable holds back hold (see claimAck).
func (c *Client) evictElsewhereFor(owner, id string, ts int64, hold *claimAck) {
	for _, p := range c.otherPeers(owner) {
		ev := eviction{e: &matcherv1.Eviction{DriverId: id, OlderThanMs: ts, ClaimedBy: owner}}
		if hold != nil && p.reachable() {
			hold.add()
			ev.ack = hold
		}
		c.queueEviction(p, ev)
	}
}

// claimAck holds back the acknowledgement of an update that claimed its
// driver (the driver crossed to a shard of another matcher) until every
// reachable matcher that may hold an older copy has dropped it. Without
// it, a client could have an acknowledgement for the new position while a
// search of the old shard, on a matcher whose eviction queue is behind,
// still showed the old one. The claim's own reference is dropped when the
// update is answered; each eviction's when its batch is answered, or when
// it is given up (queue full, stream broken, matcher gone: a matcher out
// of reach serves nothing, and the eviction still follows it).
type claimAck struct {
	c    *Client
	it   item
	left atomic.Int32
}

// newClaimAck returns the hold of it's acknowledgement, with the claim's
// own reference.
func (c *Client) newClaimAck(it item) *claimAck {
	h := &claimAck{c: c, it: it}
	h.left.Store(1)
	return h
}

func (h *claimAck) add() { h.left.Add(1) }

// done drops one reference; the last acknowledges the update.
func (h *claimAck) done() {
	if h != nil && h.left.Add(-1) == 0 {
		h.c.finish(h.it, driver.Applied, "")
	}
}

// eviction is one eviction on its way to a matcher, with the hold of the
// acknowledgement it gates (nil: none).
type eviction struct {
	e   *matcherv1.Eviction
	ack *claimAck
}

// evictAtClaimer handles an eviction that node holder answered with a
// newer copy (ApplyResponse.newer): the claim that asked for it was
// answered after the driver had moved on to holder, so the claimer's copy
// older than holder's goes. The claimer may itself have moved on since
// (newer updates reached it after its claim): it then answers the same
// way, naming holder, whose older copy goes in turn. Each round asks for
// a strictly newer timestamp, so the exchange ends with the newest copy
// alone.
func (c *Client) evictAtClaimer(holder string, e *matcherv1.Eviction) {
	c.mu.RLock()
	p := c.peers[e.GetClaimedBy()]
	c.mu.RUnlock()
	if p == nil || e.GetClaimedBy() == holder {
		return // the claimer left the ring (its copies went with it)
	}
	c.queueEviction(p, eviction{e: &matcherv1.Eviction{DriverId: e.GetDriverId(), OlderThanMs: e.GetOlderThanMs(), ClaimedBy: holder}})
}

// queueEviction hands ev to p's eviction queue, or drops and counts it
// when the queue is full. An eviction for a peer that has stopped is not
// queued: its matcher left the ring, and its copies with it.
func (c *Client) queueEviction(p *peer, ev eviction) {
	p.qmu.RLock()
	defer p.qmu.RUnlock()
	if p.qclosed {
		ev.ack.done()
		return
	}
	select {
	case p.evictions <- ev:
	default:
		ev.ack.done()
		n := c.evictionsDropped.Add(1)
		// A queue that overflows does so by the thousand.
		c.dropWarning.Do(func() {
			p.log.Warn("eviction queue full, dropping evictions", "driver", ev.e.GetDriverId(), "dropped_total", n)
		})
	}
}

package matcher

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/uber/h3-go/v4"

	"github.com/geomatch/geomatch/matcher/index"
)

// Standby copies. A matcher acknowledges an update once it is in memory,
// and its position reaches the store by write-behind: a matcher that dies
// takes its last acknowledged positions with it, and the new owner of its
// shards, warmed from the store, would show the positions before them
// until each driver's next update. Every router keeps what each matcher
// acknowledged lately (fleet's redo window). When a router loses a matcher
// (its Apply stream breaks) it hands those updates at once to the nodes
// that take the matcher's shards over if it leaves the ring, by Standby,
// seconds before the ring changes. A node keeps them here, the newest of
// each driver, and applies those of the shards it gains during the warm-up
// that follows the change, before it answers a search there. Updates it
// receives for shards it already owns and serves (the ring changed before
// the router's hand-over) are applied at once.
//
// Copies are applied like handed-over ones (by timestamp, never over a
// newer position or an eviction recorded since, and checked with the other
// nodes afterwards), so a copy a node never needs does no harm: it
// expires after standbyTTL.

// standbyTTL is how long a standby copy is kept: a failover (the check
// TTL, about 2 s) with margin.
const standbyTTL = 15 * time.Second

// standbyMax bounds the copies a node keeps (the newest per driver); past
// it, expired copies are dropped first, then new ones are refused.
const standbyMax = 1 << 17

// MaxStandbyBatch bounds the updates of one Standby call.
const MaxStandbyBatch = 1 << 14

// standbyCopy is one kept update and when it arrived.
type standbyCopy struct {
	u  Update
	at time.Time
}

// standbyTable holds the copies, by driver.
type standbyTable struct {
	mu   sync.Mutex
	byID map[string]standbyCopy
}

// put keeps the newest copy of each driver of ups; it returns how many it
// kept and how many it refused (the table is full).
func (t *standbyTable) put(ups []Update, now time.Time) (kept, refused int) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.byID == nil {
		t.byID = make(map[string]standbyCopy)
	}
	for _, u := range ups {
		if old, ok := t.byID[u.DriverID]; ok {
			if u.TimestampMs > old.u.TimestampMs {
				t.byID[u.DriverID] = standbyCopy{u: u, at: now}
			}
			kept++
			continue
		}
		if len(t.byID) >= standbyMax {
			t.pruneLocked(now)
			if len(t.byID) >= standbyMax {
				refused++
				continue
			}
		}
		t.byID[u.DriverID] = standbyCopy{u: u, at: now}
		kept++
	}
	return kept, refused
}

// take removes and returns the unexpired copies for which want is true,
// and drops the expired ones.
func (t *standbyTable) take(now time.Time, want func(*Update) bool) []Update {
	t.mu.Lock()
	defer t.mu.Unlock()
	var out []Update
	for id, c := range t.byID {
		switch {
		case now.Sub(c.at) > standbyTTL:
			delete(t.byID, id)
		case want(&c.u):
			out = append(out, c.u)
			delete(t.byID, id)
		}
	}
	return out
}

// pruneLocked drops expired copies.
func (t *standbyTable) pruneLocked(now time.Time) {
	for id, c := range t.byID {
		if now.Sub(c.at) > standbyTTL {
			delete(t.byID, id)
		}
	}
}

// len returns the number of copies kept.
func (t *standbyTable) len() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return len(t.byID)
}

// StandbyResult says what Standby did with a call's updates.
type StandbyResult struct {
	Held, Applied int
}

// Standby keeps ups, updates another matcher acknowledged before a router
// lost it, for the warm-up of the shards this node gains if that matcher
// leaves the ring; those of shards the node owns and serves now are
// applied at once. Invalid updates are refused as a whole (InvalidArgument
// naming the field), before anything is kept.
func (n *Node) Standby(ctx context.Context, ups []Update) (StandbyResult, error) {
	if len(ups) > MaxStandbyBatch {
		return StandbyResult{}, fmt.Errorf("updates: %d, at most %d: %w", len(ups), MaxStandbyBatch, errInvalid)
	}
	n.advance(ctx)
	m, _ := n.src.Current()
	layout := m.Layout()
	for i := range ups {
		if err := checkUpdate(&ups[i], layout); err != nil {
			return StandbyResult{}, fmt.Errorf("updates[%d]: %w", i, err)
		}
	}
	held, refused := n.standby.put(ups, time.Now())
	n.count.standbyHeld.Add(uint64(held))
	n.count.standbyRefused.Add(uint64(refused))
	// Kept first, then the copies of shards owned and served now are
	// applied: a warm-up that ends meanwhile applies what it finds kept
	// after it opens its gate (drainStandby), so no copy falls between.
	applied := n.drainStandby()
	return StandbyResult{Held: max(held-applied, 0), Applied: applied}, nil
}

// drainStandby applies the kept copies of the shards the node owns and no
// warm-up is filling, and returns how many it applied. Their ids are
// checked with the other nodes by the next warm-up (a copy may be older
// than one another node received meanwhile; the eviction that followed is
// recorded, and applyHandedOver leaves such a copy out).
func (n *Node) drainStandby() int {
	m, _ := n.src.Current()
	layout := m.Layout()
	g := n.ho.gate.Load()
	got := n.standby.take(time.Now(), func(u *Update) bool {
		shard := layout.ShardOfFine(u.FineCell)
		return n.owns(m, shard) && (g == nil || !g.covers(shard))
	})
	if len(got) == 0 {
		return 0
	}
	ups := make([]index.Update, 0, len(got))
	for _, u := range got {
		ups = append(ups, standbyIndexUpdate(u, layout.ShardOfFine(u.FineCell)))
	}
	ids := n.applyStandby(ups)
	n.ho.keepUnchecked(ids)
	return len(ids)
}

// applyStandby applies copies like handed-over ones and returns the ids
// of those now held (a copy older than the position held is not).
func (n *Node) applyStandby(ups []index.Update) []string {
	var ids []string
	for _, u := range n.applyHandedOver(ups) {
		if d, ok := n.ix.Get(u.ID); ok && d.TimestampMs == u.TimestampMs {
			ids = append(ids, u.ID)
		}
	}
	n.count.standbyApplied.Add(uint64(len(ids)))
	return ids
}

// takeStandby applies the kept copies of the shards g gains (the warm-up
// calls it before the gate opens) and returns the ids applied.
func (n *Node) takeStandby(g *gate) []string {
	layout := g.step.Target.Layout()
	got := n.standby.take(time.Now(), func(u *Update) bool {
		return g.covers(layout.ShardOfFine(u.FineCell))
	})
	if len(got) == 0 {
		return nil
	}
	ups := make([]index.Update, 0, len(got))
	for _, u := range got {
		ups = append(ups, standbyIndexUpdate(u, layout.ShardOfFine(u.FineCell)))
	}
	return n.applyStandby(ups)
}

// standbyIndexUpdate is u as a handed-over copy in shard.
func standbyIndexUpdate(u Update, shard h3.Cell) index.Update {
	return index.Update{ID: u.DriverID, Pos: u.Pos, TimestampMs: u.TimestampMs, Status: u.Status,
		VehicleClass: u.VehicleClass, Shard: shard, HandedOver: true, OnStream: u.OnStream}
}

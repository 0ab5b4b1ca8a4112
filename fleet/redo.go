package fleet

import (
	"context"
	"maps"
	"slices"
	"sync"
	"time"

	matcherv1 "github.com/geomatch/geomatch/proto/geomatch/matcher/v1"
	"github.com/geomatch/geomatch/shardmap"
)

// The redo window. A matcher acknowledges an update once it is in memory;
// its position reaches Redis by write-behind (every half second) and
// nowhere else. A matcher that crashes takes its last half second or so of
// acknowledged positions with it: the new owner of its shards warms from
// Redis, and until each driver's next update it would answer with the
// position before. The router saw every one of those updates, so each peer
// keeps the updates its matcher acknowledged in the last redoWindow (a
// bounded ring), and when the matcher leaves the ring (the failover moved
// its shards) the client sends them again, newest per driver, to the new
// owners. A replayed update older than what the new owner holds is ignored
// (STALE), so a replay never moves a driver back; a driver that crossed
// to another node meanwhile has its replayed copy evicted there by the
// usual claim and eviction. Lost only if the router dies with the matcher:
// then the new owner's state is Redis's, as before.

// redoWindow is how far back a departed matcher's acknowledged updates are
// sent again: the write-behind interval, the flush itself, and the time a
// failover takes to move the shards (the check TTL), with margin.
const redoWindow = 5 * time.Second

// redoMax bounds the entries one peer keeps (oldest overwritten first):
// 5 s at about 13k acknowledged updates a second per matcher, about 8 MB
// with the updates themselves.
const redoMax = 1 << 16

// replayDeadline bounds how long a replayed update may wait (parked) for
// its new owner.
const replayDeadline = 5 * time.Second

// redoEntry is one acknowledged update and when it was acknowledged.
type redoEntry struct {
	u  *matcherv1.Update
	at int64 // Unix nanoseconds
}

// redoLog is a peer's ring of recently acknowledged updates. The updates
// are the client's own messages, never changed once sent.
type redoLog struct {
	mu   sync.Mutex
	ents []redoEntry // ring of up to redoMax, next write at next
	next int
}

// add records updates acknowledged at now.
func (r *redoLog) add(items []item, skip func(int) bool, now time.Time) {
	at := now.UnixNano()
	r.mu.Lock()
	defer r.mu.Unlock()
	for i, it := range items {
		if skip != nil && skip(i) {
			continue
		}
		e := redoEntry{u: it.u, at: at}
		if len(r.ents) < redoMax {
			r.ents = append(r.ents, e)
			continue
		}
		r.ents[r.next] = e
		r.next = (r.next + 1) % redoMax
	}
}

// since returns the newest update of each driver acknowledged after t.
func (r *redoLog) since(t time.Time) []*matcherv1.Update {
	cut := t.UnixNano()
	r.mu.Lock()
	defer r.mu.Unlock()
	newest := make(map[string]*matcherv1.Update)
	for _, e := range r.ents {
		if e.at < cut {
			continue
		}
		if cur := newest[e.u.GetDriverId()]; cur == nil || e.u.GetTimestampMs() > cur.GetTimestampMs() {
			newest[e.u.GetDriverId()] = e.u
		}
	}
	out := make([]*matcherv1.Update, 0, len(newest))
	for _, u := range newest {
		out = append(out, u)
	}
	return out
}

// replay sends again, to their owners on the current ring, the updates a
// departed matcher acknowledged in the redo window. Their outcomes go
// nowhere: each was answered to its sender already.
func (c *Client) replay(ctx context.Context, ups []*matcherv1.Update) {
	deadline := time.Now().Add(replayDeadline)
	for _, u := range ups {
		// A copy: the message may still sit in another ring entry or
		// batch, and routing sets its fine cell.
		cp := &matcherv1.Update{DriverId: u.GetDriverId(), Lat: u.GetLat(), Lng: u.GetLng(), TimestampMs: u.GetTimestampMs(),
			Status: u.GetStatus(), VehicleClass: u.GetVehicleClass(), OnStream: u.GetOnStream()}
		c.route(ctx, item{u: cp, sink: discard{}, deadline: deadline}, false)
	}
	c.replayed.Add(uint64(len(ups)))
}

// discard is the sink of replayed updates.
type discard struct{}

// Done implements Sink.
func (discard) Done(int32, Result) {}

// Replayed is how many updates the client sent again after their matcher
// left the ring (the redo window).
func (c *Client) Replayed() uint64 { return c.replayed.Load() }

// standbyTimeout bounds one Standby call.
const standbyTimeout = 2 * time.Second

// standbyFor hands the updates lost's matcher acknowledged in the redo
// window to the nodes that take its shards over if it leaves the ring
// (MatcherService.Standby), as soon as its stream breaks: seconds before
// the ring changes, so that each new owner applies them during its
// warm-up, before it answers a search in those shards, instead of the
// store's older positions (the replay at the ring change comes after the
// new owner serves). The successor of each shard is its owner on the
// ring without lost; a guess the ring writer may overrule (then the
// replay still delivers). In-process matchers are left out: they keep no
// redo window.
func (c *Client) standbyFor(ctx context.Context, lost *peer) {
	ups := lost.redo.since(time.Now().Add(-redoWindow))
	if len(ups) == 0 {
		return
	}
	m, _ := c.src.Current()
	succ, err := withoutMember(m, lost.id)
	if err != nil {
		c.log.Info("no successor ring for a lost matcher: its updates are replayed at the ring change only", "node", lost.id, "err", err)
		return
	}
	layout := succ.Layout()
	groups := map[string][]*matcherv1.Update{}
	for _, u := range ups {
		if u.GetFineCell() == 0 {
			continue
		}
		o, ok := succ.Owner(layout.ShardOfFine(cellOf(u.GetFineCell())))
		if !ok {
			continue
		}
		groups[o.ID] = append(groups[o.ID], u)
	}
	sent := 0
	for id, g := range groups {
		c.mu.RLock()
		p := c.peers[id]
		c.mu.RUnlock()
		if p == nil || p.local != nil {
			continue
		}
		for len(g) > 0 {
			chunk := g[:min(len(g), maxStandbyBatch)]
			g = g[len(chunk):]
			cctx, cancel := context.WithTimeout(ctx, standbyTimeout)
			_, err := p.rpc.Standby(cctx, &matcherv1.StandbyRequest{Updates: chunk, FromNode: lost.id, Epoch: m.Epoch()})
			cancel()
			if err != nil {
				p.log.Info("standby hand-over failed: the updates are replayed at the ring change only", "lost", lost.id, "updates", len(chunk), "err", errText(err))
				break
			}
			sent += len(chunk)
		}
	}
	c.standbySent.Add(uint64(sent))
}

// maxStandbyBatch is matcher.MaxStandbyBatch.
const maxStandbyBatch = 1 << 14

// withoutMember is m's ring with member id gone: what the ring writer
// composes when id's health check lapses (its pins and drain go with it).
func withoutMember(m *shardmap.Map, id string) (*shardmap.Map, error) {
	d := m.Doc()
	d.Members = slices.DeleteFunc(d.Members, func(mem shardmap.Member) bool { return mem.ID == id })
	d.Drained = slices.DeleteFunc(d.Drained, func(s string) bool { return s == id })
	maps.DeleteFunc(d.Pins, func(_ shardmap.Cell, owner string) bool { return owner == id })
	maps.DeleteFunc(d.Overrides, func(_ shardmap.Cell, owner string) bool { return owner == id })
	return shardmap.NewMap(d)
}

// StandbySent is how many updates the client handed to the successors of
// matchers it lost (Standby).
func (c *Client) StandbySent() uint64 { return c.standbySent.Load() }

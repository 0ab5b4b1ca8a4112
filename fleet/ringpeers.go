package fleet

import (
	"context"
	"encoding/json"
	"sync"
	"time"

	"github.com/geomatch/geomatch/membership"
	matcherv1 "github.com/geomatch/geomatch/proto/geomatch/matcher/v1"
	"github.com/geomatch/geomatch/shardmap"
)

// A ring from the matchers. A router follows the ring in Consul; one cut
// off from Consul while the matchers still reach it (a partition that
// leaves the router on the minority side) would go on routing by the ring
// it last read: updates for the shards that moved would wait for an owner
// that no longer serves them (and be acknowledged as superseded by the
// driver's next update, never delivered), and searches would leave those
// shards out. The matchers follow Consul too, so when owners look
// unreachable, or a node answers with a newer epoch that Consul does not
// give, the client asks the members it reaches for their ring record and
// adopts the newest one that is newer than its own (membership.Relay).
// Consul stays the only writer: a record passed on is one a matcher read
// from it.

// peerRingEvery is the least time between two background rounds of asking
// the members for their ring.
const peerRingEvery = 500 * time.Millisecond

// peerRingTimeout bounds one round.
const peerRingTimeout = time.Second

// ringFromPeers asks every member of the current ring that runs in another
// process for a ring newer than the client's, and adopts the newest
// answer. It reports whether it adopted one; false too when the source
// does not relay records (a static or in-process ring).
func (c *Client) ringFromPeers(ctx context.Context) bool {
	relay, ok := c.src.(membership.Relay)
	if !ok {
		return false
	}
	m, _ := c.src.Current()
	known := m.Epoch()
	var (
		mu       sync.Mutex
		best     membership.Record
		bestFrom string
	)
	c.eachMember(ctx, m, func(ctx context.Context, mem shardmap.Member, p *peer, err error) {
		if err != nil || p.local != nil {
			return
		}
		resp, err := p.rpc.Ring(ctx, &matcherv1.RingRequest{KnownEpoch: known})
		if err != nil || len(resp.GetRecord()) == 0 {
			return
		}
		var rec membership.Record
		if err := json.Unmarshal(resp.GetRecord(), &rec); err != nil {
			c.log.Warn("a matcher's ring record does not decode", "node", mem.ID, "err", err)
			return
		}
		mu.Lock()
		defer mu.Unlock()
		if rec.Doc.Epoch > best.Doc.Epoch {
			best, bestFrom = rec, mem.ID
		}
	})
	if best.Doc.Epoch <= known {
		return false
	}
	return relay.Adopt(best, "matcher "+bestFrom)
}

// askPeersForRing starts a background round of ringFromPeers unless one
// ran less than peerRingEvery ago or the source does not relay records.
func (c *Client) askPeersForRing() {
	if _, ok := c.src.(membership.Relay); !ok {
		return
	}
	now := time.Now().UnixNano()
	last := c.peerRingAt.Load()
	if now-last < int64(peerRingEvery) || !c.peerRingAt.CompareAndSwap(last, now) {
		return
	}
	c.goOwned(func(ctx context.Context) {
		ctx, cancel := context.WithTimeout(ctx, peerRingTimeout)
		defer cancel()
		if c.ringFromPeers(ctx) {
			c.peerRings.Add(1)
		}
	})
}

// RingsFromMatchers is how many rings the client adopted from members
// because its source had not delivered them (yet).
func (c *Client) RingsFromMatchers() uint64 { return c.peerRings.Load() }

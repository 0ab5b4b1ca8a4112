package fleet

import (
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"google.golang.org/grpc/connectivity"
)

// reach remembers since when each member has looked unreachable.
type reach struct {
	mu    sync.Mutex
	since map[string]time.Time // member id → first seen unreachable
}

// Reachable reports whether the client can reach an owner for every shard
// of the current ring: no member that owns shards has looked unreachable
// (its connection failing) for longer than Config.UnreachableGrace. When it
// cannot, the reason names the members. Members in this process are always
// reachable. It is meant for a readiness probe: it reads connection states
// and starts connecting idle ones, and sends nothing.
func (c *Client) Reachable() (bool, string) {
	m, _ := c.src.Current()
	if len(m.ActiveIDs()) == 0 {
		return false, "no active matcher on the ring"
	}
	now := time.Now()
	var down []string
	c.reach.mu.Lock()
	defer c.reach.mu.Unlock()
	if c.reach.since == nil {
		c.reach.since = make(map[string]time.Time)
	}
	seen := make(map[string]bool)
	for _, id := range m.ActiveIDs() {
		seen[id] = true
		mem, _ := m.Member(id)
		p, err := c.peer(mem)
		ok := err == nil
		if ok && p.local == nil {
			switch p.conn.GetState() {
			case connectivity.Idle:
				p.conn.Connect()
			case connectivity.TransientFailure, connectivity.Shutdown:
				ok = false
			}
		}
		if ok {
			delete(c.reach.since, id)
			continue
		}
		first, was := c.reach.since[id]
		if !was {
			c.reach.since[id] = now
			continue
		}
		if now.Sub(first) > c.cfg.UnreachableGrace {
			down = append(down, fmt.Sprintf("%s at %s for %s", id, mem.Addr, now.Sub(first).Round(time.Second)))
		}
	}
	for id := range c.reach.since {
		if !seen[id] {
			delete(c.reach.since, id)
		}
	}
	if len(down) > 0 {
		slices.Sort(down)
		return false, "matchers unreachable: " + strings.Join(down, ", ")
	}
	return true, ""
}

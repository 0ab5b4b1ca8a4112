package router_test

import (
	"context"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/geomatch/geomatch/cluster"
	"github.com/geomatch/geomatch/membership"
	"github.com/geomatch/geomatch/shardmap"
)

// laggingSource shows the router the ring as it was when frozen, until the
// router asks for a refresh: what a router sees between a ring change and
// its watch firing.
type laggingSource struct {
	inner     *membership.Local
	mu        sync.Mutex
	frozen    *shardmap.Map
	refreshes atomic.Int32
}

func (l *laggingSource) freeze() {
	m, _ := l.inner.Current()
	l.mu.Lock()
	l.frozen = m
	l.mu.Unlock()
}

func (l *laggingSource) freezeAt(m *shardmap.Map) {
	l.mu.Lock()
	l.frozen = m
	l.mu.Unlock()
}

func (l *laggingSource) Current() (*shardmap.Map, <-chan struct{}) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.frozen != nil {
		return l.frozen, make(chan struct{})
	}
	return l.inner.Current()
}

func (l *laggingSource) Refresh(context.Context) error {
	l.refreshes.Add(1)
	l.mu.Lock()
	l.frozen = nil
	l.mu.Unlock()
	return nil
}

func (l *laggingSource) Kind() string { return "lagging" }

// TestRouterRetriesOnNotOwner: when the ring moves under a router that has
// not seen it yet, matchers refuse with NotOwner and their newer epoch; the
// router refreshes and re-routes, and clients see neither errors nor
// inexact answers.
func TestRouterRetriesOnNotOwner(t *testing.T) {
	var lag *laggingSource
	c := startCluster(t, cluster.DevConfig{Matchers: 3, RouterMembership: func(l *membership.Local) membership.Source {
		lag = &laggingSource{inner: l}
		return lag
	}})
	lag.freeze()
	epoch1, _ := c.Membership.Current()
	// Drain m1: every shard it owned moves to m2 or m3 at epoch 2, which
	// the router does not know yet.
	if _, err := c.Membership.Update(func(d *shardmap.Doc) error {
		d.Drained = append(d.Drained, "m1")
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	r := rand.New(rand.NewPCG(5, 5))
	fleet := makeFleet(r, 2000, shardmap.DefaultShardRes, time.Now().UnixMilli()-1000)
	c.upload(t, fleet)
	if lag.refreshes.Load() == 0 {
		t.Fatal("the router never refreshed its ring: no update went to a stale owner")
	}
	if n := c.Nodes[0].Index().Len(); n != 0 {
		t.Fatalf("drained node m1 holds %d drivers", n)
	}
	c.waitSettled(t, fleet)
	assertNearbyExact(t, c, r, fleet, 100)

	// Queries: show the router the epoch-1 ring again (m1 owning shards it
	// gave up); it must find out through NotOwner and still answer exactly.
	lag.freezeAt(epoch1)
	before := lag.refreshes.Load()
	assertNearbyExact(t, c, r, fleet, 100)
	if lag.refreshes.Load() == before {
		t.Fatal("queries never hit a NotOwner: the test did not exercise the retry")
	}
}

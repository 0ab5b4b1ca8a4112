package membership

import (
	"fmt"
	"sync/atomic"
	"time"
)

// Lease says whether a matcher may still serve the shards the ring gave
// it: the guard against split brain.
//
// The ring writer moves a matcher's shards once the matcher's Consul
// health check has been critical for its TTL, that is no earlier than TTL
// after the last check pass the matcher sent. So a matcher that stops
// serving when LeaseShare of a TTL has passed since it sent its last
// successful pass has stopped before any other node can have been given
// its shards: a matcher cut off from Consul (a partition, a hung agent)
// answers nothing and applies nothing that another owner might also be
// answering or applying.
//
// Consul itself being down (paused, restarting) would then stop every
// matcher, though no writer can move any shard while Consul is down. So
// peers may vouch instead: when every other member of the ring answers
// and none of them has a current Consul lease either, Consul is
// unreachable to all of them, no node can be writing a new ring, and the
// lease runs on for LeaseShare of a TTL from that round of answers. Peers
// are asked, and answer, once their own contact is fading (half a lease
// left), so the vouching is in place before any lease lapses. One
// member that still reaches Consul (so a writer could act), or that does
// not answer (it could be the writer), ends the vouching.
//
// Lease is safe for concurrent use; Valid is one atomic load and a clock
// read.
type Lease struct {
	length time.Duration
	now    func() time.Time
	consul atomic.Int64 // Unix nanoseconds until which Consul contact vouches
	peers  atomic.Int64 // Unix nanoseconds until which the peers vouch
	since  atomic.Int64 // Unix nanoseconds of the last Consul contact
}

// LeaseShare is the part of the check TTL a lease lasts after the pass
// (or the peers' answers) that renewed it: the rest is the margin for the
// time a pass takes to reach Consul and for clock rate differences.
const LeaseShare = 0.8

// NewLease returns the lease of a matcher whose health check has the given
// TTL (DefaultCheckTTL if 0). It starts lapsed: the first pass (or the
// registration) renews it.
func NewLease(checkTTL time.Duration) *Lease {
	if checkTTL <= 0 {
		checkTTL = DefaultCheckTTL
	}
	return &Lease{length: time.Duration(float64(checkTTL) * LeaseShare), now: time.Now}
}

// Length is how long one renewal lasts.
func (l *Lease) Length() time.Duration { return l.length }

// Renewed records a successful check pass (or registration) that was sent
// at sentAt.
func (l *Lease) Renewed(sentAt time.Time) {
	extend(&l.consul, sentAt.Add(l.length).UnixNano())
	extend(&l.since, sentAt.UnixNano())
}

// PeersVouch records a round of answers, asked at sentAt, in which every
// other member answered and none had a current Consul lease.
func (l *Lease) PeersVouch(sentAt time.Time) {
	extend(&l.peers, sentAt.Add(l.length).UnixNano())
}

// ConsulFresh reports whether the node's own Consul contact is fresh:
// more than half a lease left (what it tells peers that ask). A node whose
// passes stopped getting through says so while its lease still runs, so
// that when Consul is down for every node they all vouch for each other
// before any lease lapses.
func (l *Lease) ConsulFresh() bool { return !l.ConsulFading() }

// ConsulFading reports whether the node's own Consul contact vouches for
// less than half a lease more (two or more passes missed): time to ask the
// peers, so that their vouching is in place before the lease lapses.
func (l *Lease) ConsulFading() bool {
	return l.consul.Load()-l.now().UnixNano() < int64(l.length/2)
}

// Valid reports whether the node may serve now; when it may not, why says
// since when it has been cut off.
func (l *Lease) Valid() (ok bool, why string) {
	now := l.now().UnixNano()
	if now < l.consul.Load() || now < l.peers.Load() {
		return true, ""
	}
	if s := l.since.Load(); s != 0 {
		return false, fmt.Sprintf("ownership lease lapsed: no Consul contact for %s and the peers do not vouch for it", time.Duration(now-s).Round(time.Millisecond))
	}
	return false, "ownership lease not taken yet: not registered in Consul"
}

// extend raises *v to t unless it is already later.
func extend(v *atomic.Int64, t int64) {
	for {
		old := v.Load()
		if old >= t || v.CompareAndSwap(old, t) {
			return
		}
	}
}

package membership

import (
	"strings"
	"testing"
	"time"
)

// fakeClock is a settable clock.
type fakeClock struct{ t time.Time }

func (c *fakeClock) now() time.Time { return c.t }

func newTestLease(ttl time.Duration) (*Lease, *fakeClock) {
	c := &fakeClock{t: time.Unix(1_000_000, 0)}
	l := NewLease(ttl)
	l.now = c.now
	return l, c
}

// TestLeaseRules are the lease's rules, one row each.
func TestLeaseRules(t *testing.T) {
	const ttl = 2 * time.Second
	length := time.Duration(float64(ttl) * LeaseShare)
	for _, tc := range []struct {
		name  string
		steps func(l *Lease, c *fakeClock)
		valid bool
		why   string
	}{
		{"starts lapsed", func(*Lease, *fakeClock) {}, false, "not registered"},
		{"a pass vouches for LeaseShare of a TTL", func(l *Lease, c *fakeClock) {
			l.Renewed(c.t)
			c.t = c.t.Add(length - time.Millisecond)
		}, true, ""},
		{"it lapses before the check TTL runs out", func(l *Lease, c *fakeClock) {
			l.Renewed(c.t)
			c.t = c.t.Add(length)
		}, false, "no Consul contact for 1.6s"},
		{"the lease counts from when the pass was sent, not answered", func(l *Lease, c *fakeClock) {
			sent := c.t
			c.t = c.t.Add(time.Second) // a slow answer
			l.Renewed(sent)
			c.t = sent.Add(length)
		}, false, "lapsed"},
		{"an older pass answered late does not shorten it", func(l *Lease, c *fakeClock) {
			l.Renewed(c.t)
			l.Renewed(c.t.Add(-time.Second))
			c.t = c.t.Add(length - time.Millisecond)
		}, true, ""},
		{"peers vouch when none of them reaches Consul", func(l *Lease, c *fakeClock) {
			l.Renewed(c.t)
			c.t = c.t.Add(length + time.Second)
			l.PeersVouch(c.t)
			c.t = c.t.Add(length - time.Millisecond)
		}, true, ""},
		{"the peers' vouching lapses too", func(l *Lease, c *fakeClock) {
			l.Renewed(c.t)
			c.t = c.t.Add(length + time.Second)
			l.PeersVouch(c.t)
			c.t = c.t.Add(length)
		}, false, "lapsed"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			l, c := newTestLease(ttl)
			tc.steps(l, c)
			ok, why := l.Valid()
			if ok != tc.valid || !strings.Contains(why, tc.why) {
				t.Fatalf("Valid() = %v, %q; want %v, %q", ok, why, tc.valid, tc.why)
			}
			if ok && why != "" {
				t.Fatalf("a valid lease explains itself: %q", why)
			}
		})
	}
}

// TestLeaseEndsBeforeTheCheck is the safety property: whatever the
// passes' timing, the lease never runs past the time Consul marks the
// check critical (the last pass sent plus the TTL), unless peers vouch.
func TestLeaseEndsBeforeTheCheck(t *testing.T) {
	const ttl = 2 * time.Second
	l, c := newTestLease(ttl)
	start := c.t
	var lastSent time.Time
	for i := range 1000 {
		sent := start.Add(time.Duration(i*37%500) * time.Millisecond * time.Duration(i/10+1))
		if sent.After(lastSent) {
			lastSent = sent
		}
		l.Renewed(sent)
		c.t = lastSent.Add(ttl)
		if ok, _ := l.Valid(); ok {
			t.Fatalf("after %d passes: valid at the last pass + TTL", i+1)
		}
	}
}

// TestLeaseFadesBeforeItLapses: the peers are asked while half a lease is
// left, so their vouching is in place before it lapses.
func TestLeaseFadesBeforeItLapses(t *testing.T) {
	l, c := newTestLease(2 * time.Second)
	if !l.ConsulFading() {
		t.Fatal("a lease never renewed is not fading")
	}
	l.Renewed(c.t)
	if l.ConsulFading() {
		t.Fatal("a fresh lease is fading")
	}
	c.t = c.t.Add(l.Length()/2 + time.Millisecond)
	if !l.ConsulFading() || l.ConsulFresh() {
		t.Fatalf("half a lease on: fading %v, current %v; want fading, not current", l.ConsulFading(), l.ConsulFresh())
	}
	if ok, _ := l.Valid(); !ok {
		t.Fatal("half a lease on: the lease itself still runs")
	}
}

package cluster

import (
	"context"
	"log/slog"
	"sync"
	"time"

	"github.com/geomatch/geomatch/membership"
	matcherv1 "github.com/geomatch/geomatch/proto/geomatch/matcher/v1"
)

// runVouching keeps a matcher's ownership lease running while Consul is
// down for everyone (see membership.Lease): every period in which the
// node's own Consul contact is fading (passes missed), it asks every other
// member of the ring whether it reaches Consul, and when all of them
// answer and none does, they vouch for the lease. A node alone on the ring vouches for
// itself (nobody else could be given its shards). It returns when ctx is
// done.
func runVouching(ctx context.Context, self string, lease *membership.Lease, src membership.Source, census *shardCensus, period time.Duration, log *slog.Logger) error {
	t := time.NewTicker(period)
	defer t.Stop()
	// state is what was last logged: fresh Consul contact, vouched for by
	// the peers, or neither; each change is logged once.
	const (
		fresh = iota
		vouched
		unvouched
	)
	state := fresh
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
		if !lease.ConsulFading() {
			state = fresh
			continue
		}
		sent := time.Now()
		ok, why := peersVouch(ctx, self, src, census, period)
		switch {
		case ok:
			lease.PeersVouch(sent)
			if state != vouched {
				log.Warn("no Consul contact, but no peer has any either: serving on, vouched for by the peers")
			}
			state = vouched
		default:
			if state != unvouched {
				log.Warn("no Consul contact and the peers do not vouch: this matcher stops serving its shards when its lease lapses", "why", why)
			}
			state = unvouched
		}
	}
}

// peersVouch asks every other member of the ring, within timeout, whether
// its Consul contact is current; it vouches when all answer and none is.
func peersVouch(ctx context.Context, self string, src membership.Source, census *shardCensus, timeout time.Duration) (bool, string) {
	m, _ := src.Current()
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	var (
		wg     sync.WaitGroup
		mu     sync.Mutex
		refuse string
	)
	for _, mem := range m.Members() {
		if mem.ID == self {
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			why := ""
			c, err := census.conn(mem.Addr)
			if err == nil {
				var st *matcherv1.StatsResponse
				if st, err = c.Stats(ctx, &matcherv1.StatsRequest{}); err == nil && st.GetConsulLease() {
					why = mem.ID + " reaches Consul"
				}
			}
			if err != nil {
				why = mem.ID + " did not answer: " + err.Error()
			}
			if why != "" {
				mu.Lock()
				if refuse == "" {
					refuse = why
				}
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	return refuse == "", refuse
}

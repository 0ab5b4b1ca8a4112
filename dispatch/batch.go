package dispatch

import (
	"context"
	"errors"
	"time"

	"github.com/geomatch/geomatch/assign"
	"github.com/geomatch/geomatch/internal/geo"
	"github.com/geomatch/geomatch/store"
	"github.com/geomatch/geomatch/trip"
)

// maxBatch bounds the requests of one shard's batch; later arrivals in the
// same window are served greedily.
const maxBatch = 500

// batch is the requests of one pickup shard collected during one window.
type batch struct {
	members []*batchMember
	done    chan struct{}
}

type batchMember struct {
	t    trip.Trip
	cand Candidate
	ok   bool
}

// joinBatch adds t to its shard's open batch and waits for the batch to be
// solved. The first request of a window leads: it waits the window out,
// solves the assignment and reserves the chosen drivers. ok is false when
// the batch found no reservable driver for t (t then goes greedy).
func (c *Coordinator) joinBatch(ctx context.Context, t trip.Trip) (Candidate, bool) {
	shard := c.place.Shard(geo.LatLng(t.Pickup))
	m := &batchMember{t: t}
	c.mu.Lock()
	b := c.batches[shard]
	leader := b == nil
	if leader {
		b = &batch{done: make(chan struct{})}
		c.batches[shard] = b
	}
	if len(b.members) >= maxBatch {
		c.mu.Unlock()
		return Candidate{}, false
	}
	b.members = append(b.members, m)
	c.mu.Unlock()
	if !leader {
		select {
		case <-b.done:
			return m.cand, m.ok
		case <-ctx.Done():
			return Candidate{}, false
		}
	}
	timer := time.NewTimer(c.cfg.BatchWindow)
	select {
	case <-timer.C:
	case <-ctx.Done():
	}
	timer.Stop()
	c.mu.Lock()
	delete(c.batches, shard)
	members := b.members
	c.mu.Unlock()
	if ctx.Err() == nil {
		c.solve(ctx, members)
	}
	close(b.done)
	return m.cand, m.ok
}

// solve assigns the batch's requests to drivers with minimum total pickup
// distance (maximum number matched first) and reserves the chosen drivers.
func (c *Coordinator) solve(ctx context.Context, members []*batchMember) {
	var (
		edges   []assign.Edge
		drivers []Candidate
		index   = map[string]int{}
	)
	for i, m := range members {
		cands, err := c.search.Available(ctx, geo.LatLng(m.t.Pickup), c.cfg.SearchRadiusM, c.cfg.Candidates, m.t.VehicleClass)
		if err != nil {
			c.log.Warn("batch: search drivers", "trip", m.t.ID, "err", err)
			continue
		}
		for _, cand := range cands {
			j, ok := index[cand.DriverID]
			if !ok {
				j = len(drivers)
				index[cand.DriverID] = j
				drivers = append(drivers, cand)
			}
			edges = append(edges, assign.Edge{Rider: i, Driver: j, Cost: cand.DistanceM})
		}
	}
	pairs, err := assign.Optimal(len(members), len(drivers), edges)
	if err != nil {
		c.log.Warn("batch: assignment failed, serving greedily", "requests", len(members), "err", err)
		return
	}
	lease := c.cfg.OfferTimeout + c.cfg.LeaseGrace
	for _, p := range pairs {
		m, d := members[p.Rider], drivers[p.Driver]
		_, err := c.st.Reserve(ctx, d.DriverID, m.t.ID, lease, c.cfg.Now())
		if err != nil {
			if errors.Is(err, store.ErrConflict) {
				c.conflicts.Add(1)
			} else {
				c.log.Warn("batch: reserve driver", "driver", d.DriverID, "trip", m.t.ID, "err", err)
			}
			continue
		}
		m.cand, m.ok = Candidate{DriverID: d.DriverID, DistanceM: p.Cost}, true
	}
	c.log.Debug("batch solved", "requests", len(members), "drivers", len(drivers), "matched", len(pairs), "total_m", assign.Total(pairs))
}

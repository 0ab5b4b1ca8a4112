package cluster

import (
	"context"
	"log/slog"
	"sync"
	"time"

	"github.com/geomatch/geomatch/fleet"
	"github.com/geomatch/geomatch/membership"
	matcherv1 "github.com/geomatch/geomatch/proto/geomatch/matcher/v1"
	"github.com/geomatch/geomatch/shardmap"
	"github.com/geomatch/geomatch/shardmap/autosplit"
)

// autosplitStatsTimeout bounds one load poll of the matchers: shorter than
// the poll interval would be too tight on a loaded machine, and a matcher
// that takes longer counts as not answering (its shards' windows restart).
const autosplitStatsTimeout = 2 * time.Second

// FleetLoads polls the matchers through a fleet client, as
// AdminService.ListShards does, for the autosplit controller
// (membership.AutosplitConfig.Loads).
func FleetLoads(fc *fleet.Client) func(ctx context.Context, m *shardmap.Map) ([]autosplit.Load, []string) {
	return func(ctx context.Context, m *shardmap.Map) ([]autosplit.Load, []string) {
		var loads []autosplit.Load
		var missing []string
		for _, ns := range fc.Stats(ctx, m, autosplitStatsTimeout) {
			if ns.Err != nil || ns.Stats == nil {
				missing = append(missing, ns.Member.ID)
				continue
			}
			loads = appendLoads(loads, ns.Stats)
		}
		return loads, missing
	}
}

// appendLoads appends the per-shard loads of one matcher's stats.
func appendLoads(out []autosplit.Load, st *matcherv1.StatsResponse) []autosplit.Load {
	for _, sh := range st.GetShards() {
		if sh.GetUpdatesPerS() > 0 || sh.GetQueriesPerS() > 0 {
			out = append(out, autosplit.Load{Cell: shardmap.Cell(sh.GetCell()), UpdatesPerS: sh.GetUpdatesPerS(), QueriesPerS: sh.GetQueriesPerS()})
		}
	}
	return out
}

// loads polls every member of m for its per-shard load over the census's
// connections (a Consul matcher's autosplit controller).
func (s *shardCensus) loads(ctx context.Context, m *shardmap.Map) ([]autosplit.Load, []string) {
	ctx, cancel := context.WithTimeout(ctx, autosplitStatsTimeout)
	defer cancel()
	var mu sync.Mutex
	var loads []autosplit.Load
	var missing []string
	var wg sync.WaitGroup
	for _, mem := range m.Members() {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var st *matcherv1.StatsResponse
			c, err := s.conn(mem.Addr)
			if err == nil {
				st, err = c.Stats(ctx, &matcherv1.StatsRequest{})
			}
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				missing = append(missing, mem.ID)
				return
			}
			loads = appendLoads(loads, st)
		}()
	}
	wg.Wait()
	return loads, missing
}

// newDevAutosplit is the autosplit controller of a dev cluster: it decides
// on the in-process ring and polls the matchers through the router's fleet
// client.
func newDevAutosplit(cfg autosplit.Config, ring *membership.Local, fc *fleet.Client, o *Observer, log *slog.Logger) (*membership.Autosplit, error) {
	return membership.NewAutosplit(membership.AutosplitConfig{
		Planner: cfg, Source: ring, Ring: ring, Loads: FleetLoads(fc), Metrics: o.registerer(),
	}, log)
}

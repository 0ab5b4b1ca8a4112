package simulator

import (
	"context"
	"maps"
	"slices"
	"sync"
	"time"

	"github.com/uber/h3-go/v4"

	geomatchv1 "github.com/geomatch/geomatch/proto/geomatch/v1"
	"github.com/geomatch/geomatch/simulator/report"
)

// nodeLoadSampler samples the load per matcher and the ring's splits every
// sample interval (AdminService.ListShards and GetRing), for the report's
// load chart (Config.NodeLoad).
type nodeLoadSampler struct {
	e     *engine
	every time.Duration
	t0    time.Time

	mu     sync.Mutex
	out    report.NodeLoad
	splits map[string]bool // at the previous sample; nil before the first
	warned bool
}

// newNodeLoadSampler returns the sampler of e, nil unless Config.NodeLoad.
func newNodeLoadSampler(e *engine) *nodeLoadSampler {
	if !e.cfg.NodeLoad && e.cfg.Stadium == nil {
		return nil
	}
	n := &nodeLoadSampler{e: e, every: e.cfg.SampleEvery}
	n.out.QueryWeight = e.cfg.LoadQueryWeight
	if s := e.stadium; s != nil {
		w := e.cfg.Duration.Seconds()
		n.out.HotFromS, n.out.HotToS = s.cfg.From*w, s.cfg.To*w
	}
	return n
}

// run samples from t0 until ctx is done.
func (n *nodeLoadSampler) run(ctx context.Context, t0 time.Time) {
	if n == nil {
		return
	}
	n.t0 = t0
	t := time.NewTicker(n.every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case now := <-t.C:
			n.sample(ctx, now)
		}
	}
}

// sample takes one sample; a failed call skips it (warned once).
func (n *nodeLoadSampler) sample(ctx context.Context, now time.Time) {
	cctx, cancel := context.WithTimeout(ctx, n.every+time.Second)
	defer cancel()
	ring, err := n.e.admin.GetRing(cctx, &geomatchv1.GetRingRequest{})
	var shards *geomatchv1.ListShardsResponse
	if err == nil {
		shards, err = n.e.admin.ListShards(cctx, &geomatchv1.ListShardsRequest{Limit: 100000})
	}
	if err != nil {
		if ctx.Err() == nil && !n.warned {
			n.warned = true
			n.e.warnOnce("node-load", "could not sample the load per matcher", "err", err)
		}
		return
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	t := now.Sub(n.t0).Seconds()
	var nodes []string
	for _, m := range ring.GetMembers() {
		if !m.GetDrained() {
			nodes = append(nodes, m.GetId())
		}
	}
	slices.Sort(nodes)
	for _, id := range nodes {
		if !slices.Contains(n.out.Nodes, id) {
			n.out.Nodes = append(n.out.Nodes, id)
			slices.Sort(n.out.Nodes)
		}
	}
	if n.out.HotCell == "" && n.e.stadium != nil {
		p := n.e.g.Frame.LatLng(n.e.stadium.x, n.e.stadium.y)
		n.out.HotCell = h3.LatLngToCell(h3.LatLng{Lat: p.Lat, Lng: p.Lng}, int(ring.GetShardResolution())).String()
	}
	hot, _ := cellOf(n.out.HotCell)
	smp := report.NodeLoadSample{T: t, Epoch: ring.GetEpoch(), Load: map[string]float64{}}
	for _, id := range nodes {
		smp.Load[id] = 0
	}
	for _, s := range shards.GetShards() {
		l := s.GetUpdatesPerS() + n.out.QueryWeight*s.GetQueriesPerS()
		smp.Load[s.GetOwner()] += l
		if c, ok := cellOf(s.GetCell()); ok && hot != 0 && c.Resolution() >= hot.Resolution() {
			if p := c.Parent(hot.Resolution()); p == hot {
				smp.HotLoad += l
			}
		}
	}
	smp.MaxOverMean = report.MaxOverMean(smp.Load, nodes)
	n.out.Samples = append(n.out.Samples, smp)
	splits := map[string]bool{}
	for _, c := range ring.GetSplits() {
		splits[c] = true
	}
	if n.splits != nil {
		for _, c := range slices.Sorted(maps.Keys(splits)) {
			if !n.splits[c] {
				n.out.Changes = append(n.out.Changes, report.RingChange{T: t, Epoch: ring.GetEpoch(), Action: "split", Cell: c})
			}
		}
		for _, c := range slices.Sorted(maps.Keys(n.splits)) {
			if !splits[c] {
				n.out.Changes = append(n.out.Changes, report.RingChange{T: t, Epoch: ring.GetEpoch(), Action: "merge", Cell: c})
			}
		}
	}
	n.splits = splits
}

// result returns the samples with their summary; nil for a nil sampler.
func (n *nodeLoadSampler) result() *report.NodeLoad {
	if n == nil {
		return nil
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	out := n.out
	out.Samples = slices.Clone(n.out.Samples)
	out.Changes = slices.Clone(n.out.Changes)
	out.Summarize()
	return &out
}

// cellOf parses an H3 cell in hex.
func cellOf(s string) (h3.Cell, bool) {
	var c h3.Cell
	if s == "" || c.UnmarshalText([]byte(s)) != nil || !c.IsValid() {
		return 0, false
	}
	return c, true
}

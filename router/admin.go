package router

import (
	"cmp"
	"context"
	"slices"
	"time"

	"github.com/uber/h3-go/v4"

	"github.com/geomatch/geomatch/fleet"
	geomatchv1 "github.com/geomatch/geomatch/proto/geomatch/v1"
	"github.com/geomatch/geomatch/shardmap"
)

// statsTimeout bounds the status probe of each matcher.
const statsTimeout = 2 * time.Second

// adminService implements geomatchv1.AdminServiceServer.
type adminService struct {
	geomatchv1.UnimplementedAdminServiceServer
	r *Router
}

// probe asks every member of m for its stats, in parallel.
func (r *Router) probe(ctx context.Context, m *shardmap.Map) []fleet.NodeStats {
	return r.fleet.Stats(ctx, m, statsTimeout)
}

// GetClusterStatus implements AdminServiceServer.
func (s *adminService) GetClusterStatus(ctx context.Context, _ *geomatchv1.GetClusterStatusRequest) (*geomatchv1.ClusterStatus, error) {
	m, _ := s.r.src.Current()
	resp := &geomatchv1.ClusterStatus{Epoch: m.Epoch(), Membership: s.r.src.Kind(), ShardResolution: int32(m.Layout().Res())}
	for _, ns := range s.r.probe(ctx, m) {
		n := &geomatchv1.NodeStatus{Id: ns.Member.ID, Addr: ns.Member.Addr, Weight: ns.Member.Weight}
		switch {
		case ns.Err != nil:
			n.State = geomatchv1.NodeState_NODE_STATE_UNREACHABLE
			n.Error = ns.Err.Error()
		case m.Drained(ns.Member.ID):
			n.State = geomatchv1.NodeState_NODE_STATE_DRAINED
		default:
			n.State = geomatchv1.NodeState_NODE_STATE_SERVING
		}
		if ns.Stats != nil {
			n.Epoch = ns.Stats.GetEpoch()
			n.Drivers = ns.Stats.GetDrivers()
			for _, sh := range ns.Stats.GetShards() {
				if sh.GetDrivers() > 0 {
					n.Shards++
				}
			}
			resp.Drivers += n.Drivers
		}
		resp.Nodes = append(resp.Nodes, n)
	}
	return resp, nil
}

// ListShards implements AdminServiceServer.
func (s *adminService) ListShards(ctx context.Context, req *geomatchv1.ListShardsRequest) (*geomatchv1.ListShardsResponse, error) {
	m, _ := s.r.src.Current()
	limit := int(req.GetLimit())
	if limit <= 0 || limit > 100000 {
		limit = 1000
	}
	resp := &geomatchv1.ListShardsResponse{Epoch: m.Epoch()}
	for _, ns := range s.r.probe(ctx, m) {
		if ns.Stats == nil || (req.GetNodeId() != "" && req.GetNodeId() != ns.Member.ID) {
			continue
		}
		for _, sh := range ns.Stats.GetShards() {
			c := h3.Cell(sh.GetCell())
			ll := c.LatLng()
			resp.Shards = append(resp.Shards, &geomatchv1.ShardInfo{
				Cell: c.String(), Resolution: int32(shardmap.Resolution(c)), Owner: ns.Member.ID,
				Drivers: sh.GetDrivers(), UpdatesPerS: sh.GetUpdatesPerS(), QueriesPerS: sh.GetQueriesPerS(),
				Center: &geomatchv1.LatLng{Lat: ll.Lat, Lng: ll.Lng},
			})
		}
	}
	slices.SortFunc(resp.Shards, func(a, b *geomatchv1.ShardInfo) int {
		if c := cmp.Compare(b.Drivers, a.Drivers); c != 0 {
			return c
		}
		if c := cmp.Compare(b.UpdatesPerS+b.QueriesPerS, a.UpdatesPerS+a.QueriesPerS); c != 0 {
			return c
		}
		return cmp.Compare(a.Cell, b.Cell)
	})
	if len(resp.Shards) > limit {
		resp.Shards = resp.Shards[:limit]
	}
	return resp, nil
}

// GetRing implements AdminServiceServer.
func (s *adminService) GetRing(context.Context, *geomatchv1.GetRingRequest) (*geomatchv1.RingDocument, error) {
	m, _ := s.r.src.Current()
	d := m.Doc()
	out := &geomatchv1.RingDocument{
		Epoch: d.Epoch, ShardResolution: int32(d.ShardRes), MaxSplitDepth: int32(d.MaxSplitDepth), Vnodes: int32(d.VNodes),
		Pins: make(map[string]string, len(d.Pins)),
	}
	for _, mem := range d.Members {
		out.Members = append(out.Members, &geomatchv1.RingMember{Id: mem.ID, Addr: mem.Addr, Weight: mem.Weight, Drained: m.Drained(mem.ID)})
	}
	for _, c := range d.Splits {
		out.Splits = append(out.Splits, c.String())
	}
	for c, id := range d.Pins {
		out.Pins[c.String()] = id
	}
	return out, nil
}

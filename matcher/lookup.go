package matcher

import (
	"cmp"
	"context"
	"fmt"
	"slices"

	"github.com/geomatch/geomatch/matcher/index"
	matcherv1 "github.com/geomatch/geomatch/proto/geomatch/matcher/v1"
	geomatchv1 "github.com/geomatch/geomatch/proto/geomatch/v1"
)

// Lookups by id: what a router needs to answer "where is driver X" (the
// RESP door's GET, GEOPOS, GEODIST) and to page through the whole fleet
// (SCAN). Drivers are placed by position, not by id, so a router asks
// every node; a node answers from its index's id directory (Lookup) or a
// pass over its drivers without copying them (Scan, O(drivers held) per page: an operator's
// tool, not a hot path).

// Bounds of Lookup and Scan.
const (
	// MaxLookupIDs bounds the ids of one Lookup.
	MaxLookupIDs = 1000
	// MaxScanLimit bounds the drivers of one Scan page.
	MaxScanLimit = 1000
)

// Lookup returns the drivers of ids the node holds, in any order.
func (n *Node) Lookup(ids []string) ([]index.Driver, error) {
	if len(ids) > MaxLookupIDs {
		return nil, fmt.Errorf("driver_ids: %d listed, at most %d: %w", len(ids), MaxLookupIDs, errInvalid)
	}
	var out []index.Driver
	for _, id := range ids {
		if d, ok := n.ix.Get(id); ok {
			out = append(out, d)
		}
	}
	return out, nil
}

// Scan returns, in id order, at most limit of the node's drivers whose ids
// sort after after, of class class ("" any).
func (n *Node) Scan(after string, limit int, class string) ([]index.Driver, error) {
	if limit <= 0 || limit > MaxScanLimit {
		return nil, fmt.Errorf("limit: must be within [1, %d], got %d: %w", MaxScanLimit, limit, errInvalid)
	}
	var page []index.Driver // sorted by id, at most limit
	n.ix.Within(nil, -90, -180, 90, 180, func(d index.Driver) bool {
		if d.ID <= after || (class != "" && d.VehicleClass != class) ||
			(len(page) == limit && d.ID >= page[limit-1].ID) {
			return true
		}
		i, _ := slices.BinarySearchFunc(page, d.ID, func(x index.Driver, id string) int { return cmp.Compare(x.ID, id) })
		page = slices.Insert(page, i, d)
		if len(page) > limit {
			page = page[:limit]
		}
		return true
	})
	return page, nil
}

// driversToWire converts drivers found by id (no distance).
func driversToWire(ds []index.Driver) []*matcherv1.Neighbor {
	out := make([]*matcherv1.Neighbor, len(ds))
	for i, d := range ds {
		out[i] = &matcherv1.Neighbor{DriverId: d.ID, Lat: d.Pos.Lat, Lng: d.Pos.Lng, TimestampMs: d.TimestampMs,
			Status: geomatchv1.DriverStatus(d.Status), VehicleClass: d.VehicleClass}
	}
	return out
}

// lookupWire answers one wire Lookup.
func (n *Node) lookupWire(_ context.Context, req *matcherv1.LookupRequest) (*matcherv1.LookupResponse, error) {
	ds, err := n.Lookup(req.GetDriverIds())
	if err != nil {
		return nil, toStatus(err)
	}
	return &matcherv1.LookupResponse{Drivers: driversToWire(ds)}, nil
}

// scanWire answers one wire Scan.
func (n *Node) scanWire(_ context.Context, req *matcherv1.ScanRequest) (*matcherv1.ScanResponse, error) {
	ds, err := n.Scan(req.GetAfter(), int(req.GetLimit()), req.GetVehicleClass())
	if err != nil {
		return nil, toStatus(err)
	}
	return &matcherv1.ScanResponse{Drivers: driversToWire(ds)}, nil
}

// Lookup implements MatcherServiceServer.
func (s *Server) Lookup(ctx context.Context, req *matcherv1.LookupRequest) (*matcherv1.LookupResponse, error) {
	return s.node.lookupWire(ctx, req)
}

// Scan implements MatcherServiceServer.
func (s *Server) Scan(ctx context.Context, req *matcherv1.ScanRequest) (*matcherv1.ScanResponse, error) {
	return s.node.scanWire(ctx, req)
}

// Lookup is MatcherService.Lookup in process.
func (l *Local) Lookup(ctx context.Context, req *matcherv1.LookupRequest) (resp *matcherv1.LookupResponse, err error) {
	defer l.recover("Lookup", &err)
	return l.node.lookupWire(ctx, req)
}

// Scan is MatcherService.Scan in process.
func (l *Local) Scan(ctx context.Context, req *matcherv1.ScanRequest) (resp *matcherv1.ScanResponse, err error) {
	defer l.recover("Scan", &err)
	return l.node.scanWire(ctx, req)
}

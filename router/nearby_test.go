package router_test

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"github.com/uber/h3-go/v4"

	"github.com/geomatch/geomatch/cluster"
	"github.com/geomatch/geomatch/internal/geo"
	geomatchv1 "github.com/geomatch/geomatch/proto/geomatch/v1"
	"github.com/geomatch/geomatch/shardmap"
)

// makeFleet spreads n drivers over the hotspots, a share of them hugging the
// borders of shard cells (around cell boundary vertices), with a few exact
// duplicates of positions so ties are decided by id.
func makeFleet(r *rand.Rand, n, res int, ts int64) []fleetDriver {
	classes := []string{"standard", "xl", "premium"}
	fleet := make([]fleetDriver, 0, n)
	for i := 0; i < n; i++ {
		h := hotspots[r.IntN(len(hotspots))]
		p := jitter(r, h.center, h.spread)
		switch {
		case i%5 == 0: // hug a shard border: a few meters from a cell vertex
			c := h3.LatLngToCell(h3.LatLng{Lat: p.Lat, Lng: p.Lng}, res)
			b := c.Boundary()
			v := b[r.IntN(len(b))]
			p = jitter(r, geo.LatLng{Lat: v.Lat, Lng: v.Lng}, 20)
		case i%17 == 0 && len(fleet) > 0: // exact tie with an earlier driver
			p = fleet[r.IntN(len(fleet))].pos
		}
		fleet = append(fleet, fleetDriver{id: fmt.Sprintf("d%05d", i), pos: p, class: classes[r.IntN(len(classes))], ts: ts})
	}
	return fleet
}

// assertNearbyExact runs random queries around the hotspots and compares
// each answer with the brute-force oracle over the fleet.
func assertNearbyExact(t *testing.T, c *testCluster, r *rand.Rand, fleet []fleetDriver, queries int) {
	t.Helper()
	if testing.Short() || raceEnabled {
		// The full count runs in make test without the race detector
		// (TestNearbyEqualsBruteForce); here, enough to catch a plumbing
		// mistake quickly.
		queries = max(20, queries/8)
	}
	radii := []float64{50, 300, 1000, 2000, 5000, 20000, 100000}
	limits := []int32{1, 3, 10, 50, 1000}
	for q := 0; q < queries; q++ {
		h := hotspots[r.IntN(len(hotspots))]
		center := jitter(r, h.center, h.spread*1.5)
		radius := radii[r.IntN(len(radii))]
		limit := limits[r.IntN(len(limits))]
		class := ""
		if r.IntN(3) == 0 {
			class = "xl"
		}
		var pts []geo.Point
		for _, d := range fleet {
			if class == "" || d.class == class {
				pts = append(pts, geo.Point{ID: d.id, Pos: d.pos})
			}
		}
		want := geo.NearestBrute(pts, center, radius, int(limit))
		resp, err := c.riders.NearbyDrivers(ctxT(t), &geomatchv1.NearbyDriversRequest{
			Position: &geomatchv1.LatLng{Lat: center.Lat, Lng: center.Lng}, Limit: limit, RadiusM: radius, VehicleClass: class,
		})
		if err != nil {
			t.Fatalf("query %d (%s, %v, r=%v, k=%d): %v", q, h.name, center, radius, limit, err)
		}
		got := resp.GetDrivers()
		if len(got) != len(want) {
			t.Fatalf("query %d (%s, %v, r=%v, k=%d, class %q): %d drivers, brute force has %d", q, h.name, center, radius, limit, class, len(got), len(want))
		}
		for i := range want {
			g := got[i]
			if g.GetDriverId() != want[i].ID || g.GetDistanceM() != want[i].DistanceM {
				t.Fatalf("query %d (%s, %v, r=%v, k=%d): result %d is %s at %v m, brute force says %s at %v m",
					q, h.name, center, radius, limit, i, g.GetDriverId(), g.GetDistanceM(), want[i].ID, want[i].DistanceM)
			}
		}
	}
}

// TestNearbyEqualsBruteForce is the core property: through the router, over
// three matcher nodes, nearest-driver answers equal a brute-force haversine
// search (ids, order, distances), across shard and node borders, at the
// poles and across the antimeridian; also after drivers move, some of them
// onto other nodes.
func TestNearbyEqualsBruteForce(t *testing.T) {
	for _, tc := range []struct {
		name string
		doc  shardmap.Doc
		grpc bool // the router calls the matchers over loopback gRPC
	}{
		{"res7", shardmap.Doc{ShardRes: 7, MaxSplitDepth: 2}, false},
		{"res7-internal-grpc", shardmap.Doc{ShardRes: 7, MaxSplitDepth: 2}, true},
		{"res5-many-nodes-per-query", shardmap.Doc{ShardRes: 5, MaxSplitDepth: 1}, false},
		{"res8-tiny-shards", shardmap.Doc{ShardRes: 8, MaxSplitDepth: 1}, false},
		{"res7-with-split-cells", shardmap.Doc{ShardRes: 7, MaxSplitDepth: 2, Splits: splitCells()}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := startCluster(t, cluster.DevConfig{Matchers: 3, Doc: tc.doc, InternalGRPC: tc.grpc})
			r := rand.New(rand.NewPCG(uint64(tc.doc.ShardRes), 99))
			now := time.Now().UnixMilli() - 60_000
			fleet := makeFleet(r, 4000, tc.doc.ShardRes, now)
			c.upload(t, fleet)
			c.waitSettled(t, fleet)
			assertNearbyExact(t, c, r, fleet, 300)

			// Move a third of the fleet, many across shard and node borders.
			moved := slices.Clone(fleet)
			for i := range moved {
				if i%3 == 0 {
					moved[i].pos = jitter(r, moved[i].pos, 3000)
					moved[i].ts = now + 1000
				}
			}
			c.upload(t, moved)
			c.waitSettled(t, moved)
			assertNearbyExact(t, c, r, moved, 300)
		})
	}
}

// splitCells splits the Manhattan hotspot's cell and one of its children,
// and the cell at the north pole, so shards of three resolutions meet.
func splitCells() []h3.Cell {
	m := h3.LatLngToCell(h3.LatLng{Lat: 40.7580, Lng: -73.9855}, 7)
	child := h3.LatLngToCell(h3.LatLng{Lat: 40.7580, Lng: -73.9855}, 8)
	if child.Parent(7) != m {
		child = m.Children(8)[0]
	}
	pole := h3.LatLngToCell(h3.LatLng{Lat: 90, Lng: 0}, 7)
	return []h3.Cell{m, child, pole}
}

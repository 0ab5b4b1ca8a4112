package router_test

import (
	"math/rand/v2"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/uber/h3-go/v4"

	"github.com/geomatch/geomatch/cluster"
	"github.com/geomatch/geomatch/internal/geo"
	"github.com/geomatch/geomatch/matcher"
	matcherv1 "github.com/geomatch/geomatch/proto/geomatch/matcher/v1"
	geomatchv1 "github.com/geomatch/geomatch/proto/geomatch/v1"
	"github.com/geomatch/geomatch/shardmap"
)

// TestHandoffKeepsEveryDriver moves shards around a loaded cluster (drain,
// split, pin, merge and undrain) without a single new location report:
// every answer right after each change must still equal brute force over
// the whole fleet, so the new owners must have fetched the drivers from the
// old ones before serving.
func TestHandoffKeepsEveryDriver(t *testing.T) {
	c := startCluster(t, cluster.DevConfig{Matchers: 3, Doc: shardmap.Doc{ShardRes: 7, MaxSplitDepth: 2}})
	r := rand.New(rand.NewPCG(5, 55))
	fleet := makeFleet(r, 3000, 7, time.Now().UnixMilli()-60_000)
	c.upload(t, fleet)
	c.waitSettled(t, fleet)

	hot := splitCells()
	pinned := h3.LatLngToCell(h3.LatLng{Lat: 51.5072, Lng: -0.1276}, 7) // London's shard
	steps := []struct {
		name   string
		change func(d *shardmap.Doc) error
	}{
		{"drain m1", func(d *shardmap.Doc) error { d.Drained = []string{"m1"}; return nil }},
		{"split hot cells", func(d *shardmap.Doc) error { d.Splits = hot; return nil }},
		{"pin a shard", func(d *shardmap.Doc) error { d.Pins = map[h3.Cell]string{pinned: "m2"}; return nil }},
		{"merge and undrain", func(d *shardmap.Doc) error { d.Splits, d.Drained, d.Pins = nil, nil, nil; return nil }},
	}
	for _, st := range steps {
		if _, err := c.Membership.Update(st.change); err != nil {
			t.Fatalf("%s: %v", st.name, err)
		}
		assertNearbyExact(t, c, r, fleet, 150)
		c.waitSettled(t, fleet)
		if st.name == "drain m1" {
			if n := c.Nodes[0].Index().Len(); c.Nodes[0].ID() != "m1" || n != 0 {
				t.Fatalf("drained m1 still holds %d drivers", n)
			}
		}
	}
}

// TestHandoffUnderUpdates keeps drivers moving while the ring changes:
// updates that reach a new owner during its warm-up must win over the older
// positions the old owner hands over, and none may be lost.
func TestHandoffUnderUpdates(t *testing.T) {
	c := startCluster(t, cluster.DevConfig{Matchers: 3, Doc: shardmap.Doc{ShardRes: 7, MaxSplitDepth: 2}})
	r := rand.New(rand.NewPCG(6, 66))
	now := time.Now().UnixMilli() - 600_000
	fleet := makeFleet(r, 2000, 7, now)
	c.upload(t, fleet)

	// A writer moves every driver a little, round after round, while the
	// ring changes under it. Each round's request runs to completion (a
	// request cancelled halfway would leave the test unsure of what was
	// applied); stop ends the loop between rounds.
	var stop atomic.Bool
	var wg sync.WaitGroup
	final := slices.Clone(fleet)
	wg.Add(1)
	go func() {
		defer wg.Done()
		wr := rand.New(rand.NewPCG(7, 77))
		for round := int64(1); round <= 400 && !stop.Load(); round++ {
			next := slices.Clone(final)
			req := &geomatchv1.UpdateLocationsRequest{}
			for i := range next {
				if i%4 == int(round%4) {
					next[i].pos = jitter(wr, next[i].pos, 400)
					next[i].ts = now + round
					d := next[i]
					req.Updates = append(req.Updates, &geomatchv1.LocationUpdate{DriverId: d.id,
						Position: &geomatchv1.LatLng{Lat: d.pos.Lat, Lng: d.pos.Lng}, TimestampMs: d.ts, VehicleClass: d.class})
				}
			}
			resp, err := c.drivers.UpdateLocations(ctxT(t), req)
			if err != nil {
				t.Errorf("round %d: UpdateLocations: %v", round, err)
				return
			}
			if int(resp.GetAccepted()) != len(req.Updates) {
				t.Errorf("round %d: %d of %d accepted: %v", round, resp.GetAccepted(), len(req.Updates), resp.GetRejected()[0])
				return
			}
			final = next
		}
	}()
	for i, change := range []func(d *shardmap.Doc) error{
		func(d *shardmap.Doc) error { d.Drained = []string{"m1"}; return nil },
		func(d *shardmap.Doc) error { d.Drained = []string{"m3"}; return nil },
		func(d *shardmap.Doc) error { d.Splits = splitCells(); return nil },
		func(d *shardmap.Doc) error { d.Drained, d.Splits = nil, nil; return nil },
	} {
		time.Sleep(150 * time.Millisecond)
		if _, err := c.Membership.Update(change); err != nil {
			t.Fatalf("change %d: %v", i, err)
		}
	}
	time.Sleep(150 * time.Millisecond)
	stop.Store(true)
	wg.Wait()
	if t.Failed() {
		return
	}
	c.waitSettled(t, final)
	assertNearbyExact(t, c, r, final, 200)
}

// TestHandoffDropsCopiesStaleOnArrival hands over a snapshot copy of a
// driver that has meanwhile crossed to another node, before the eviction
// that says so could reach the snapshot's holder (the newer update is
// applied at a matcher directly, so no eviction is sent at all). Whether
// the node that takes the old copy had the newer position itself and gave
// its shard up in the same ring change, or a third node holds the newer
// position, the old copy must not survive the handoff: one node holds the
// driver, at its newer position, and a search at the old one finds nothing.
func TestHandoffDropsCopiesStaleOnArrival(t *testing.T) {
	for _, tc := range []struct {
		name string
		// newer is the node (index into Nodes) that receives the newer
		// update; the old copy moves from node 2 to node 1.
		newer int
	}{
		{"the taker gave up the newer position", 1},
		{"a third node holds the newer position", 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := startCluster(t, cluster.DevConfig{Matchers: 3, Doc: shardmap.Doc{ShardRes: 7}})
			layout := func() *shardmap.Layout { m, _ := c.Membership.Current(); return m.Layout() }
			oldPos := geo.LatLng{Lat: 40.7580, Lng: -73.9855}
			newPos := geo.LatLng{Lat: 40.6782, Lng: -73.9442}
			oldShard, newShard := layout().ShardOf(oldPos), layout().ShardOf(newPos)
			if oldShard == newShard {
				t.Fatal("test points share a shard")
			}
			ids := []string{c.Nodes[0].ID(), c.Nodes[1].ID(), c.Nodes[2].ID()}
			pin := func(old, newer string) {
				t.Helper()
				if _, err := c.Membership.Update(func(d *shardmap.Doc) error {
					d.Pins = map[h3.Cell]string{oldShard: old, newShard: newer}
					return nil
				}); err != nil {
					t.Fatalf("pin shards: %v", err)
				}
			}
			pin(ids[2], ids[tc.newer])

			// The old position through the router, held by node 2.
			resp, err := c.drivers.UpdateLocations(ctxT(t), &geomatchv1.UpdateLocationsRequest{Updates: []*geomatchv1.LocationUpdate{
				{DriverId: "d", Position: &geomatchv1.LatLng{Lat: oldPos.Lat, Lng: oldPos.Lng}, TimestampMs: 100},
			}})
			if err != nil || resp.GetAccepted() != 1 {
				t.Fatalf("old position: %v, %v", resp, err)
			}
			// The newer one straight to its owner: no eviction reaches node 2.
			m, _ := c.Membership.Current()
			ar, err := matcher.NewLocal(c.Nodes[tc.newer]).Applier()(ctxT(t), &matcherv1.ApplyRequest{Seq: 1, Epoch: m.Epoch(),
				Updates: []*matcherv1.Update{{DriverId: "d", Lat: newPos.Lat, Lng: newPos.Lng, TimestampMs: 200,
					FineCell: uint64(m.Layout().FineCell(newPos))}}})
			if err != nil || len(ar.GetExceptions()) > 0 {
				t.Fatalf("newer position: %v, %v", ar, err)
			}
			// Node 2 gives the old shard (and its snapshot of the old
			// copy) to node 1; the newer position's shard moves to node 2
			// when node 1 held it.
			newOwner := ids[tc.newer]
			if tc.newer == 1 {
				newOwner = ids[2]
			}
			pin(ids[1], newOwner)

			// A search over the old shard waits for its warm-up.
			near, err := c.riders.NearbyDrivers(ctxT(t), &geomatchv1.NearbyDriversRequest{
				Position: &geomatchv1.LatLng{Lat: oldPos.Lat, Lng: oldPos.Lng}, Limit: 10, RadiusM: 1000})
			if err != nil {
				t.Fatalf("NearbyDrivers at the old position: %v", err)
			}
			if len(near.GetDrivers()) != 0 {
				t.Errorf("search at the old position found %v", near.GetDrivers())
			}
			c.waitSettled(t, []fleetDriver{{id: "d", pos: newPos, ts: 200}})
			for _, n := range c.Nodes {
				if d, ok := n.Index().Get("d"); ok && d.TimestampMs != 200 {
					t.Errorf("%s holds the driver at ts %d, want 200", n.ID(), d.TimestampMs)
				}
			}
		})
	}
}

package cluster_test

import (
	"context"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"os"
	"strconv"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/geomatch/geomatch/cluster"
	"github.com/geomatch/geomatch/fence/fencetest"
	"github.com/geomatch/geomatch/internal/geo"
	geomatchv1 "github.com/geomatch/geomatch/proto/geomatch/v1"
)

// TestFenceEventsMatchABruteForceOracle: drivers random-walk over fences
// that span shards of three matchers while one matcher is drained and
// undrained (its shards move away and back); the events a subscriber
// receives equal, event for event, the transitions a brute-force model
// computes from each driver's consecutive positions, and GetFenceCounts
// equals a brute-force recount.
func TestFenceEventsMatchABruteForceOracle(t *testing.T) {
	c, err := cluster.StartDev(cluster.DevConfig{Matchers: 3, Log: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Stop()
	budget := 90 * time.Second
	if os.Getenv("GEOMATCH_FENCE_REPLAY") != "" {
		budget = 20 * time.Minute
	}
	ctx, cancel := context.WithTimeout(context.Background(), budget)
	defer cancel()
	conn, err := grpc.NewClient(c.RouterAddr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	fences := geomatchv1.NewFenceServiceClient(conn)
	defs := append(fencetest.Fences(), fencetest.AntimeridianFences()...)
	for _, d := range defs {
		if _, err := fences.PutFence(ctx, &geomatchv1.PutFenceRequest{Fence: d}); err != nil {
			t.Fatalf("PutFence %s: %v", d.GetFenceId(), err)
		}
	}
	sub, err := geomatchv1.NewEventServiceClient(conn).Subscribe(ctx, &geomatchv1.SubscribeRequest{Kinds: []geomatchv1.EventKind{geomatchv1.EventKind_EVENT_KIND_FENCE}})
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	got := map[fencetest.Fact]int{}
	received := 0
	go func() {
		for {
			ev, err := sub.Recv()
			if err != nil {
				return
			}
			mu.Lock()
			got[fencetest.FactOf(ev.GetFence())]++
			received++
			mu.Unlock()
		}
	}()
	lifeSub, err := geomatchv1.NewEventServiceClient(conn).Subscribe(ctx, &geomatchv1.SubscribeRequest{Kinds: []geomatchv1.EventKind{geomatchv1.EventKind_EVENT_KIND_DRIVER}})
	if err != nil {
		t.Fatal(err)
	}
	online := map[string]int{}
	go func() {
		for {
			ev, err := lifeSub.Recv()
			if err != nil {
				return
			}
			if d := ev.GetDriver(); d.GetLifecycle() == geomatchv1.DriverLifecycle_DRIVER_LIFECYCLE_ONLINE {
				mu.Lock()
				online[d.GetDriverId()]++
				mu.Unlock()
			}
		}
	}()
	time.Sleep(200 * time.Millisecond) // the subscriptions start at the log's head

	o, err := fencetest.New(defs)
	if err != nil {
		t.Fatal(err)
	}
	drivers := geomatchv1.NewDriverServiceClient(conn)
	admin := geomatchv1.NewAdminServiceClient(conn)
	r := rand.New(rand.NewPCG(14, 1))
	nDrivers, steps := 150, 40
	if n := os.Getenv("GEOMATCH_FENCE_REPLAY"); n != "" {
		// A long replay (make a report, not CI): GEOMATCH_FENCE_REPLAY=1000000
		// is 10,000 drivers × 100 steps.
		total, err := strconv.Atoi(n)
		if err != nil || total < 100 {
			t.Fatalf("GEOMATCH_FENCE_REPLAY=%q: want a number of updates >= 100", n)
		}
		nDrivers, steps = max(total/100, 1), 100
	}
	pos := make([]geo.LatLng, nDrivers)
	pacific := func(i int) bool { return i%5 == 4 } // a fifth walk across the antimeridian
	for i := range pos {
		pos[i] = geo.LatLng{Lat: 40.69 + r.Float64()*0.11, Lng: -74.03 + r.Float64()*0.11}
		if pacific(i) {
			pos[i] = geo.LatLng{Lat: -17.1 + r.Float64()*0.2, Lng: 179.9 + r.Float64()*0.2}
			if pos[i].Lng > 180 {
				pos[i].Lng -= 360
			}
		}
	}
	base := time.Now().UnixMilli()
	for step := range steps {
		switch step {
		case steps / 3:
			if _, err := admin.DrainNode(ctx, &geomatchv1.DrainNodeRequest{NodeId: "m2"}); err != nil {
				t.Fatalf("drain m2: %v", err)
			}
		case 2 * steps / 3:
			if _, err := admin.UndrainNode(ctx, &geomatchv1.UndrainNodeRequest{NodeId: "m2"}); err != nil {
				t.Fatalf("undrain m2: %v", err)
			}
		}
		req := &geomatchv1.UpdateLocationsRequest{}
		ts := base + int64(step)*1000
		for i := range pos {
			if pacific(i) {
				pos[i] = fencetest.WalkAntimeridian(pos[i], 50+r.Float64()*1500, r.Float64(), r.Float64())
			} else {
				pos[i] = fencetest.Walk(pos[i], 50+r.Float64()*700, r.Float64(), r.Float64())
			}
			id, class := fmt.Sprintf("d%03d", i), ""
			if i%4 == 0 {
				class = "xl"
			}
			req.Updates = append(req.Updates, &geomatchv1.LocationUpdate{
				DriverId: id, Position: &geomatchv1.LatLng{Lat: pos[i].Lat, Lng: pos[i].Lng}, TimestampMs: ts, VehicleClass: class})
			o.Observe(id, class, pos[i], ts)
		}
		resp, err := drivers.UpdateLocations(ctx, req)
		if err != nil {
			t.Fatalf("step %d: %v", step, err)
		}
		if len(resp.GetRejected()) > 0 {
			t.Fatalf("step %d: rejected %v", step, resp.GetRejected())
		}
	}
	want := len(o.Facts)
	if want < 200 {
		t.Fatalf("only %d expected events: the walk does not exercise the fences", want)
	}
	deadline := time.Now().Add(budget / 4)
	for {
		mu.Lock()
		n := received
		mu.Unlock()
		if n >= want || time.Now().After(deadline) {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	time.Sleep(300 * time.Millisecond) // extra events, if any, arrive too
	mu.Lock()
	diff := o.Diff(got)
	for i := range nDrivers {
		if id := fmt.Sprintf("d%03d", i); online[id] != 1 {
			t.Errorf("driver %s went online %d times, want once (it crossed nodes and shards, and a node was drained)", id, online[id])
			break
		}
	}
	mu.Unlock()
	t.Logf("%d events expected, %d received", want, received)
	if diff != "" {
		t.Error(diff)
	}
	ids := make([]string, len(defs))
	for i, d := range defs {
		ids[i] = d.GetFenceId()
	}
	counts, err := fences.GetFenceCounts(ctx, &geomatchv1.GetFenceCountsRequest{FenceIds: ids})
	if err != nil {
		t.Fatal(err)
	}
	for i, fc := range counts.GetCounts() {
		if want := o.Count(o.Fences[i]); fc.GetInside() != want {
			t.Errorf("fence %s: GetFenceCounts inside = %d, brute force %d", fc.GetFenceId(), fc.GetInside(), want)
			for _, n := range c.Nodes {
				for _, st := range n.Index().Shards() {
					for _, d := range n.Index().ShardDrivers(st.Shard) {
						if o.Fences[i].Shape.Contains(d.Pos) {
							t.Logf("inside, held by %s in shard %v: %s at %d (handed over %v, node owns its shard %v)", n.ID(), st.Shard, d.ID, d.TimestampMs, d.HandedOver, n.Owns(d.Pos))
						}
					}
				}
			}
		}
	}
}

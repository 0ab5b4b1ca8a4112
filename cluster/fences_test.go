package cluster_test

import (
	"context"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"slices"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/geomatch/geomatch/cluster"
	"github.com/geomatch/geomatch/fence"
	"github.com/geomatch/geomatch/fence/fencev1"
	"github.com/geomatch/geomatch/internal/geo"
	geomatchv1 "github.com/geomatch/geomatch/proto/geomatch/v1"
)

// testFences are fences over Midtown and Brooklyn that span several
// shards of several matchers: a polygon with a hole, a multipolygon, a
// triangle, circles, one fence reporting inside too and one for one
// vehicle class.
func testFences() []*geomatchv1.Fence {
	poly := func(id, gj string, detect ...geomatchv1.FenceDetect) *geomatchv1.Fence {
		return &geomatchv1.Fence{FenceId: id, Set: "zones", Shape: &geomatchv1.Fence_Geojson{Geojson: gj}, Detect: detect}
	}
	circle := func(id string, lat, lng, r float64, class string) *geomatchv1.Fence {
		return &geomatchv1.Fence{FenceId: id, Set: "circles", VehicleClass: class,
			Shape: &geomatchv1.Fence_Circle{Circle: &geomatchv1.Circle{Center: &geomatchv1.LatLng{Lat: lat, Lng: lng}, RadiusM: r}}}
	}
	return []*geomatchv1.Fence{
		poly("midtown", `{"type":"Polygon","coordinates":[[[-74.00,40.74],[-73.96,40.74],[-73.96,40.77],[-74.00,40.77],[-74.00,40.74]],[[-73.985,40.75],[-73.975,40.75],[-73.975,40.76],[-73.985,40.76],[-73.985,40.75]]]}`),
		poly("two-parks", `{"type":"MultiPolygon","coordinates":[[[[-73.99,40.70],[-73.97,40.70],[-73.97,40.72],[-73.99,40.72],[-73.99,40.70]]],[[[-73.95,40.76],[-73.93,40.76],[-73.93,40.78],[-73.95,40.78],[-73.95,40.76]]]]}`,
			geomatchv1.FenceDetect_FENCE_DETECT_ENTER, geomatchv1.FenceDetect_FENCE_DETECT_EXIT, geomatchv1.FenceDetect_FENCE_DETECT_INSIDE),
		poly("triangle", `{"type":"Polygon","coordinates":[[[-74.02,40.70],[-73.94,40.73],[-74.01,40.79],[-74.02,40.70]]]}`),
		circle("airport-queue", 40.755, -73.985, 900, ""),
		circle("stadium", 40.72, -73.96, 1500, ""),
		circle("xl-lot", 40.74, -73.99, 1200, "xl"),
	}
}

type factKey struct {
	driver, fence string
	detect        geomatchv1.FenceDetect
	ts            int64
}

// oracle is the brute-force model: every fence tested at every position
// of every driver, transitions from each consecutive pair.
type oracle struct {
	fences []*fence.Fence
	last   map[string]geo.LatLng
	class  map[string]string
	facts  map[factKey]bool
}

func newOracle(t *testing.T, defs []*geomatchv1.Fence) *oracle {
	o := &oracle{last: map[string]geo.LatLng{}, class: map[string]string{}, facts: map[factKey]bool{}}
	for _, d := range defs {
		f, err := fencev1.Decode(d)
		if err != nil {
			t.Fatalf("fence %s: %v", d.GetFenceId(), err)
		}
		o.fences = append(o.fences, f)
	}
	return o
}

// observe records the transitions of driver id moving to p at ts,
// excluding crossings (not reported for a driver's first update on a node).
func (o *oracle) observe(id, class string, p geo.LatLng, ts int64) {
	prev, had := o.last[id]
	for _, f := range o.fences {
		if f.VehicleClass != "" && f.VehicleClass != class {
			continue
		}
		in := f.Shape.Contains(p)
		was := had && f.Shape.Contains(prev)
		var t fence.Transition
		switch {
		case was && in:
			t = fence.Inside
		case was:
			t = fence.Exit
		case in:
			t = fence.Enter
		default:
			continue
		}
		if f.Detect.Has(t) {
			o.facts[factKey{id, f.ID, fencev1.DetectOfTransition(t), ts}] = true
		}
	}
	o.last[id], o.class[id] = p, class
}

// count is the brute-force count of drivers inside fence f now.
func (o *oracle) count(f *fence.Fence) int64 {
	var n int64
	for id, p := range o.last {
		if (f.VehicleClass == "" || f.VehicleClass == o.class[id]) && f.Shape.Contains(p) {
			n++
		}
	}
	return n
}

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
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	conn, err := grpc.NewClient(c.RouterAddr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	fences := geomatchv1.NewFenceServiceClient(conn)
	defs := testFences()
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
	got := map[factKey]int{}
	received := 0
	go func() {
		for {
			ev, err := sub.Recv()
			if err != nil {
				return
			}
			fe := ev.GetFence()
			mu.Lock()
			got[factKey{fe.GetDriverId(), fe.GetFenceId(), fe.GetDetect(), fe.GetTimestampMs()}]++
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

	o := newOracle(t, defs)
	drivers := geomatchv1.NewDriverServiceClient(conn)
	admin := geomatchv1.NewAdminServiceClient(conn)
	r := rand.New(rand.NewPCG(14, 1))
	const nDrivers, steps = 150, 40
	pos := make([]geo.LatLng, nDrivers)
	for i := range pos {
		pos[i] = geo.LatLng{Lat: 40.69 + r.Float64()*0.11, Lng: -74.03 + r.Float64()*0.11}
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
			d := 50 + r.Float64()*700
			pos[i] = geo.LatLng{
				Lat: min(max(pos[i].Lat+(r.Float64()-0.5)*d/55_000, 40.68), 40.81),
				Lng: min(max(pos[i].Lng+(r.Float64()-0.5)*d/42_000, -74.04), -73.91),
			}
			id, class := fmt.Sprintf("d%03d", i), ""
			if i%4 == 0 {
				class = "xl"
			}
			req.Updates = append(req.Updates, &geomatchv1.LocationUpdate{
				DriverId: id, Position: &geomatchv1.LatLng{Lat: pos[i].Lat, Lng: pos[i].Lng}, TimestampMs: ts, VehicleClass: class})
			o.observe(id, class, pos[i], ts)
		}
		resp, err := drivers.UpdateLocations(ctx, req)
		if err != nil {
			t.Fatalf("step %d: %v", step, err)
		}
		if len(resp.GetRejected()) > 0 {
			t.Fatalf("step %d: rejected %v", step, resp.GetRejected())
		}
	}
	want := len(o.facts)
	if want < 200 {
		t.Fatalf("only %d expected events: the walk does not exercise the fences", want)
	}
	deadline := time.Now().Add(20 * time.Second)
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
	var missing, extra, dup []factKey
	for k := range o.facts {
		if got[k] == 0 {
			missing = append(missing, k)
		}
	}
	for k, n := range got {
		if !o.facts[k] {
			extra = append(extra, k)
		}
		if n > 1 {
			dup = append(dup, k)
		}
	}
	for i := range nDrivers {
		if id := fmt.Sprintf("d%03d", i); online[id] != 1 {
			t.Errorf("driver %s went online %d times, want once (it crossed nodes and shards, and a node was drained)", id, online[id])
			break
		}
	}
	mu.Unlock()
	t.Logf("%d events expected, %d received", want, received)
	if len(missing)+len(extra)+len(dup) > 0 {
		t.Errorf("%d missing, %d extra, %d duplicated; first missing %v, extra %v, dup %v",
			len(missing), len(extra), len(dup), first(missing), first(extra), first(dup))
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
		if want := o.count(o.fences[i]); fc.GetInside() != want {
			t.Errorf("fence %s: GetFenceCounts inside = %d, brute force %d", fc.GetFenceId(), fc.GetInside(), want)
		}
	}
}

func first(keys []factKey) any {
	slices.SortFunc(keys, func(a, b factKey) int {
		if a.ts != b.ts {
			return int(a.ts - b.ts)
		}
		if a.driver != b.driver {
			return map[bool]int{true: -1, false: 1}[a.driver < b.driver]
		}
		return map[bool]int{true: -1, false: 1}[a.fence < b.fence]
	})
	if len(keys) > 3 {
		return keys[:3]
	}
	return keys
}

package router_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	"github.com/geomatch/geomatch/cluster"
	"github.com/geomatch/geomatch/events"
	geomatchv1 "github.com/geomatch/geomatch/proto/geomatch/v1"
	"github.com/geomatch/geomatch/store"
)

func fenceClients(t *testing.T, c *testCluster) (geomatchv1.FenceServiceClient, geomatchv1.EventServiceClient) {
	t.Helper()
	conn, err := grpc.NewClient(c.RouterAddr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return geomatchv1.NewFenceServiceClient(conn), geomatchv1.NewEventServiceClient(conn)
}

func circleFence(id string, r float64) *geomatchv1.Fence {
	return &geomatchv1.Fence{FenceId: id, Shape: &geomatchv1.Fence_Circle{Circle: &geomatchv1.Circle{
		Center: &geomatchv1.LatLng{Lat: 40.75, Lng: -73.98}, RadiusM: r}}}
}

func polygonFence(id, gj string) *geomatchv1.Fence {
	return &geomatchv1.Fence{FenceId: id, Shape: &geomatchv1.Fence_Geojson{Geojson: gj}}
}

// TestFenceBadInputIsInvalidArgument: every malformed definition, listing
// or filter is INVALID_ARGUMENT naming its field, and changes nothing.
func TestFenceBadInputIsInvalidArgument(t *testing.T) {
	c := startCluster(t, cluster.DevConfig{Matchers: 2})
	fences, evs := fenceClients(t, c)
	ctx := ctxT(t)
	bad := []struct {
		name  string
		fence *geomatchv1.Fence
		field string
	}{
		{"no fence", nil, "fence"},
		{"no id", circleFence("", 100), "fence.fence_id"},
		{"bad id", circleFence("a b", 100), "fence.fence_id"},
		{"bad set", func() *geomatchv1.Fence { f := circleFence("x", 100); f.Set = "a,b"; return f }(), "fence.set"},
		{"no shape", &geomatchv1.Fence{FenceId: "x"}, "fence.shape"},
		{"zero radius", circleFence("x", 0), "fence.circle.radius_m"},
		{"negative radius", circleFence("x", -5), "fence.circle.radius_m"},
		{"NaN center", &geomatchv1.Fence{FenceId: "x", Shape: &geomatchv1.Fence_Circle{Circle: &geomatchv1.Circle{Center: &geomatchv1.LatLng{Lat: nan(), Lng: 0}, RadiusM: 10}}}, "fence.circle.center"},
		{"not json", polygonFence("x", "{"), "fence.geojson"},
		{"empty polygon", polygonFence("x", `{"type":"Polygon","coordinates":[]}`), "fence.geojson"},
		{"open ring", polygonFence("x", `{"type":"Polygon","coordinates":[[[0,0],[1,0],[1,1],[0,1]]]}`), "fence.geojson"},
		{"three points", polygonFence("x", `{"type":"Polygon","coordinates":[[[0,0],[1,0],[0,0]]]}`), "fence.geojson"},
		{"self-intersecting", polygonFence("x", `{"type":"Polygon","coordinates":[[[0,0],[1,1],[1,0],[0,1],[0,0]]]}`), "fence.geojson"},
		{"a point", polygonFence("x", `{"type":"Point","coordinates":[0,0]}`), "fence.geojson"},
		{"unknown detect", func() *geomatchv1.Fence {
			f := circleFence("x", 100)
			f.Detect = []geomatchv1.FenceDetect{42}
			return f
		}(), "fence.detect"},
	}
	for _, tt := range bad {
		_, err := fences.PutFence(ctx, &geomatchv1.PutFenceRequest{Fence: tt.fence})
		if status.Code(err) != codes.InvalidArgument || !strings.HasPrefix(status.Convert(err).Message(), tt.field+":") {
			t.Errorf("%s: %v, want INVALID_ARGUMENT naming %s", tt.name, err, tt.field)
		}
	}
	if got, err := fences.ListFences(ctx, &geomatchv1.ListFencesRequest{}); err != nil || len(got.GetFences()) != 0 {
		t.Fatalf("after bad puts: %v, %v; want no fence", got, err)
	}
	for name, call := range map[string]func() error{
		"page_size": func() error {
			_, err := fences.ListFences(ctx, &geomatchv1.ListFencesRequest{PageSize: 5000})
			return err
		},
		"page_token": func() error {
			_, err := fences.ListFences(ctx, &geomatchv1.ListFencesRequest{PageToken: "!!"})
			return err
		},
		"fence_id": func() error { _, err := fences.GetFence(ctx, &geomatchv1.GetFenceRequest{}); return err },
		"set":      func() error { _, err := fences.GetFenceCounts(ctx, &geomatchv1.GetFenceCountsRequest{}); return err },
		"fence_ids[0]": func() error {
			_, err := fences.GetFenceCounts(ctx, &geomatchv1.GetFenceCountsRequest{FenceIds: []string{""}})
			return err
		},
		"endpoint": func() error {
			_, err := evs.PutHook(ctx, &geomatchv1.Hook{HookId: "h", Endpoint: "ftp://x"})
			return err
		},
		"sets[0]": func() error {
			_, err := evs.PutHook(ctx, &geomatchv1.Hook{HookId: "h", Endpoint: "http://127.0.0.1:1/", Sets: []string{"a b"}})
			return err
		},
	} {
		if err := call(); status.Code(err) != codes.InvalidArgument || !strings.HasPrefix(status.Convert(err).Message(), name+":") {
			t.Errorf("%s: %v, want INVALID_ARGUMENT naming it", name, err)
		}
	}
	for _, cursor := range []string{"garbage", "c1", "c1AAAA"} {
		stream, err := evs.Subscribe(ctx, &geomatchv1.SubscribeRequest{AfterCursor: cursor})
		if err == nil {
			_, err = stream.Recv()
		}
		if status.Code(err) != codes.InvalidArgument || !strings.HasPrefix(status.Convert(err).Message(), "after_cursor:") {
			t.Errorf("cursor %q: %v, want INVALID_ARGUMENT naming after_cursor", cursor, err)
		}
	}
	if _, err := fences.GetFence(ctx, &geomatchv1.GetFenceRequest{FenceId: "nope"}); status.Code(err) != codes.NotFound {
		t.Errorf("GetFence of an unknown fence: %v, want NOT_FOUND", err)
	}
	if _, err := fences.DeleteFence(ctx, &geomatchv1.DeleteFenceRequest{FenceId: "nope"}); status.Code(err) != codes.NotFound {
		t.Errorf("DeleteFence of an unknown fence: %v, want NOT_FOUND", err)
	}
}

// TestFenceCRUDAndPaging: put replaces by id, get returns what was put
// (set defaulted, time stamped), list pages in id order within a set,
// delete removes, and a put returns only once every matcher holds the
// fence.
func TestFenceCRUDAndPaging(t *testing.T) {
	c := startCluster(t, cluster.DevConfig{Matchers: 3})
	fences, _ := fenceClients(t, c)
	ctx := ctxT(t)
	for i := range 25 {
		f := circleFence(fmt.Sprintf("f%02d", i), float64(100+i))
		if i%2 == 1 {
			f.Set = "odd"
		}
		if _, err := fences.PutFence(ctx, &geomatchv1.PutFenceRequest{Fence: f}); err != nil {
			t.Fatal(err)
		}
		for _, m := range c.Matchers {
			if _, n, err := m.Node.SyncFences(ctx, 0); err != nil || n != i+1 {
				t.Fatalf("after PutFence %d matcher %s holds %d fences (%v)", i, m.Node.ID(), n, err)
			}
		}
	}
	got, err := fences.GetFence(ctx, &geomatchv1.GetFenceRequest{FenceId: "f02"})
	if err != nil || got.GetSet() != "default" || got.GetUpdatedAtMs() == 0 || got.GetCircle().GetRadiusM() != 102 {
		t.Fatalf("GetFence(f02) = %v, %v", got, err)
	}
	replaced := circleFence("f02", 999)
	replaced.Labels = map[string]string{"kind": "airport"}
	if _, err := fences.PutFence(ctx, &geomatchv1.PutFenceRequest{Fence: replaced}); err != nil {
		t.Fatal(err)
	}
	got, _ = fences.GetFence(ctx, &geomatchv1.GetFenceRequest{FenceId: "f02"})
	if got.GetCircle().GetRadiusM() != 999 || got.GetLabels()["kind"] != "airport" {
		t.Fatalf("after replace: %v", got)
	}
	var ids []string
	tok := ""
	for range 10 {
		page, err := fences.ListFences(ctx, &geomatchv1.ListFencesRequest{Set: "odd", PageSize: 5, PageToken: tok})
		if err != nil {
			t.Fatal(err)
		}
		for _, f := range page.GetFences() {
			ids = append(ids, f.GetFenceId())
		}
		if tok = page.GetNextPageToken(); tok == "" {
			break
		}
	}
	if len(ids) != 12 || ids[0] != "f01" || ids[11] != "f23" {
		t.Fatalf("set odd listed as %v", ids)
	}
	if _, err := fences.DeleteFence(ctx, &geomatchv1.DeleteFenceRequest{FenceId: "f01"}); err != nil {
		t.Fatal(err)
	}
	if _, err := fences.GetFence(ctx, &geomatchv1.GetFenceRequest{FenceId: "f01"}); status.Code(err) != codes.NotFound {
		t.Fatalf("deleted fence: %v", err)
	}
	counts, err := fences.GetFenceCounts(ctx, &geomatchv1.GetFenceCountsRequest{Set: "odd"})
	if err != nil || len(counts.GetCounts()) != 11 {
		t.Fatalf("counts of set odd: %v, %v", counts, err)
	}
}

// TestSubscribeResumesAfterItsCursor: a subscriber that stops and comes
// back with the cursor of the last event it saw gets exactly the events
// after it, and a trip's steps arrive as trip events.
func TestSubscribeResumesAfterItsCursor(t *testing.T) {
	c := startCluster(t, cluster.DevConfig{Matchers: 2})
	fences, evs := fenceClients(t, c)
	ctx := ctxT(t)
	if _, err := fences.PutFence(ctx, &geomatchv1.PutFenceRequest{Fence: circleFence("zone", 500)}); err != nil {
		t.Fatal(err)
	}
	move := func(ts int64, inside bool) {
		lat := 40.75
		if !inside {
			lat = 40.80
		}
		if _, err := c.drivers.UpdateLocations(ctx, &geomatchv1.UpdateLocationsRequest{Updates: []*geomatchv1.LocationUpdate{
			{DriverId: "d1", Position: &geomatchv1.LatLng{Lat: lat, Lng: -73.98}, TimestampMs: ts}}}); err != nil {
			t.Fatal(err)
		}
	}
	now := time.Now().UnixMilli()
	for i := range 10 {
		move(now+int64(i), i%2 == 0) // enter, exit, enter, ...
	}
	read := func(req *geomatchv1.SubscribeRequest, n int) []*geomatchv1.Event {
		ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		defer cancel()
		stream, err := evs.Subscribe(ctx, req)
		if err != nil {
			t.Fatal(err)
		}
		var out []*geomatchv1.Event
		for len(out) < n {
			ev, err := stream.Recv()
			if err != nil {
				t.Fatalf("after %d events: %v", len(out), err)
			}
			out = append(out, ev)
		}
		return out
	}
	all := read(&geomatchv1.SubscribeRequest{FromOldest: true, Kinds: []geomatchv1.EventKind{geomatchv1.EventKind_EVENT_KIND_FENCE}}, 10)
	for i, ev := range all {
		want := geomatchv1.FenceDetect_FENCE_DETECT_ENTER
		if i%2 == 1 {
			want = geomatchv1.FenceDetect_FENCE_DETECT_EXIT
		}
		if ev.GetFence().GetDetect() != want || ev.GetFence().GetTimestampMs() != now+int64(i) {
			t.Fatalf("event %d: %v, want %v at %d", i, ev, want, now+int64(i))
		}
	}
	rest := read(&geomatchv1.SubscribeRequest{AfterCursor: all[3].GetCursor(), Kinds: []geomatchv1.EventKind{geomatchv1.EventKind_EVENT_KIND_FENCE}}, 6)
	for i, ev := range rest {
		if !proto.Equal(ev, all[4+i]) {
			t.Fatalf("resumed event %d = %v, want %v", i, ev, all[4+i])
		}
	}
}

func nan() float64 { var z float64; return z / z }

// TestSubscribeBeyondRetentionIsOutOfRange: a cursor whose following
// events the log has trimmed gets OUT_OF_RANGE naming the oldest cursor
// still available, which then reads without error.
func TestSubscribeBeyondRetentionIsOutOfRange(t *testing.T) {
	lg, err := events.NewMemory(events.MemoryConfig{Partitions: 1, Retention: 4})
	if err != nil {
		t.Fatal(err)
	}
	c := startCluster(t, cluster.DevConfig{Matchers: 1, Store: store.NewMemory(), Events: lg})
	fences, evs := fenceClients(t, c)
	ctx := ctxT(t)
	if _, err := fences.PutFence(ctx, &geomatchv1.PutFenceRequest{Fence: circleFence("zone", 500)}); err != nil {
		t.Fatal(err)
	}
	now := time.Now().UnixMilli()
	for i := range 12 {
		lat := 40.75
		if i%2 == 1 {
			lat = 40.80
		}
		if _, err := c.drivers.UpdateLocations(ctx, &geomatchv1.UpdateLocationsRequest{Updates: []*geomatchv1.LocationUpdate{
			{DriverId: "d1", Position: &geomatchv1.LatLng{Lat: lat, Lng: -73.98}, TimestampMs: now + int64(i)}}}); err != nil {
			t.Fatal(err)
		}
	}
	old := events.NewCursor([]events.Position{{Seq: 1}}) // after the first event, long trimmed
	stream, err := evs.Subscribe(ctx, &geomatchv1.SubscribeRequest{AfterCursor: old.String()})
	if err == nil {
		_, err = stream.Recv()
	}
	st := status.Convert(err)
	if st.Code() != codes.OutOfRange || !strings.Contains(st.Message(), "oldest cursor still available is c1") {
		t.Fatalf("subscribe from a trimmed cursor: %v, want OUT_OF_RANGE naming the oldest cursor", err)
	}
	oldest := st.Message()[strings.LastIndex(st.Message(), " ")+1:]
	stream, err = evs.Subscribe(ctx, &geomatchv1.SubscribeRequest{AfterCursor: oldest})
	if err != nil {
		t.Fatal(err)
	}
	if ev, err := stream.Recv(); err != nil || ev.GetEventId() == "" {
		t.Fatalf("from the oldest cursor: %v, %v", ev, err)
	}
}

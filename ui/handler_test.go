package ui

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	"github.com/geomatch/geomatch/fleet"
	"github.com/geomatch/geomatch/membership"
	matcherv1 "github.com/geomatch/geomatch/proto/geomatch/matcher/v1"
	geomatchv1 "github.com/geomatch/geomatch/proto/geomatch/v1"
	"github.com/geomatch/geomatch/shardmap"
	"github.com/geomatch/geomatch/ui/mapview"
)

// fakeCluster is a ring in memory, matchers that report fixed stats, and
// an admin API that checks a token ("admin") when auth is on and applies
// moves and drains to the ring.
type fakeCluster struct {
	local *membership.Local
	auth  bool

	mu     sync.Mutex
	stats  []fleet.NodeStats
	calls  []string
	probes int
}

func newFakeCluster(t *testing.T, auth bool) *fakeCluster {
	t.Helper()
	l, err := membership.NewLocal(shardmap.DefaultDoc(testMembers))
	if err != nil {
		t.Fatal(err)
	}
	var ss []*matcherv1.ShardStats
	for i, c := range testShards(t) {
		ss = append(ss, &matcherv1.ShardStats{Cell: uint64(c), Drivers: int64(i + 1), UpdatesPerS: 0.5})
	}
	return &fakeCluster{local: l, auth: auth, stats: []fleet.NodeStats{nodeStats(testMembers[0], ss...)}}
}

func (f *fakeCluster) Ring() (*shardmap.Map, <-chan struct{}) { return f.local.Current() }
func (f *fakeCluster) MembershipKind() string                 { return f.local.Kind() }
func (f *fakeCluster) AuthOn() bool                           { return f.auth }

func (f *fakeCluster) Stats(context.Context, *shardmap.Map) []fleet.NodeStats {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.probes++
	return f.stats
}

func (f *fakeCluster) Call(ctx context.Context, _ net.Addr, token, method string, req proto.Message) (proto.Message, error) {
	f.mu.Lock()
	f.calls = append(f.calls, method)
	f.mu.Unlock()
	if f.auth && token == "" {
		return nil, status.Error(codes.Unauthenticated, "missing token")
	}
	if f.auth && token != "admin" {
		return nil, status.Error(codes.PermissionDenied, "needs role admin")
	}
	var ch membership.Change
	switch r := req.(type) {
	case *geomatchv1.GetRingRequest:
		return &geomatchv1.RingDocument{}, nil
	case *geomatchv1.ListFencesRequest:
		// Two pages of one circle each.
		f := &geomatchv1.Fence{FenceId: "f" + r.GetPageToken(), Set: "s", Shape: &geomatchv1.Fence_Circle{Circle: &geomatchv1.Circle{Center: &geomatchv1.LatLng{Lat: 1, Lng: 2}, RadiusM: 100}}}
		next := ""
		if r.GetPageToken() == "" {
			next = "2"
		}
		return &geomatchv1.ListFencesResponse{Fences: []*geomatchv1.Fence{f}, NextPageToken: next}, nil
	case *geomatchv1.MoveShardRequest:
		c, _ := membership.ParseCell(r.GetCell())
		ch = membership.Move(c, r.GetNodeId())
	case *geomatchv1.DrainNodeRequest:
		ch = membership.Drain(r.GetNodeId())
	default:
		return nil, status.Errorf(codes.Unimplemented, "%s", method)
	}
	before, after, err := f.local.ChangeSettings(ctx, ch)
	if err != nil {
		return nil, status.Error(codes.FailedPrecondition, err.Error())
	}
	return &geomatchv1.RingChange{EpochBefore: before.Epoch(), Epoch: after.Epoch(), Description: method}, nil
}

// startMap runs a collector of f and serves its handler.
func startMap(t *testing.T, f *fakeCluster, cfg Config) (*httptest.Server, *Collector, context.CancelFunc) {
	t.Helper()
	col, err := NewCollector(f, cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- col.Run(ctx) }()
	srv := httptest.NewServer(NewHandler(col, f, nil))
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Error(err)
		}
		srv.Close()
	})
	return srv, col, cancel
}

func get(t *testing.T, url string) (*http.Response, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, string(b)
}

func post(t *testing.T, srv *httptest.Server, path, token, body string, hdr map[string]string) (int, map[string]any) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, srv.URL+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out map[string]any
	_ = json.NewDecoder(resp.Body).Decode(&out)
	return resp.StatusCode, out
}

// TestHandlerServesThePage: the page and the renderer, from the binary,
// with a content security policy that allows nothing from elsewhere.
func TestHandlerServesThePage(t *testing.T) {
	srv, _, _ := startMap(t, newFakeCluster(t, false), Config{})
	for path, want := range map[string]string{
		"/ui/": "text/html", "/ui/map.js": "text/javascript", "/ui/live.js": "text/javascript", "/ui/map.css": "text/css",
	} {
		resp, body := get(t, srv.URL+path)
		if resp.StatusCode != 200 || !strings.HasPrefix(resp.Header.Get("Content-Type"), want) || len(body) < 100 {
			t.Errorf("%s: %d %s, %d bytes", path, resp.StatusCode, resp.Header.Get("Content-Type"), len(body))
		}
		if !strings.Contains(resp.Header.Get("Content-Security-Policy"), "default-src 'self'") {
			t.Errorf("%s: CSP %q", path, resp.Header.Get("Content-Security-Policy"))
		}
		if strings.Contains(body, "https://") || strings.Contains(body, "http://cdn") {
			t.Errorf("%s refers to another site", path)
		}
	}
	if resp, _ := get(t, srv.URL+"/ui/nothing"); resp.StatusCode != 404 {
		t.Errorf("/ui/nothing: %d", resp.StatusCode)
	}
}

// TestSnapshotEndpoint: the shards the matchers report, owned as the ring
// says.
func TestSnapshotEndpoint(t *testing.T) {
	f := newFakeCluster(t, true)
	srv, _, _ := startMap(t, f, Config{})
	s := waitSnapshot(t, srv)
	m, _ := f.Ring()
	if !s.Live || !s.Auth || s.Epoch != m.Epoch() || len(s.Shards) != len(testShards(t)) || len(s.Nodes) != 3 {
		t.Fatalf("snapshot: live %v auth %v epoch %d, %d shards, %d nodes", s.Live, s.Auth, s.Epoch, len(s.Shards), len(s.Nodes))
	}
}

// waitSnapshot fetches snapshots until one has the first probe's shards.
func waitSnapshot(t *testing.T, srv *httptest.Server) mapview.Snapshot {
	t.Helper()
	var s mapview.Snapshot
	for deadline := time.Now().Add(30 * time.Second); len(s.Shards) == 0; {
		if time.Now().After(deadline) {
			t.Fatal("no snapshot with the matchers' shards")
		}
		resp, body := get(t, srv.URL+"/ui/api/snapshot")
		if err := json.Unmarshal([]byte(body), &s); err != nil || resp.StatusCode != 200 {
			t.Fatalf("%d %v: %s", resp.StatusCode, err, body)
		}
		time.Sleep(10 * time.Millisecond)
	}
	return s
}

// sseEvent is one server-sent event.
type sseEvent struct {
	name string
	doc  mapview.Snapshot
}

// readEvents reads events from an event stream into ch until it ends.
func readEvents(t *testing.T, body io.Reader, ch chan<- sseEvent) {
	defer close(ch)
	sc := bufio.NewScanner(body)
	sc.Buffer(make([]byte, 1<<20), 16<<20)
	var name string
	for sc.Scan() {
		line := sc.Text()
		switch {
		case strings.HasPrefix(line, "event: "):
			name = strings.TrimPrefix(line, "event: ")
		case strings.HasPrefix(line, "data: "):
			var e sseEvent
			e.name = name
			if err := json.Unmarshal([]byte(strings.TrimPrefix(line, "data: ")), &e.doc); err != nil {
				t.Errorf("event data: %v", err)
				return
			}
			ch <- e
		}
	}
}

// TestEventStream: a snapshot first, then updates without the boundaries
// already sent; a ring change is pushed at once (the collector does not
// wait for its next probe); the stream ends when the collector stops.
func TestEventStream(t *testing.T) {
	f := newFakeCluster(t, false)
	srv, _, stop := startMap(t, f, Config{Interval: time.Hour}) // no probes but the first
	resp, err := http.Get(srv.URL + "/ui/api/events")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if ct := resp.Header.Get("Content-Type"); ct != "text/event-stream" {
		t.Fatalf("content type %q", ct)
	}
	events := make(chan sseEvent, 16)
	go readEvents(t, resp.Body, events)
	next := func() sseEvent {
		t.Helper()
		select {
		case e, ok := <-events:
			if !ok {
				t.Fatal("stream ended")
			}
			return e
		case <-time.After(30 * time.Second):
			t.Fatal("no event")
		}
		return sseEvent{}
	}
	first := next()
	if first.name != "snapshot" || first.doc.Epoch != 1 {
		t.Fatalf("first event %s at epoch %d", first.name, first.doc.Epoch)
	}
	for first.doc.Seq < 2 || len(first.doc.Shards) == 0 { // the first probe's answers
		first = next()
	}
	for _, s := range first.doc.Shards {
		if first.name == "snapshot" && len(s.Boundary) == 0 {
			t.Fatalf("snapshot shard %s without boundary", s.Cell)
		}
	}

	cell := testShards(t)[2]
	m, _ := f.Ring()
	o, _ := m.Owner(cell)
	to := "m1"
	if o.ID == to {
		to = "m2"
	}
	if _, _, err := f.local.ChangeSettings(context.Background(), membership.Move(cell, to)); err != nil {
		t.Fatal(err)
	}
	for {
		e := next()
		if e.doc.Epoch != 2 {
			continue
		}
		if e.name != "update" {
			t.Fatalf("event %q after the snapshot", e.name)
		}
		var found bool
		for _, s := range e.doc.Shards {
			if s.Cell == cell.String() {
				found = true
				if s.Owner != to || !s.Pinned || len(s.Boundary) != 0 {
					t.Fatalf("moved shard in the update: %+v", s)
				}
			}
		}
		if !found || len(e.doc.Timeline) == 0 || e.doc.Timeline[0].Kind != "epoch" {
			t.Fatalf("update at epoch 2: shard found %v, timeline %+v", found, e.doc.Timeline)
		}
		break
	}
	stop()
	for range events { // ends when the collector stops
	}
}

// TestEventStreamBound refuses a stream beyond MaxClients.
func TestEventStreamBound(t *testing.T) {
	srv, _, _ := startMap(t, newFakeCluster(t, false), Config{MaxClients: 1})
	resp, err := http.Get(srv.URL + "/ui/api/events")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	second, body := get(t, srv.URL+"/ui/api/events")
	if second.StatusCode != http.StatusServiceUnavailable || !strings.Contains(body, "too many") {
		t.Fatalf("second stream: %d %s", second.StatusCode, body)
	}
}

// TestActions: a plan and an apply need an admin token when auth is on,
// come from the page's own origin as JSON, and an apply at a stale epoch
// is refused; a good one changes the ring.
func TestActions(t *testing.T) {
	f := newFakeCluster(t, true)
	srv, _, _ := startMap(t, f, Config{})
	waitSnapshot(t, srv)
	cell := testShards(t)[0]
	m, _ := f.Ring()
	o, _ := m.Owner(cell)
	to := "m1"
	if o.ID == to {
		to = "m2"
	}
	move := `{"action":"move","cell":"` + cell.String() + `","node":"` + to + `"}`

	tests := []struct {
		name, path, token, body string
		hdr                     map[string]string
		code                    int
		inError                 string
	}{
		{"no token", "/ui/api/plan", "", move, nil, 401, "missing token"},
		{"not an admin", "/ui/api/plan", "rider", move, nil, 403, "admin"},
		{"another origin", "/ui/api/plan", "admin", move, map[string]string{"Origin": "http://evil.example"}, 403, "origin"},
		{"a cross-site fetch", "/ui/api/plan", "admin", move, map[string]string{"Sec-Fetch-Site": "cross-site"}, 403, "origin"},
		{"not JSON", "/ui/api/plan", "admin", move, map[string]string{"Content-Type": "text/plain"}, 415, "Content-Type"},
		{"too big", "/ui/api/plan", "admin", `{"action":"` + strings.Repeat("x", maxActionBytes) + `"}`, nil, 413, "bytes"},
		{"bad action", "/ui/api/plan", "admin", `{"action":"move"}`, nil, 400, "cell"},
		{"unknown node", "/ui/api/plan", "admin", `{"action":"move","cell":"` + cell.String() + `","node":"m9"}`, nil, 400, "node_id"},
		{"bad authorization", "/ui/api/plan", "", move, map[string]string{"Authorization": "Basic eA=="}, 401, "Bearer"},
		{"apply without a plan's epoch", "/ui/api/apply", "admin", move, nil, 400, "epoch"},
		{"apply at a stale epoch", "/ui/api/apply", "admin", strings.TrimSuffix(move, "}") + `,"epoch":99}`, nil, 409, "review the new plan"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			code, out := post(t, srv, tc.path, tc.token, tc.body, tc.hdr)
			if code != tc.code || !strings.Contains(out["error"].(string), tc.inError) {
				t.Fatalf("%d %v, want %d with %q", code, out, tc.code, tc.inError)
			}
		})
	}
	if m, _ := f.Ring(); m.Epoch() != 1 {
		t.Fatalf("refused actions changed the ring to epoch %d", m.Epoch())
	}

	code, out := post(t, srv, "/ui/api/plan", "admin", move, map[string]string{"Origin": srv.URL})
	if code != 200 || out["epoch"].(float64) != 1 || len(out["moves"].([]any)) != 1 {
		t.Fatalf("plan: %d %v", code, out)
	}
	code, out = post(t, srv, "/ui/api/apply", "admin", strings.TrimSuffix(move, "}")+`,"epoch":1}`, nil)
	if code != 200 || out["epoch"] != "2" {
		t.Fatalf("apply: %d %v", code, out)
	}
	if m, _ := f.Ring(); m.Doc().Pins[cell] != to {
		t.Fatalf("after apply: pins %v", m.Doc().Pins)
	}
}

// TestFencesEndpoint: the fences overlay needs the admin token and follows
// ListFences' pages.
func TestFencesEndpoint(t *testing.T) {
	srv, _, _ := startMap(t, newFakeCluster(t, true), Config{})
	if resp, body := get(t, srv.URL+"/ui/api/fences"); resp.StatusCode != 401 {
		t.Fatalf("without a token: %d %s", resp.StatusCode, body)
	}
	req, _ := http.NewRequest(http.MethodGet, srv.URL+"/ui/api/fences", nil)
	req.Header.Set("Authorization", "Bearer admin")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var ov mapview.Overlay
	if err := json.NewDecoder(resp.Body).Decode(&ov); err != nil || resp.StatusCode != 200 {
		t.Fatalf("%d %v", resp.StatusCode, err)
	}
	if ov.Kind != "polygons" || len(ov.Polygons) != 2 || ov.Polygons[1].Title != "fence f2 (set s)" {
		t.Fatalf("overlay %+v", ov)
	}
}

// TestProbesOnlyWhileWatched: the matchers are probed once at start, then
// only while a page looks; a page that opens wakes the prober at once.
func TestProbesOnlyWhileWatched(t *testing.T) {
	f := newFakeCluster(t, false)
	probes := func() int {
		f.mu.Lock()
		defer f.mu.Unlock()
		return f.probes
	}
	srv, col, _ := startMap(t, f, Config{Interval: time.Hour})
	for deadline := time.Now().Add(30 * time.Second); probes() < 1; time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("no probe at start")
		}
	}
	if col.watched(time.Now()) {
		t.Fatal("watched before any page looked")
	}
	resp, err := http.Get(srv.URL + "/ui/api/events")
	if err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(30 * time.Second); probes() < 2; time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("an open page did not wake the prober")
		}
	}
	if !col.watched(time.Now()) {
		t.Fatal("not watched with a page open")
	}
	resp.Body.Close()
	for deadline := time.Now().Add(30 * time.Second); col.viewers.Load() != 0; time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("a closed page still counts as a viewer")
		}
	}
	if col.watched(time.Now()) {
		t.Fatal("watched after the page closed")
	}
	col.viewed()
	if !col.watched(time.Now()) || col.watched(time.Now().Add(idleAfter+time.Second)) {
		t.Fatal("a snapshot fetched keeps the probes on for idleAfter")
	}
}

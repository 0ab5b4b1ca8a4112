package main

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	"github.com/geomatch/geomatch/cluster"
	geomatchv1 "github.com/geomatch/geomatch/proto/geomatch/v1"
)

// cli runs geomatch in process with args and returns its exit code,
// standard output and standard error.
func cli(ctx context.Context, args ...string) (int, string, string) {
	var out, errOut bytes.Buffer
	code := run(ctx, args, &out, &errOut)
	return code, out.String(), errOut.String()
}

// TestFenceCLIRefusesBadCommandLines: a command line that cannot be right
// exits 2 with a message naming what is wrong, before any router is
// dialled (the --target here listens nowhere).
func TestFenceCLIRefusesBadCommandLines(t *testing.T) {
	empty := filepath.Join(t.TempDir(), "empty.json")
	if err := os.WriteFile(empty, []byte("  \n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		{"circle of two numbers", []string{"fence", "put", "f1", "--circle", "40.7,-74"}, "is not LAT,LNG,RADIUS_M"},
		{"circle with a word", []string{"fence", "put", "f1", "--circle", "40.7,-74,big"}, `"big" is not a number`},
		{"circle latitude out of range", []string{"fence", "put", "f1", "--circle", "-95.2,40.7,100"}, "latitude -95.2 is outside [-90, 90]"},
		{"circle longitude out of range", []string{"fence", "put", "f1", "--circle", "40.7,-190,100"}, "longitude -190 is outside"},
		{"circle of radius zero", []string{"fence", "put", "f1", "--circle", "40.7,-74,0"}, "must be positive"},
		{"circle of radius NaN", []string{"fence", "put", "f1", "--circle", "40.7,-74,NaN"}, "is not a number"},
		{"unknown detect", []string{"fence", "put", "f1", "--circle", "40.7,-74,100", "--detect", "enter,leave"}, `unknown detect "leave": want enter, exit, inside or cross`},
		{"label without =", []string{"fence", "put", "f1", "--circle", "40.7,-74,100", "--label", "zone"}, `"zone" is not key=value`},
		{"label without key", []string{"fence", "put", "f1", "--circle", "40.7,-74,100", "--label", "=x"}, `"=x" is not key=value`},
		{"label twice", []string{"fence", "put", "f1", "--circle", "40.7,-74,100", "--label", "a=1", "--label", "a=2"}, `key "a" given twice`},
		{"put without ID", []string{"fence", "put", "--circle", "40.7,-74,100"}, "missing ID"},
		{"put with two IDs", []string{"fence", "put", "f1", "f2", "--circle", "40.7,-74,100"}, "unexpected arguments after ID"},
		{"put without shape", []string{"fence", "put", "f1"}, "missing the shape: --geojson FILE"},
		{"put with two shapes", []string{"fence", "put", "f1", "--circle", "40.7,-74,100", "--geojson", empty}, "--geojson and --circle: give one shape"},
		{"get without ID", []string{"fence", "get"}, "missing ID"},
		{"delete without ID", []string{"fence", "delete"}, "missing ID"},
		{"list with an argument", []string{"fence", "list", "f1"}, "unexpected arguments: f1"},
		{"list with a page too big", []string{"fence", "list", "--page-size", "1001"}, "--page-size 1001: want 1..1000"},
		{"counts of nothing", []string{"fence", "counts"}, "say which fences: --set S, or fence IDs"},
		{"counts of a set and IDs", []string{"fence", "counts", "--set", "s", "f1"}, "--set and fence IDs: give one"},
		{"unknown fence command", []string{"fence", "frob"}, `unknown command "frob"`},
		{"fence without command", []string{"fence"}, "Usage: geomatch fence COMMAND"},
		{"unknown flag", []string{"fence", "get", "f1", "--bogus"}, "flag provided but not defined: -bogus"},
		{"unknown kind", []string{"events", "tail", "--kind", "fence,rides"}, `unknown kind "rides": want fence, trip or driver`},
		{"negative max", []string{"events", "tail", "--max", "-1"}, "--max -1: want N ≥ 0"},
		{"tail with an argument", []string{"events", "tail", "now"}, "unexpected arguments: now"},
		{"hook without endpoint", []string{"hook", "put", "h1"}, "missing ENDPOINT"},
		{"hook without anything", []string{"hook", "put"}, "missing ID and ENDPOINT"},
		{"hook with a bad header", []string{"hook", "put", "h1", "http://x", "--header", "X-A"}, `"X-A" is not key=value`},
		{"hook delete without ID", []string{"hook", "delete"}, "missing ID"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			args := slices.Concat(tc.args, []string{"--target", "127.0.0.1:1"})
			code, out, errOut := cli(t.Context(), args...)
			if code != 2 {
				t.Fatalf("exit %d, want 2 (usage)\nstdout: %s\nstderr: %s", code, out, errOut)
			}
			if !strings.Contains(errOut, tc.want) {
				t.Fatalf("stderr does not say %q:\n%s", tc.want, errOut)
			}
			if strings.Contains(errOut, "router at") {
				t.Fatalf("a router was dialled:\n%s", errOut)
			}
		})
	}
	for _, tc := range []struct {
		file, want string
	}{
		{empty, "empty; want a GeoJSON Polygon, MultiPolygon or a Feature of one"},
		{empty + ".nope", "no such file"},
	} {
		code, _, errOut := cli(t.Context(), "fence", "put", "f1", "--geojson", tc.file, "--target", "127.0.0.1:1")
		if code != 1 || !strings.Contains(errOut, tc.want) || strings.Contains(errOut, "router at") {
			t.Fatalf("put --geojson %s: exit %d, stderr %s; want 1 and %q before any dial", tc.file, code, errOut, tc.want)
		}
	}
}

// TestFenceCLIHelp: each command's help lists its subcommands and their
// flags with the type of their values, on stdout, exit 0.
func TestFenceCLIHelp(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want []string
	}{
		{[]string{"fence", "--help"}, []string{"put ID (--geojson FILE|- | --circle LAT,LNG,RADIUS_M)", "get ID", "delete ID", "list [--set S]", "counts (--set S | ID...)",
			"--circle LAT,LNG,RADIUS_M", "--detect enter,exit,inside,cross", "--label KEY=VALUE", "--page-size N", "--all", "--target HOST:PORT", "--json", "--token"}},
		{[]string{"fence", "put", "-h"}, []string{"Usage: geomatch fence put ID", "--geojson FILE", "--vehicle-class CLASS", "--timeout duration"}},
		{[]string{"events", "--help"}, []string{"tail [--set S ...]", "--after CURSOR", "--cursor-file PATH", "--from-oldest", "--max N", "--kind fence,trip,driver"}},
		{[]string{"events", "tail", "--help"}, []string{"100ms doubling to 5s", "--fence ID"}},
		{[]string{"hook", "help"}, []string{"put ID ENDPOINT", "list", "delete ID", "--header NAME=VALUE", "--secret KEY"}},
	} {
		code, out, errOut := cli(t.Context(), tc.args...)
		if code != 0 {
			t.Fatalf("%v: exit %d\n%s", tc.args, code, errOut)
		}
		for _, w := range tc.want {
			if !strings.Contains(out, w) {
				t.Errorf("%v does not list %q:\n%s", tc.args, w, out)
			}
		}
	}
	code, out, _ := cli(t.Context(), "--help")
	if code != 0 || !strings.Contains(out, "fence ") || !strings.Contains(out, "events ") || !strings.Contains(out, "hook ") {
		t.Fatalf("geomatch --help does not list fence, events and hook:\n%s", out)
	}
}

// TestFlagValues: the flag values a fence and a hook are made of.
func TestFlagValues(t *testing.T) {
	var c circleFlag
	if err := c.Set(" 40.758, -73.985 ,500"); err != nil {
		t.Fatal(err)
	}
	want := &geomatchv1.Circle{Center: &geomatchv1.LatLng{Lat: 40.758, Lng: -73.985}, RadiusM: 500}
	if !proto.Equal(c.c, want) {
		t.Fatalf("circle %v, want %v", c.c, want)
	}
	var d detectFlag
	if err := d.Set("Enter,cross"); err != nil {
		t.Fatal(err)
	}
	if err := d.Set("enter,inside"); err != nil {
		t.Fatal(err)
	}
	if got := d.String(); got != "enter,cross,inside" {
		t.Fatalf("detect %s, want enter,cross,inside (in order given, once each)", got)
	}
	var l listFlag
	if err := l.Set("a,b"); err != nil {
		t.Fatal(err)
	}
	if err := l.Set("c"); err != nil {
		t.Fatal(err)
	}
	if l.String() != "a,b,c" || l.Set("a,,b") == nil {
		t.Fatalf("list %s, want a,b,c and an empty item refused", l.String())
	}
	var p pairsFlag
	if err := p.Set("k=v=w"); err != nil || p["k"] != "v=w" {
		t.Fatalf("k=v=w: %v %v, want value v=w", p, err)
	}
}

// fakeRouter serves a FenceService and an EventService that tests
// script.
type fakeRouter struct {
	geomatchv1.UnimplementedFenceServiceServer
	geomatchv1.UnimplementedEventServiceServer
	mu    sync.Mutex
	puts  []*geomatchv1.Fence
	lists []*geomatchv1.ListFencesRequest
	subs  []*geomatchv1.SubscribeRequest
	// subscribe answers the n-th Subscribe (from 0).
	subscribe func(n int, req *geomatchv1.SubscribeRequest, stream geomatchv1.EventService_SubscribeServer) error
}

func startFake(t *testing.T, f *fakeRouter) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := grpc.NewServer()
	geomatchv1.RegisterFenceServiceServer(srv, f)
	geomatchv1.RegisterEventServiceServer(srv, f)
	done := make(chan struct{})
	go func() {
		defer close(done)
		srv.Serve(l)
	}()
	t.Cleanup(func() {
		srv.Stop()
		<-done
	})
	return l.Addr().String()
}

func (f *fakeRouter) PutFence(_ context.Context, req *geomatchv1.PutFenceRequest) (*geomatchv1.Fence, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.puts = append(f.puts, req.GetFence())
	if strings.Contains(req.GetFence().GetGeojson(), "Point") {
		return nil, status.Error(codes.InvalidArgument, "fence.geojson: a Point is not a Polygon or MultiPolygon")
	}
	out := proto.Clone(req.GetFence()).(*geomatchv1.Fence)
	out.UpdatedAtMs = 1700000000000
	return out, nil
}

func (f *fakeRouter) ListFences(_ context.Context, req *geomatchv1.ListFencesRequest) (*geomatchv1.ListFencesResponse, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.lists = append(f.lists, req)
	page := map[string]*geomatchv1.ListFencesResponse{
		"":   {Fences: []*geomatchv1.Fence{{FenceId: "a"}, {FenceId: "b"}}, NextPageToken: "p2"},
		"p2": {Fences: []*geomatchv1.Fence{{FenceId: "c"}}, NextPageToken: "p3"},
		"p3": {Fences: []*geomatchv1.Fence{{FenceId: "d"}}},
	}[req.GetPageToken()]
	if page == nil {
		return nil, status.Error(codes.InvalidArgument, "page_token: unknown")
	}
	return page, nil
}

func (f *fakeRouter) GetFenceCounts(_ context.Context, req *geomatchv1.GetFenceCountsRequest) (*geomatchv1.GetFenceCountsResponse, error) {
	return &geomatchv1.GetFenceCountsResponse{Counts: []*geomatchv1.FenceCount{
		{FenceId: "a", Inside: 3, Available: 2, ByVehicleClass: map[string]int64{"xl": 1, "": 2}},
		{FenceId: "b"},
	}}, nil
}

func (f *fakeRouter) GetFence(_ context.Context, req *geomatchv1.GetFenceRequest) (*geomatchv1.Fence, error) {
	return nil, status.Errorf(codes.NotFound, "fence %s: no such fence", req.GetFenceId())
}

func (f *fakeRouter) Subscribe(req *geomatchv1.SubscribeRequest, stream geomatchv1.EventService_SubscribeServer) error {
	f.mu.Lock()
	n := len(f.subs)
	f.subs = append(f.subs, req)
	f.mu.Unlock()
	return f.subscribe(n, req, stream)
}

func (f *fakeRouter) subscriptions() []*geomatchv1.SubscribeRequest {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]*geomatchv1.SubscribeRequest(nil), f.subs...)
}

// TestFenceCLIRequests: what the commands send and print.
func TestFenceCLIRequests(t *testing.T) {
	f := &fakeRouter{}
	addr := startFake(t, f)
	ctx := t.Context()

	code, out, errOut := cli(ctx, "fence", "--target", addr, "put", "--set", "nyc", "f1", "--circle", "40.758,-73.985,500",
		"--detect", "enter", "--detect", "exit,cross", "--vehicle-class", "xl", "--label", "zone=midtown", "--label", "tier=1")
	if code != 0 {
		t.Fatalf("put: exit %d: %s", code, errOut)
	}
	want := &geomatchv1.Fence{FenceId: "f1", Set: "nyc", VehicleClass: "xl", Labels: map[string]string{"zone": "midtown", "tier": "1"},
		Detect: []geomatchv1.FenceDetect{geomatchv1.FenceDetect_FENCE_DETECT_ENTER, geomatchv1.FenceDetect_FENCE_DETECT_EXIT, geomatchv1.FenceDetect_FENCE_DETECT_CROSS},
		Shape:  &geomatchv1.Fence_Circle{Circle: &geomatchv1.Circle{Center: &geomatchv1.LatLng{Lat: 40.758, Lng: -73.985}, RadiusM: 500}}}
	if !proto.Equal(f.puts[0], want) {
		t.Fatalf("PutFence got %v, want %v", f.puts[0], want)
	}
	if wantOut := "put fence f1 (set nyc): circle 40.758000,-73.985000 r=500m; detects enter,exit,cross; vehicle class xl; labels tier=1,zone=midtown; updated 2023-11-14T22:13:20Z\n"; out != wantOut {
		t.Fatalf("put printed %q, want %q", out, wantOut)
	}

	feature := `{"type":"Feature","properties":{},"geometry":{"type":"Polygon","coordinates":[[[-74,40.7],[-73.9,40.7],[-73.9,40.8],[-74,40.7]]]}}`
	file := filepath.Join(t.TempDir(), "zone.geojson")
	if err := os.WriteFile(file, []byte(feature), 0o600); err != nil {
		t.Fatal(err)
	}
	code, out, errOut = cli(ctx, "fence", "put", "f2", "--geojson", file, "--json", "--target", addr)
	if code != 0 {
		t.Fatalf("put --geojson: exit %d: %s", code, errOut)
	}
	if got := f.puts[1].GetGeojson(); got != feature {
		t.Fatalf("geojson sent %q, want the file's text as it is", got)
	}
	var back geomatchv1.Fence
	if err := protojson.Unmarshal([]byte(out), &back); err != nil || back.GetFenceId() != "f2" || back.GetGeojson() != feature {
		t.Fatalf("--json printed %s (%v), want the fence as protojson", out, err)
	}

	if err := os.WriteFile(file, []byte(`{"type":"Point","coordinates":[1,2]}`), 0o600); err != nil {
		t.Fatal(err)
	}
	code, _, errOut = cli(ctx, "fence", "put", "f3", "--geojson", file, "--target", addr)
	if code != 1 || !strings.Contains(errOut, "put fence f3: fence.geojson: a Point is not a Polygon or MultiPolygon (InvalidArgument") {
		t.Fatalf("invalid geojson: exit %d, stderr %s; want the server's message verbatim", code, errOut)
	}

	code, out, errOut = cli(ctx, "fence", "list", "--all", "--set", "nyc", "--page-size", "2", "--json", "--target", addr)
	if code != 0 {
		t.Fatalf("list --all: exit %d: %s", code, errOut)
	}
	var list geomatchv1.ListFencesResponse
	if err := protojson.Unmarshal([]byte(out), &list); err != nil || len(list.GetFences()) != 4 || list.GetNextPageToken() != "" {
		t.Fatalf("list --all printed %s (%v), want 4 fences and no next page", out, err)
	}
	if len(f.lists) != 3 || f.lists[2].GetPageToken() != "p3" || f.lists[2].GetSet() != "nyc" || f.lists[2].GetPageSize() != 2 {
		t.Fatalf("list --all asked %v, want three pages of set nyc, size 2", f.lists)
	}
	code, out, _ = cli(ctx, "fence", "list", "--target", addr)
	if code != 0 || !strings.Contains(out, "more fences: --page-token p2") || strings.Contains(out, "\nc ") {
		t.Fatalf("list without --all printed:\n%s", out)
	}

	code, out, errOut = cli(ctx, "fence", "counts", "a", "b", "--target", addr)
	if code != 0 {
		t.Fatalf("counts: exit %d: %s", code, errOut)
	}
	for _, w := range []string{"FENCE  INSIDE  AVAILABLE  BY CLASS", "a      3       2          (none)=2 xl=1", "b      0       0          -"} {
		if !strings.Contains(out, w) {
			t.Fatalf("counts table lacks %q:\n%s", w, out)
		}
	}

	code, _, errOut = cli(ctx, "fence", "get", "nope", "--target", addr)
	if code != 1 || !strings.Contains(errOut, "get fence nope: fence nope: no such fence (NotFound, router at "+addr+")") {
		t.Fatalf("get of a missing fence: exit %d, stderr %s", code, errOut)
	}
}

// sendEvents sends events with cursors c<from>..c<to>.
func sendEvents(stream geomatchv1.EventService_SubscribeServer, from, to int) error {
	for i := from; i <= to; i++ {
		ev := &geomatchv1.Event{EventId: fmt.Sprintf("e%d", i), Cursor: fmt.Sprintf("c%d", i), TimeMs: int64(i),
			Payload: &geomatchv1.Event_Fence{Fence: &geomatchv1.FenceEvent{FenceId: "f1", DriverId: "d1", Detect: geomatchv1.FenceDetect_FENCE_DETECT_ENTER}}}
		if err := stream.Send(ev); err != nil {
			return err
		}
	}
	return nil
}

// eventLines decodes the tail's output and returns the cursors.
func eventLines(t *testing.T, out string) []string {
	t.Helper()
	var cursors []string
	for _, line := range strings.Split(strings.TrimSuffix(out, "\n"), "\n") {
		var ev geomatchv1.Event
		if err := protojson.Unmarshal([]byte(line), &ev); err != nil {
			t.Fatalf("line %q is not an event: %v", line, err)
		}
		cursors = append(cursors, ev.GetCursor())
	}
	return cursors
}

// TestEventsTailResumesAfterABrokenStream: a stream that breaks
// (UNAVAILABLE, then a clean end) is resumed after the last cursor
// printed, so the output has every event once; the cursor file keeps the
// last one.
func TestEventsTailResumesAfterABrokenStream(t *testing.T) {
	f := &fakeRouter{subscribe: func(n int, req *geomatchv1.SubscribeRequest, stream geomatchv1.EventService_SubscribeServer) error {
		switch n {
		case 0:
			if err := sendEvents(stream, 1, 3); err != nil {
				return err
			}
			return status.Error(codes.Unavailable, "router shutting down")
		case 1:
			return sendEvents(stream, 4, 5) // then the stream ends (EOF)
		case 2, 3:
			return status.Error(codes.Unavailable, "no router yet")
		}
		if err := sendEvents(stream, 6, 7); err != nil {
			return err
		}
		<-stream.Context().Done()
		return nil
	}}
	addr := startFake(t, f)
	cursorFile := filepath.Join(t.TempDir(), "tail.cursor")
	code, out, errOut := cli(t.Context(), "events", "tail", "--target", addr, "--kind", "fence", "--set", "nyc,sf", "--fence", "f1",
		"--from-oldest", "--cursor-file", cursorFile, "--max", "7")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	if got := strings.Join(eventLines(t, out), " "); got != "c1 c2 c3 c4 c5 c6 c7" {
		t.Fatalf("printed cursors %s, want c1..c7 once each", got)
	}
	subs := f.subscriptions()
	var after []string
	for _, s := range subs {
		after = append(after, s.GetAfterCursor())
	}
	if got := strings.Join(after, " "); got != " c3 c5 c5 c5" {
		t.Fatalf("subscribed after %q, want after nothing, c3, then c5 three times", got)
	}
	for _, s := range subs {
		if strings.Join(s.GetSets(), ",") != "nyc,sf" || strings.Join(s.GetFenceIds(), ",") != "f1" || len(s.GetKinds()) != 1 || !s.GetFromOldest() {
			t.Fatalf("subscription %v lost its filter", s)
		}
	}
	// The backoff starts at 100ms after a stream that delivered events, and
	// doubles while streams deliver none.
	for _, w := range []string{
		"(Unavailable: router shutting down); resuming after cursor c3 in 100ms\n",
		"(the router ended it); resuming after cursor c5 in 100ms\n",
		"(Unavailable: no router yet); resuming after cursor c5 in 200ms\n",
		"(Unavailable: no router yet); resuming after cursor c5 in 400ms\n",
	} {
		if !strings.Contains(errOut, w) {
			t.Fatalf("stderr does not say %q:\n%s", w, errOut)
		}
	}
	if b, err := os.ReadFile(cursorFile); err != nil || string(b) != "c7\n" {
		t.Fatalf("cursor file %q (%v), want c7", b, err)
	}

	// A restarted tail resumes from the cursor file.
	code, _, errOut = cli(t.Context(), "events", "tail", "--target", addr, "--cursor-file", cursorFile, "--max", "2")
	if code != 0 {
		t.Fatalf("restart: exit %d: %s", code, errOut)
	}
	if subs := f.subscriptions(); subs[5].GetAfterCursor() != "c7" {
		t.Fatalf("restarted tail subscribed after %q, want c7 from the cursor file", subs[5].GetAfterCursor())
	}
	if entries, _ := os.ReadDir(filepath.Dir(cursorFile)); len(entries) != 1 {
		t.Fatalf("the cursor file's directory holds %d files, want the cursor file only (no temp files left)", len(entries))
	}
}

// TestEventsTailStopsOnTooOldCursorAndCancel: OUT_OF_RANGE exits 1 with
// the server's message; cancelling (SIGINT) exits 0.
func TestEventsTailStopsOnTooOldCursorAndCancel(t *testing.T) {
	f := &fakeRouter{subscribe: func(n int, req *geomatchv1.SubscribeRequest, stream geomatchv1.EventService_SubscribeServer) error {
		if req.GetAfterCursor() == "old" {
			return status.Error(codes.OutOfRange, "after_cursor: older than the event log's retention; the oldest cursor still available is c42")
		}
		<-stream.Context().Done()
		return nil
	}}
	addr := startFake(t, f)
	code, _, errOut := cli(t.Context(), "events", "tail", "--target", addr, "--after", "old")
	if code != 1 || !strings.Contains(errOut, "the oldest cursor still available is c42 (OutOfRange") || !strings.Contains(errOut, "--after") {
		t.Fatalf("exit %d, stderr %s; want 1 and the server's message", code, errOut)
	}
	if n := len(f.subscriptions()); n != 1 {
		t.Fatalf("%d subscriptions, want 1: OUT_OF_RANGE is not retried", n)
	}

	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan int, 1)
	go func() {
		code, _, _ := cli(ctx, "events", "tail", "--target", addr)
		done <- code
	}()
	deadline := time.Now().Add(10 * time.Second)
	for len(f.subscriptions()) < 2 {
		if time.Now().After(deadline) {
			t.Fatal("the tail did not subscribe")
		}
		time.Sleep(10 * time.Millisecond)
	}
	cancel()
	select {
	case code := <-done:
		if code != 0 {
			t.Fatalf("cancelled tail exited %d, want 0", code)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the tail did not stop when cancelled")
	}
}

// TestFenceEventsHooksOnDevCluster drives the three commands against an
// in-process dev cluster: a fence, a driver entering it, the event, the
// count, a hook.
func TestFenceEventsHooksOnDevCluster(t *testing.T) {
	c, err := cluster.StartDev(cluster.DevConfig{Matchers: 2, Log: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Stop() })
	ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
	defer cancel()
	geomatch := func(args ...string) string {
		t.Helper()
		code, out, errOut := cli(ctx, append(args, "--target", c.RouterAddr)...)
		if code != 0 {
			t.Fatalf("geomatch %v: exit %d\n%s%s", args, code, out, errOut)
		}
		return out
	}
	if out := geomatch("fence", "put", "mid", "--set", "nyc", "--circle", "40.758,-73.985,500", "--label", "zone=midtown"); !strings.Contains(out, "put fence mid (set nyc)") {
		t.Fatalf("put printed %s", out)
	}
	conn := dial(t, c.RouterAddr)
	if _, err := geomatchv1.NewDriverServiceClient(conn).UpdateLocations(ctx, &geomatchv1.UpdateLocationsRequest{Updates: []*geomatchv1.LocationUpdate{
		{DriverId: "d1", Position: &geomatchv1.LatLng{Lat: 40.758, Lng: -73.985}, TimestampMs: time.Now().UnixMilli()},
	}}); err != nil {
		t.Fatal(err)
	}
	out := geomatch("events", "tail", "--kind", "fence", "--fence", "mid", "--from-oldest", "--max", "1")
	var ev geomatchv1.Event
	if err := protojson.Unmarshal([]byte(out), &ev); err != nil || ev.GetFence().GetDriverId() != "d1" ||
		ev.GetFence().GetDetect() != geomatchv1.FenceDetect_FENCE_DETECT_ENTER || ev.GetCursor() == "" || ev.GetFence().GetLabels()["zone"] != "midtown" {
		t.Fatalf("tail printed %s (%v), want d1 entering mid, with a cursor and the fence's labels", out, err)
	}
	if out := geomatch("fence", "counts", "mid"); !strings.Contains(out, "mid    1") {
		t.Fatalf("counts:\n%s", out)
	}
	if out := geomatch("fence", "list", "--all", "--set", "nyc"); !strings.Contains(out, "mid") {
		t.Fatalf("list:\n%s", out)
	}
	if out := geomatch("hook", "put", "h1", "http://127.0.0.1:1/events", "--fence", "mid"); !strings.Contains(out, "secret: ") {
		t.Fatalf("hook put does not print the secret:\n%s", out)
	}
	if out := geomatch("hook", "list"); !strings.Contains(out, "h1") {
		t.Fatalf("hook list:\n%s", out)
	}
	geomatch("hook", "delete", "h1")
	geomatch("fence", "delete", "mid")
	if code, _, errOut := cli(ctx, "fence", "get", "mid", "--target", c.RouterAddr); code != 1 || !strings.Contains(errOut, "NotFound") {
		t.Fatalf("get of a deleted fence: exit %d, %s", code, errOut)
	}
}

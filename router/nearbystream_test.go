package router_test

import (
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/codes"

	"github.com/geomatch/geomatch/cluster"
	"github.com/geomatch/geomatch/internal/geo"
	geomatchv1 "github.com/geomatch/geomatch/proto/geomatch/v1"
	"github.com/geomatch/geomatch/shardmap"
)

// TestNearbyStreamAnswersEveryRequestByTag: over one NearbyStream, every
// request gets exactly one answer with its tag; valid ones equal the
// brute-force search (like NearbyDrivers), invalid ones carry
// INVALID_ARGUMENT naming the field and do not end the stream.
func TestNearbyStreamAnswersEveryRequestByTag(t *testing.T) {
	c := startCluster(t, cluster.DevConfig{Matchers: 3, Doc: shardmap.Doc{ShardRes: 7, MaxSplitDepth: 2}})
	r := rand.New(rand.NewPCG(7, 77))
	fleet := makeFleet(r, 2000, 7, time.Now().UnixMilli()-60_000)
	c.upload(t, fleet)
	c.waitSettled(t, fleet)

	stream, err := c.riders.NearbyStream(ctxT(t))
	if err != nil {
		t.Fatal(err)
	}
	queries := 300
	if testing.Short() {
		queries = 60
	}
	type asked struct {
		center geo.LatLng
		radius float64
		limit  int32
		field  string // the field an invalid request must be refused for
	}
	sent := map[string]asked{}
	var reqs []*geomatchv1.NearbyDriversRequest
	for i := range queries {
		h := hotspots[r.IntN(len(hotspots))]
		a := asked{center: jitter(r, h.center, h.spread*1.5), radius: []float64{300, 2000, 20000}[i%3], limit: []int32{1, 10, 50}[i%3]}
		switch i % 10 {
		case 3:
			a.limit, a.field = 0, "limit"
		case 7:
			a.radius, a.field = -1, "radius_m"
		}
		tag := fmt.Sprintf("q%04d", i)
		sent[tag] = a
		reqs = append(reqs, &geomatchv1.NearbyDriversRequest{
			Position: &geomatchv1.LatLng{Lat: a.center.Lat, Lng: a.center.Lng}, Limit: a.limit, RadiusM: a.radius, Tag: tag,
		})
	}
	reqs = append(reqs, &geomatchv1.NearbyDriversRequest{Tag: strings.Repeat("x", 200), Limit: 1, RadiusM: 1})
	go func() { // the test's sender; Recv below ends when it closes
		for _, req := range reqs {
			if err := stream.Send(req); err != nil {
				return
			}
		}
		_ = stream.CloseSend()
	}()
	var answers []*geomatchv1.NearbyDriversResponse
	for {
		resp, err := stream.Recv()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatalf("Recv after %d answers: %v", len(answers), err)
		}
		answers = append(answers, resp)
	}
	if len(answers) != queries+1 {
		t.Fatalf("%d answers to %d requests", len(answers), queries+1)
	}
	pts := make([]geo.Point, len(fleet))
	for i, d := range fleet {
		pts[i] = geo.Point{ID: d.id, Pos: d.pos}
	}
	seen := map[string]bool{}
	for _, resp := range answers {
		tag := resp.GetTag()
		if len(tag) == 128 && strings.Trim(tag, "x") == "" {
			if e := resp.GetError(); e.GetCode() != int32(codes.InvalidArgument) || !strings.Contains(e.GetMessage(), "tag") {
				t.Fatalf("over-long tag answered %v, want INVALID_ARGUMENT naming tag", e)
			}
			continue
		}
		a, ok := sent[tag]
		if !ok || seen[tag] {
			t.Fatalf("answer with tag %q: unknown or answered twice", tag)
		}
		seen[tag] = true
		if a.field != "" {
			if e := resp.GetError(); e.GetCode() != int32(codes.InvalidArgument) || !strings.Contains(e.GetMessage(), a.field) {
				t.Fatalf("%s: invalid request answered %v, want INVALID_ARGUMENT naming %s", tag, e, a.field)
			}
			continue
		}
		if resp.GetError() != nil || resp.GetPartial() {
			t.Fatalf("%s: error %v, partial %v", tag, resp.GetError(), resp.GetPartial())
		}
		want := geo.NearestBrute(pts, a.center, a.radius, int(a.limit))
		got := resp.GetDrivers()
		if len(got) != len(want) {
			t.Fatalf("%s: %d drivers, brute force has %d", tag, len(got), len(want))
		}
		for i := range want {
			if got[i].GetDriverId() != want[i].ID || got[i].GetDistanceM() != want[i].DistanceM {
				t.Fatalf("%s: result %d is %s, brute force says %s", tag, i, got[i].GetDriverId(), want[i].ID)
			}
		}
	}
}

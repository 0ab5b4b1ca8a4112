package loadgen

import (
	"context"
	"encoding/json"
	"math"
	"strconv"
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/geomatch/geomatch/cluster"
	"github.com/geomatch/geomatch/fence"
	"github.com/geomatch/geomatch/fence/fencev1"
	"github.com/geomatch/geomatch/internal/geo"
	geomatchv1 "github.com/geomatch/geomatch/proto/geomatch/v1"
)

// The fence generator is a pure function of (seed, variant, index): the
// same arguments give the same message, and every fence is valid by the
// router's own rules (fencev1.Decode).
func TestGenFenceIsDeterministicAndValid(t *testing.T) {
	for _, holes := range []int{0, 1, 3} {
		sh := DefaultFenceShapes(CityArea)
		sh.HoleEvery = holes
		for i := range 200 {
			id := fenceID(i)
			a := GenFence(sh, 7, 0, i, id, "s")
			b := GenFence(sh, 7, 0, i, id, "s")
			if !proto.Equal(a, b) {
				t.Fatalf("fence %d: two draws differ", i)
			}
			if proto.Equal(a, GenFence(sh, 8, 0, i, id, "s")) || proto.Equal(a, GenFence(sh, 7, 1, i, id, "s")) {
				t.Fatalf("fence %d: another seed or variant gives the same fence", i)
			}
			f, err := fencev1.Decode(a)
			if err != nil {
				t.Fatalf("fence %d (holes every %d): %v", i, holes, err)
			}
			checkShape(t, sh, i, a.GetGeojson(), f)
		}
	}
}

// checkShape checks a drawn fence against the ranges of sh: a circle's
// radius, a polygon's vertex count, area and holes.
func checkShape(t *testing.T, sh FenceShapes, i int, geojson string, f *fence.Fence) {
	t.Helper()
	if c, ok := f.Shape.(*fence.Circle); ok {
		if i%2 != 1 || c.RadiusM() < sh.MinRadiusM || c.RadiusM() > sh.MaxRadiusM {
			t.Fatalf("fence %d: circle of %v m, want odd index and %v..%v m", i, c.RadiusM(), sh.MinRadiusM, sh.MaxRadiusM)
		}
		return
	}
	if i%2 != 0 {
		t.Fatalf("fence %d: a polygon at an odd index", i)
	}
	var g struct {
		Type        string         `json:"type"`
		Coordinates [][][2]float64 `json:"coordinates"`
	}
	if err := json.Unmarshal([]byte(geojson), &g); err != nil || g.Type != "Polygon" {
		t.Fatalf("fence %d: %v, type %q", i, err, g.Type)
	}
	ext := g.Coordinates[0]
	if n := len(ext) - 1; n < sh.MinVertices || n > sh.MaxVertices {
		t.Fatalf("fence %d: %d vertices, want %d..%d", i, n, sh.MinVertices, sh.MaxVertices)
	}
	if a := ringAreaM2(ext); a < sh.MinAreaM2*0.99 || a > sh.MaxAreaM2*1.01 {
		t.Fatalf("fence %d: %.0f m², want %v..%v", i, a, sh.MinAreaM2, sh.MaxAreaM2)
	}
	wantHoles := 0
	if sh.HoleEvery > 0 && (i/2)%sh.HoleEvery == 0 {
		wantHoles = 1
	}
	if len(g.Coordinates)-1 != wantHoles {
		t.Fatalf("fence %d: %d holes, want %d", i, len(g.Coordinates)-1, wantHoles)
	}
}

// ringAreaM2 is a closed ring's area on a local plane.
func ringAreaM2(ring [][2]float64) float64 {
	kx := metersPerDeg * math.Cos(ring[0][1]*math.Pi/180)
	var a float64
	for k := 0; k+1 < len(ring); k++ {
		a += (ring[k][0]*kx)*(ring[k+1][1]*metersPerDeg) - (ring[k+1][0]*kx)*(ring[k][1]*metersPerDeg)
	}
	return math.Abs(a) / 2
}

// A trace is a pure function of its arguments; every position stays in
// the area, and no step exceeds the step size on either axis.
func TestGenTraceIsDeterministicAndBounded(t *testing.T) {
	a, err := GenTrace(MidtownArea, 3, 500, 40, 150, "x-")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := GenTrace(MidtownArea, 3, 500, 40, 150, "x-")
	c, _ := GenTrace(MidtownArea, 4, 500, 40, 150, "x-")
	same := true
	dLat := 150.0 / metersPerDeg * (1 + 1e-9)
	dLng := 150.0 / (metersPerDeg * math.Cos((MidtownArea.MinLat+MidtownArea.MaxLat)/2*math.Pi/180)) * (1 + 1e-9)
	for s := range a.Steps {
		for d := range a.IDs {
			p := a.Steps[s][d]
			if p != b.Steps[s][d] {
				t.Fatalf("step %d driver %d: two draws differ", s, d)
			}
			same = same && p == c.Steps[s][d]
			if p.lat < MidtownArea.MinLat || p.lat > MidtownArea.MaxLat || p.lng < MidtownArea.MinLng || p.lng > MidtownArea.MaxLng {
				t.Fatalf("step %d driver %d: %v outside the area", s, d, p)
			}
			if s > 0 {
				q := a.Steps[s-1][d]
				if math.Abs(p.lat-q.lat) > dLat || math.Abs(p.lng-q.lng) > dLng {
					t.Fatalf("step %d driver %d: moved from %v to %v, more than 150 m on an axis", s, d, q, p)
				}
			}
		}
	}
	if same {
		t.Fatal("another seed gives the same trace")
	}
	if a.IDs[7] != "x-000007" || a.Prefix != "x-" {
		t.Fatalf("ids %q, prefix %q", a.IDs[7], a.Prefix)
	}
	if _, err := GenTrace(MidtownArea, 1, MaxTracePoints, 2, 150, "x"); err == nil {
		t.Fatal("a trace over MaxTracePoints was drawn")
	}
}

// A Tile38 channel message is placed on its step by the object's exact
// coordinates; a message of another driver, fence or command is not.
func TestParseTile38Msg(t *testing.T) {
	tr, err := GenTrace(MidtownArea, 1, 3, 5, 150, "cmp-r-d")
	if err != nil {
		t.Fatal(err)
	}
	p := tr.Steps[3][2]
	lng, lat := strconv.FormatFloat(p.lng, 'f', -1, 64), strconv.FormatFloat(p.lat, 'f', -1, 64)
	msg := func(cmd, detect, hook, id string) string {
		return `{"command":"` + cmd + `","group":"g1","detect":"` + detect + `","hook":"` + hook + `","key":"fencecmp","time":"2026-01-01T00:00:00Z","id":"` + id +
			`","object":{"type":"Point","coordinates":[` + lng + `,` + lat + `]}}`
	}
	fences := map[string]int32{"cmp-r-p0001": 4}
	idx := driverIndex(tr)
	e, ok := parseTile38Msg(msg("set", "exit", "cmp-r-p0001", "cmp-r-d000002"), tr, idx, fences)
	if want := (fenceEvent{step: 3, driver: 2, fence: 4, detect: fence.Exit}); !ok || e != want {
		t.Fatalf("got %+v %v, want %+v", e, ok, want)
	}
	for _, bad := range []string{
		msg("del", "exit", "cmp-r-p0001", "cmp-r-d000002"),
		msg("set", "exit", "cmp-r-p0002", "cmp-r-d000002"),
		msg("set", "exit", "cmp-r-p0001", "cmp-r-d000001"), // another driver was not there
		msg("set", "roam", "cmp-r-p0001", "cmp-r-d000002"),
		`not json`,
	} {
		if e, ok := parseTile38Msg(bad, tr, idx, fences); ok {
			t.Errorf("%s: placed as %+v", bad, e)
		}
	}
}

// The SETCHAN commands follow Tile38's syntax for each shape and mode.
func TestTile38Setchan(t *testing.T) {
	cc := DefaultCompareConfig()
	cc.Circles, cc.Polygons = 1, 1
	fs, err := compareFences(cc, "cmp-r-")
	if err != nil {
		t.Fatal(err)
	}
	str := func(args []any) string {
		var b strings.Builder
		for i, a := range args {
			if i > 0 {
				b.WriteByte(' ')
			}
			switch v := a.(type) {
			case string:
				if len(v) > 20 {
					v = v[:20] + "…"
				}
				b.WriteString(v)
			case float64:
				b.WriteString("N")
			}
		}
		return b.String()
	}
	for _, c := range []struct {
		f    cmpFence
		mode Tile38CircleMode
		want string
	}{
		{fs[0], Tile38CircleWithin, `SETCHAN cmp-r-p0000 WITHIN fencecmp FENCE DETECT enter,exit OBJECT {"type":"Polygon","c…`},
		{fs[1], Tile38CircleWithin, "SETCHAN cmp-r-c0000 WITHIN fencecmp FENCE DETECT enter,exit CIRCLE N N N"},
		{fs[1], Tile38CircleNearby, "SETCHAN cmp-r-c0000 NEARBY fencecmp FENCE DETECT enter,exit POINT N N N"},
	} {
		if got := str(tile38Setchan(c.f, c.mode)); got != c.want {
			t.Errorf("%s:\n got %s\nwant %s", c.mode, got, c.want)
		}
	}
}

// A difference is classified by the distance of the update's positions to
// the fence's edge: within the Earth-radius band of a circle, within the
// 64-gon band in nearby mode, else unexplained.
func TestClassify(t *testing.T) {
	cc := DefaultCompareConfig()
	cc.Circles, cc.Polygons = 1, 1
	fs, err := compareFences(cc, "cmp-r-")
	if err != nil {
		t.Fatal(err)
	}
	c := fs[1].circle
	o := geo.LatLng{Lat: c.GetCenter().GetLat(), Lng: c.GetCenter().GetLng()}
	r := c.GetRadiusM()
	at := func(m float64) point { // m meters north of the center
		return point{o.Lat + m/(geo.EarthRadiusM*math.Pi/180), o.Lng}
	}
	band := r * (1 - math.Cos(math.Pi/64)) // the 64-gon's largest gap
	tr := &Trace{Prefix: "d", IDs: []string{"d000000"}, Steps: [][]point{{at(r + 0.001)}, {at(r + 50)}, {at(r + 60)}, {at(r - band/2)}}}
	for _, tc := range []struct {
		step int32
		mode Tile38CircleMode
		want string
	}{
		{0, Tile38CircleWithin, classEarthRadius},
		{2, Tile38CircleWithin, classUnexplained},
		{2, Tile38CircleNearby, classUnexplained},
	} {
		e := fenceEvent{step: tc.step, driver: 0, fence: 1, detect: fence.Enter}
		if got, m := classify(e, tr, fs, tc.mode); got != tc.want {
			t.Errorf("step %d, %s: %s (margin %v m), want %s", tc.step, tc.mode, got, m, tc.want)
		}
	}
	e := fenceEvent{step: 3, driver: 0, fence: 1, detect: fence.Enter} // inside by half the 64-gon's gap
	if got, _ := classify(e, tr, fs, Tile38CircleNearby); got != classCircle64 {
		t.Errorf("between the 64-gon and the circle, nearby: %s, want %s", got, classCircle64)
	}
	if got, _ := classify(e, tr, fs, Tile38CircleWithin); got != classUnexplained {
		t.Errorf("between the 64-gon and the circle, within: %s, want %s", got, classUnexplained)
	}
	// A polygon's vertex is on its boundary.
	v := fs[0].rings[0][3]
	tr.Steps[0][0] = point{lat: v[1], lng: v[0]}
	if got, _ := classify(fenceEvent{fence: 0}, tr, fs, Tile38CircleWithin); got != classBoundary {
		t.Errorf("a vertex: %s, want %s", got, classBoundary)
	}
}

// The geomatch half of the comparison agrees with the oracle exactly on a
// small trace, and its fences are gone afterwards.
func TestCompareFencesAgainstEmbeddedCluster(t *testing.T) {
	c, err := cluster.StartDev(cluster.DevConfig{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := c.Stop(); err != nil {
			t.Errorf("stop cluster: %v", err)
		}
	})
	target, err := NewGRPCTarget(c.RouterAddr)
	if err != nil {
		t.Fatal(err)
	}
	defer target.Close()
	cc := DefaultCompareConfig()
	cc.Drivers, cc.Steps, cc.Circles, cc.Polygons, cc.Batch = 300, 12, 10, 10, 100
	cc.Shapes.MaxVertices = 80
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	rep, err := CompareFences(ctx, cc, target)
	if err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	if err := rep.WriteTable(&b); err != nil {
		t.Fatal(err)
	}
	t.Log("\n" + b.String())
	if rep.Oracle.Enter == 0 || rep.Oracle.Exit == 0 {
		t.Fatalf("the trace crossed no fence: %+v", rep.Oracle)
	}
	d := rep.Diffs[0]
	if d.OnlyA != 0 || d.OnlyB != 0 || d.Same != rep.Oracle.Enter+rep.Oracle.Exit {
		t.Fatalf("geomatch vs oracle: %+v", d)
	}
	if rep.Geomatch.Replay.Ops != int64(cc.Drivers*cc.Steps) || rep.Geomatch.Replay.Errors != 0 {
		t.Fatalf("replay: %+v", rep.Geomatch.Replay)
	}
	left, err := geomatchv1.NewFenceServiceClient(target.conn).ListFences(ctx, &geomatchv1.ListFencesRequest{})
	if err != nil || len(left.GetFences()) != 0 {
		t.Errorf("after the comparison: %d fences left (%v)", len(left.GetFences()), err)
	}
}

// A short fenced run has every phase, without errors, and counts events.
func TestRunFencesAgainstEmbeddedCluster(t *testing.T) {
	c, err := cluster.StartDev(cluster.DevConfig{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := c.Stop(); err != nil {
			t.Errorf("stop cluster: %v", err)
		}
	})
	target, err := NewGRPCTarget(c.RouterAddr)
	if err != nil {
		t.Fatal(err)
	}
	defer target.Close()
	cfg := shortConfig()
	cfg.Concurrency = []int{2}
	fc := DefaultFenceConfig()
	fc.Fences, fc.WriteRate, fc.PutConcurrency, fc.WriteConcurrency = 100, 200, 4, 4
	fc.Shapes.MaxVertices = 80
	rep, err := RunFences(context.Background(), cfg, fc, target)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"load", "ingest-unary", "ingest-stream", phaseFencePut, phaseUnaryFenced, phaseStreamFence, phaseUnaryWrites, phaseFenceWrites, "nearby-2"}
	if len(rep.Phases) != len(want) {
		t.Fatalf("%d phases, want %v", len(rep.Phases), want)
	}
	for i, p := range rep.Phases {
		if p.Phase != want[i] || p.Ops == 0 || p.Errors != 0 {
			t.Errorf("phase %d: %s, %d ops, %d errors (%s); want %s with ops and no errors", i, p.Phase, p.Ops, p.Errors, p.FirstError, want[i])
		}
	}
	if rep.Phases[3].Ops != int64(fc.Fences) {
		t.Errorf("fence-put: %d fences, want %d", rep.Phases[3].Ops, fc.Fences)
	}
	if rep.Fence.EventsTotal == 0 || rep.Fence.SubscribeError != "" {
		t.Errorf("events: %d received, error %q", rep.Fence.EventsTotal, rep.Fence.SubscribeError)
	}
	var b strings.Builder
	if err := rep.WriteTable(&b); err != nil {
		t.Fatal(err)
	}
	t.Log("\n" + b.String())
}

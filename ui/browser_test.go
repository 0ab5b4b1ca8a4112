package ui_test

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/geomatch/geomatch/auth"
	"github.com/geomatch/geomatch/cluster"
	"github.com/geomatch/geomatch/internal/lifecycle"
	"github.com/geomatch/geomatch/internal/servertest"
	"github.com/geomatch/geomatch/membership"
	geomatchv1 "github.com/geomatch/geomatch/proto/geomatch/v1"
	"github.com/geomatch/geomatch/router"
	"github.com/geomatch/geomatch/shardmap"
	"github.com/geomatch/geomatch/ui/mapview"
)

// Environment of the browser test.
const (
	// chromiumEnv names the browser binary (default: chromium on PATH).
	chromiumEnv = "GEOMATCH_CHROMIUM"
	// artifactsEnv is a directory the screenshot is written to (default:
	// the test's temporary directory, logged).
	artifactsEnv = "GEOMATCH_TEST_ARTIFACTS"
	// screenshotEnv, when set, is a path the screenshot is also written
	// to (docs/img/shard-map.png for the README).
	screenshotEnv = "GEOMATCH_SCREENSHOT"
)

// onScreenDeadline is how soon a ring change must be on the page: the
// issue's "≤ 2 s after the ring epoch moves".
const onScreenDeadline = 2 * time.Second

// chromium finds the browser, or skips (fails in CI).
func chromium(t *testing.T) string {
	t.Helper()
	if p := os.Getenv(chromiumEnv); p != "" {
		return p
	}
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome", "headless-shell"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	servertest.Missing(t, "no chromium on PATH (apt-get install chromium, or set "+chromiumEnv+")")
	return ""
}

var signingKey = &auth.SigningKey{ID: "ui-test", Key: ed25519.NewKeyFromSeed(bytes.Repeat([]byte{9}, ed25519.SeedSize))}

// mapCluster is a dev cluster with authentication on and its shard map
// served on a metrics listener.
type mapCluster struct {
	dev     *cluster.Dev
	url     string // the map's URL
	admin   string // an admin token
	rider   string // a rider token
	conn    *grpc.ClientConn
	adminRP geomatchv1.AdminServiceClient
	stop    func() // stops the cluster and its map (once)
}

// startMapCluster starts a cluster whose map listens on httpAddr, with
// 400 drivers around (lat, lng).
func startMapCluster(t *testing.T, ctx context.Context, httpAddr string, lat, lng float64) *mapCluster {
	t.Helper()
	issuer, err := auth.New(auth.Config{SigningKey: signingKey})
	if err != nil {
		t.Fatal(err)
	}
	verifier, err := auth.New(auth.Config{PublicKeys: []auth.PublicKey{signingKey.Public()}})
	if err != nil {
		t.Fatal(err)
	}
	obs := cluster.NewObserver()
	dev, err := cluster.StartDev(cluster.DevConfig{Matchers: 3, Metrics: obs, Router: router.Config{Auth: verifier}})
	if err != nil {
		t.Fatal(err)
	}
	g := lifecycle.NewGroup()
	if err := obs.Serve(g, httpAddr, slog.New(slog.DiscardHandler)); err != nil {
		t.Fatal(errors.Join(err, dev.Stop()))
	}
	c := &mapCluster{dev: dev, url: "http://" + obs.Addr() + "/ui/"}
	c.stop = sync.OnceFunc(func() {
		if err := g.Stop(); err != nil {
			t.Error(err)
		}
		if err := dev.Stop(); err != nil {
			t.Error(err)
		}
	})
	t.Cleanup(c.stop)
	now := time.Now()
	if c.admin, err = issuer.Issue("ops", auth.RoleAdmin, time.Hour, now); err != nil {
		t.Fatal(err)
	}
	if c.rider, err = issuer.Issue("alice", auth.RoleRider, time.Hour, now); err != nil {
		t.Fatal(err)
	}
	c.conn, err = grpc.NewClient(dev.RouterAddr, grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithPerRPCCredentials(auth.Bearer{Token: c.admin, Insecure: true}))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.conn.Close() })
	c.adminRP = geomatchv1.NewAdminServiceClient(c.conn)

	// Drivers over some 60 shards around Manhattan.
	var ups []*geomatchv1.LocationUpdate
	for i := range 400 {
		a := float64(i) * 2.399963 // golden angle: an even spread
		r := 0.09 * math.Sqrt(float64(i)/400)
		ups = append(ups, &geomatchv1.LocationUpdate{
			DriverId: fmt.Sprintf("d%03d", i), Position: &geomatchv1.LatLng{Lat: lat + r*math.Sin(a), Lng: lng + 1.3*r*math.Cos(a)},
			TimestampMs: now.UnixMilli(), Status: geomatchv1.DriverStatus_DRIVER_STATUS_AVAILABLE, VehicleClass: "standard",
		})
	}
	resp, err := geomatchv1.NewDriverServiceClient(c.conn).UpdateLocations(ctx, &geomatchv1.UpdateLocationsRequest{Updates: ups})
	if err != nil || resp.GetAccepted() != int32(len(ups)) {
		t.Fatalf("load drivers: %v, %d of %d accepted", err, resp.GetAccepted(), len(ups))
	}
	return c
}

// snapshot fetches the map's snapshot.
func (c *mapCluster) snapshot(t *testing.T) *mapview.Snapshot {
	t.Helper()
	resp, err := http.Get(c.url + "api/snapshot")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var s mapview.Snapshot
	if err := json.NewDecoder(resp.Body).Decode(&s); err != nil {
		t.Fatal(err)
	}
	return &s
}

// loaded waits for the collector's first probes: a snapshot with the 400
// drivers.
func (c *mapCluster) loaded(t *testing.T, ctx context.Context) *mapview.Snapshot {
	t.Helper()
	var snap *mapview.Snapshot
	if _, err := waitFor(ctx, 30*time.Second, func(context.Context) (bool, error) {
		snap = c.snapshot(t)
		var drivers int64
		for _, s := range snap.Shards {
			drivers += s.Drivers
		}
		return drivers == 400, nil
	}); err != nil {
		t.Fatalf("the snapshot never showed the 400 drivers: %v", err)
	}
	return snap
}

// newBrowser starts headless Chromium for the test; its context ends with
// ctx or the test.
func newBrowser(t *testing.T, ctx context.Context, browser string) context.Context {
	t.Helper()
	opts := append(chromedp.DefaultExecAllocatorOptions[:], chromedp.ExecPath(browser), chromedp.NoSandbox,
		chromedp.WindowSize(1400, 900), chromedp.Flag("disable-dev-shm-usage", true))
	actx, acancel := chromedp.NewExecAllocator(ctx, opts...)
	t.Cleanup(acancel)
	bctx, bcancel := chromedp.NewContext(actx)
	t.Cleanup(bcancel)
	if err := chromedp.Do(bctx, chromedp.Navigate("about:blank")); err != nil {
		t.Fatalf("start %s: %v", browser, err)
	}
	return bctx
}

// ring is the router's ring as GetRing reports it.
func (c *mapCluster) ring(t *testing.T, ctx context.Context) *shardmap.Map {
	t.Helper()
	rd, err := c.adminRP.GetRing(ctx, &geomatchv1.GetRingRequest{})
	if err != nil {
		t.Fatal(err)
	}
	d := shardmap.Doc{Epoch: rd.GetEpoch(), ShardRes: int(rd.GetShardResolution()), MaxSplitDepth: int(rd.GetMaxSplitDepth()), VNodes: int(rd.GetVnodes())}
	for _, m := range rd.GetMembers() {
		d.Members = append(d.Members, shardmap.Member{ID: m.GetId(), Addr: m.GetAddr(), Weight: m.GetWeight()})
		if m.GetDrained() {
			d.Drained = append(d.Drained, m.GetId())
		}
	}
	for _, s := range rd.GetSplits() {
		c, err := parseCell(s)
		if err != nil {
			t.Fatal(err)
		}
		d.Splits = append(d.Splits, c)
	}
	for s, id := range rd.GetPins() {
		c, err := parseCell(s)
		if err != nil {
			t.Fatal(err)
		}
		if d.Pins == nil {
			d.Pins = map[shardmap.Cell]string{}
		}
		d.Pins[c] = id
	}
	m, err := shardmap.NewMap(d)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// shownShard is a hexagon as the page draws it.
type shownShard struct {
	Cell, Owner, Color, Fill string
	Res                      string
}

const shownShardsJS = `Array.prototype.map.call(document.querySelectorAll("svg.gm-svg polygon.gm-shard"), function (p) {
  return {Cell: p.getAttribute("data-cell"), Owner: p.getAttribute("data-owner"), Color: p.getAttribute("data-color"),
          Fill: p.getAttribute("fill"), Res: p.getAttribute("data-res")};
})`

const legendJS = `(function () { var o = {}; Array.prototype.forEach.call(document.querySelectorAll(".gm-legend .gm-owner"),
  function (s) { o[s.getAttribute("data-owner")] = s.getAttribute("data-color"); }); return o; })()`

// waitFor polls cond every 50 ms until it holds or the deadline passes.
func waitFor(ctx context.Context, deadline time.Duration, cond func(ctx context.Context) (bool, error)) (time.Duration, error) {
	start := time.Now()
	for {
		ok, err := cond(ctx)
		if err != nil {
			return time.Since(start), err
		}
		if ok {
			return time.Since(start), nil
		}
		if time.Since(start) > deadline {
			return time.Since(start), fmt.Errorf("not within %v", deadline)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestBrowserShardMap drives the live shard map in headless Chromium
// against a running dev cluster with authentication on: one hexagon per
// shard, owner colours as GetRing places the shards, a MoveShard on the
// page within 2 s, actions from the page refused without an admin token
// and taking effect with one (a move and a drain, each planned first), and
// a screenshot.
func TestBrowserShardMap(t *testing.T) {
	browser := chromium(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	c := startMapCluster(t, ctx, "127.0.0.1:0", 40.75, -73.98)

	snap := c.loaded(t, ctx)
	bctx := newBrowser(t, ctx, browser)
	run := func(what string, steps ...chromedp.Action[chromedp.Void]) {
		t.Helper()
		if err := chromedp.Do(bctx, steps...); err != nil {
			t.Fatalf("%s: %v", what, err)
		}
	}
	text := func(sel string) string {
		t.Helper()
		s, err := chromedp.Run(bctx, chromedp.Text(chromedp.CSS(sel)))
		if err != nil {
			t.Fatalf("text of %s: %v", sel, err)
		}
		return s
	}

	start := time.Now()
	run("open the map", chromedp.Navigate(c.url), chromedp.WaitVisible(chromedp.CSS("svg.gm-svg polygon.gm-shard")))
	t.Logf("first paint of %d shards: %v after navigation", len(snap.Shards), time.Since(start).Round(time.Millisecond))

	// One hexagon per shard, owners as GetRing places them, colours as the
	// legend gives them, one colour per owner.
	var shown []shownShard
	if _, err := waitFor(ctx, 5*time.Second, func(context.Context) (bool, error) {
		snap = c.snapshot(t)
		var err error
		if shown, err = chromedp.Run(bctx, chromedp.Evaluate[[]shownShard](shownShardsJS)); err != nil {
			return false, err
		}
		return len(shown) == len(snap.Shards), nil
	}); err != nil {
		t.Fatalf("the page draws %d hexagons, the snapshot has %d shards: %v", len(shown), len(snap.Shards), err)
	}
	if len(shown) < 10 {
		t.Fatalf("%d hexagons for 400 drivers over Manhattan, want tens", len(shown))
	}
	m := c.ring(t, ctx)
	legend, err := chromedp.Run(bctx, chromedp.Evaluate[map[string]string](legendJS))
	if err != nil {
		t.Fatal(err)
	}
	cells := map[string]bool{}
	colorOwner := map[string]string{}
	for _, s := range shown {
		if cells[s.Cell] {
			t.Fatalf("shard %s drawn twice", s.Cell)
		}
		cells[s.Cell] = true
		cell, err := parseCell(s.Cell)
		if err != nil {
			t.Fatal(err)
		}
		o, ok := m.Owner(cell)
		if !ok || o.ID != s.Owner {
			t.Fatalf("shard %s drawn as owned by %q, GetRing places it on %q", s.Cell, s.Owner, o.ID)
		}
		if s.Fill != legend[s.Owner] || s.Color != s.Fill {
			t.Fatalf("shard %s of %s filled %s (data-color %s), the legend gives %s", s.Cell, s.Owner, s.Fill, s.Color, legend[s.Owner])
		}
		if prev, ok := colorOwner[s.Fill]; ok && prev != s.Owner {
			t.Fatalf("owners %s and %s share colour %s", prev, s.Owner, s.Fill)
		}
		colorOwner[s.Fill] = s.Owner
	}
	if len(colorOwner) != 3 {
		t.Fatalf("%d owner colours over 3 matchers", len(colorOwner))
	}

	// A MoveShard through the admin API is on the page within 2 s.
	target := shown[0]
	to := "m1"
	if target.Owner == to {
		to = "m2"
	}
	rc, err := c.adminRP.MoveShard(ctx, &geomatchv1.MoveShardRequest{Cell: target.Cell, NodeId: to})
	if err != nil {
		t.Fatal(err)
	}
	took, err := waitFor(ctx, onScreenDeadline, func(context.Context) (bool, error) {
		owner, err := chromedp.Run(bctx, chromedp.Evaluate[string](fmt.Sprintf(`document.querySelector('polygon[data-cell="%s"]').getAttribute("data-owner")`, target.Cell)))
		return owner == to, err
	})
	if err != nil {
		t.Fatalf("MoveShard %s to %s (epoch %d → %d): not on the page: %v", target.Cell, to, rc.GetEpochBefore(), rc.GetEpoch(), err)
	}
	t.Logf("MoveShard on the page %v after the call returned", took.Round(time.Millisecond))
	timeline := text("#timeline")
	if !strings.Contains(timeline, "pinned to "+to) {
		t.Errorf("timeline does not show the pin: %q", timeline)
	}

	// An action from the page: refused without a token, and with a rider's.
	other := shown[1]
	moveTo := "m3"
	if other.Owner == moveTo {
		moveTo = "m1"
	}
	pick := fmt.Sprintf(`document.querySelector('polygon[data-cell="%s"]').dispatchEvent(new MouseEvent("click", {bubbles: true}))`, other.Cell)
	for _, tok := range []struct{ token, want string }{{"", "Unauthenticated"}, {c.rider, "PermissionDenied"}} {
		run("plan without an admin token",
			do(pick),
			setValue("token", tok.token),
			setValue("move-to", moveTo),
			chromedp.Click(chromedp.CSS("#btn-move")),
			chromedp.WaitVisible(chromedp.CSS(`#result[data-kind="error"]`)))
		msg := text("#result")
		if !strings.Contains(msg, tok.want) {
			t.Fatalf("plan with token %q: page says %q, want %s", tok.token, msg, tok.want)
		}
	}
	if m2 := c.ring(t, ctx); m2.Epoch() != rc.GetEpoch() {
		t.Fatalf("refused actions changed the ring: epoch %d → %d", rc.GetEpoch(), m2.Epoch())
	}

	// With the admin token: plan, see it, apply; GetRing has the pin.
	run("plan a move",
		setValue("token", c.admin),
		do(pick),
		setValue("move-to", moveTo),
		chromedp.Click(chromedp.CSS("#btn-move")),
		chromedp.WaitVisible(chromedp.CSS("#plan")))
	planText := text("#plan")
	if !strings.Contains(planText, "move "+other.Cell+" to "+moveTo) || !strings.Contains(planText, other.Cell) {
		t.Fatalf("plan does not show the move: %q", planText)
	}
	run("apply the move", chromedp.Click(chromedp.CSS("#btn-apply")), chromedp.WaitVisible(chromedp.CSS(`#result[data-kind="ok"]`)))
	if rd, err := c.adminRP.GetRing(ctx, &geomatchv1.GetRingRequest{}); err != nil || rd.GetPins()[other.Cell] != moveTo {
		t.Fatalf("after the page's move: GetRing pins %v (%v), want %s on %s", rd.GetPins(), err, other.Cell, moveTo)
	}

	// Drain m2 from its node row; GetRing has it drained.
	run("plan a drain",
		chromedp.Click(chromedp.CSS(`#nodes button[data-node="m2"]`)),
		chromedp.WaitVisible(chromedp.CSS("#plan")),
		chromedp.Click(chromedp.CSS("#btn-apply")),
		chromedp.WaitVisible(chromedp.CSS(`#result[data-kind="ok"]`)))
	rd, err := c.adminRP.GetRing(ctx, &geomatchv1.GetRingRequest{})
	if err != nil {
		t.Fatal(err)
	}
	for _, mem := range rd.GetMembers() {
		if mem.GetId() == "m2" && !mem.GetDrained() {
			t.Fatal("m2 not drained after the page's drain")
		}
	}
	// The page follows: no hexagon of m2 within 2 s.
	if _, err := waitFor(ctx, onScreenDeadline, func(context.Context) (bool, error) {
		n, err := chromedp.Run(bctx, chromedp.Evaluate[int](`document.querySelectorAll('polygon[data-owner="m2"]').length`))
		return n == 0, err
	}); err != nil {
		t.Fatalf("m2 still owns hexagons on the page after its drain: %v", err)
	}

	// Undrain, so that the screenshot shows three owners.
	run("undrain",
		chromedp.Click(chromedp.CSS(`#nodes button[data-node="m2"]`)),
		chromedp.WaitVisible(chromedp.CSS("#plan")),
		chromedp.Click(chromedp.CSS("#btn-apply")),
		chromedp.WaitVisible(chromedp.CSS(`#result[data-kind="ok"]`)))
	if _, err := waitFor(ctx, onScreenDeadline, func(context.Context) (bool, error) {
		n, err := chromedp.Run(bctx, chromedp.Evaluate[int](`document.querySelectorAll('polygon[data-owner="m2"]').length`))
		return n > 0, err
	}); err != nil {
		t.Fatalf("m2 owns no hexagon on the page after its undrain: %v", err)
	}

	// Split the busiest shard from the page: its 7 children are drawn at
	// resolution 8 in its place.
	busiest := snap.Shards[0]
	for _, s := range snap.Shards {
		if s.Drivers > busiest.Drivers {
			busiest = s
		}
	}
	run("split",
		do(fmt.Sprintf(`document.querySelector('polygon[data-cell="%s"]').dispatchEvent(new MouseEvent("click", {bubbles: true}))`, busiest.Cell)),
		chromedp.Click(chromedp.CSS("#btn-split")),
		chromedp.WaitVisible(chromedp.CSS("#plan")),
		chromedp.Click(chromedp.CSS("#btn-apply")),
		chromedp.WaitVisible(chromedp.CSS(`#result[data-kind="ok"]`)))
	if rd, err := c.adminRP.GetRing(ctx, &geomatchv1.GetRingRequest{}); err != nil || !slices.Contains(rd.GetSplits(), busiest.Cell) {
		t.Fatalf("after the page's split of %s: GetRing splits %v (%v)", busiest.Cell, rd.GetSplits(), err)
	}
	if _, err := waitFor(ctx, onScreenDeadline, func(context.Context) (bool, error) {
		n, err := chromedp.Run(bctx, chromedp.Evaluate[int](fmt.Sprintf(
			`document.querySelectorAll('polygon[data-res="%d"]').length + (document.querySelector('polygon[data-cell="%s"]') ? 100 : 0)`, busiest.Res+1, busiest.Cell)))
		return n == 7, err
	}); err != nil {
		t.Fatalf("the split of %s is not on the page as 7 children: %v", busiest.Cell, err)
	}

	// The fences overlay: a fence put through the API is drawn once the
	// page loads the fences with its token.
	if _, err := geomatchv1.NewFenceServiceClient(c.conn).PutFence(ctx, &geomatchv1.PutFenceRequest{Fence: &geomatchv1.Fence{
		FenceId: "midtown", Set: "zones", Shape: &geomatchv1.Fence_Circle{Circle: &geomatchv1.Circle{Center: &geomatchv1.LatLng{Lat: 40.755, Lng: -73.985}, RadiusM: 1200}},
	}}); err != nil {
		t.Fatal(err)
	}
	run("show fences", chromedp.Click(chromedp.CSS("#btn-fences")), chromedp.WaitVisible(chromedp.CSS(`#fence-note[data-fences="1"]`)),
		chromedp.WaitReady(chromedp.CSS(`g.gm-overlay[data-name="fences"] path`)))

	// The matchers report the children's drivers at their next probe.
	if _, err := waitFor(ctx, 20*time.Second, func(context.Context) (bool, error) {
		n, err := chromedp.Run(bctx, chromedp.Evaluate[int](fmt.Sprintf(
			`Array.prototype.filter.call(document.querySelectorAll('polygon[data-res="%d"]'), function (p) { return p.getAttribute("data-drivers") !== "0"; }).length`, busiest.Res+1)))
		return n > 0, err
	}); err != nil {
		t.Fatalf("no split child of %s shows drivers: %v", busiest.Cell, err)
	}

	png, err := chromedp.Run(bctx, chromedp.CaptureScreenshot())
	if err != nil {
		t.Fatalf("screenshot: %v", err)
	}
	dir := os.Getenv(artifactsEnv)
	if dir == "" {
		dir = t.TempDir()
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "shard-map.png")
	if err := os.WriteFile(path, png, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("screenshot: %s (%d bytes)", path, len(png))
	if p := os.Getenv(screenshotEnv); p != "" {
		if err := os.WriteFile(p, png, 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// setValue sets the value of the input or select element with id.
func setValue(id, v string) chromedp.Action[chromedp.Void] {
	q, _ := json.Marshal(v)
	return do(fmt.Sprintf(`document.getElementById(%q).value = %s`, id, q))
}

// do evaluates js for its effect.
func do(js string) chromedp.Action[chromedp.Void] {
	return chromedp.Func(func(ctx context.Context, t *chromedp.Target) error {
		_, err := chromedp.Evaluate[any](js)(ctx, t)
		return err
	})
}

// TestBrowserReconnectsAfterRouterRestart: the page outlives its router.
// The router (and its HTTP listener) stops; the page says it is
// reconnecting; a new router on the same address comes up with drivers
// elsewhere, and the page shows the new cluster's shards without a reload.
func TestBrowserReconnectsAfterRouterRestart(t *testing.T) {
	browser := chromium(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	addr, err := servertest.FreeAddr("127.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	first := startMapCluster(t, ctx, addr, 40.75, -73.98) // Manhattan
	first.loaded(t, ctx)
	bctx := newBrowser(t, ctx, browser)
	if err := chromedp.Do(bctx, chromedp.Navigate(first.url), chromedp.WaitVisible(chromedp.CSS(`#status[data-state="live"]`))); err != nil {
		t.Fatal(err)
	}
	state := func() (string, error) {
		return chromedp.Run(bctx, chromedp.Evaluate[string](`document.getElementById("status").getAttribute("data-state")`))
	}

	first.stop()
	if _, err := waitFor(ctx, 20*time.Second, func(context.Context) (bool, error) {
		s, err := state()
		return s == "reconnecting", err
	}); err != nil {
		t.Fatalf("the page does not say it lost its router: %v", err)
	}

	var second *mapCluster
	if _, err := waitFor(ctx, 20*time.Second, func(context.Context) (bool, error) {
		// The address is free again once the first listener closed.
		l, err := net.Listen("tcp", addr)
		if err != nil {
			return false, nil
		}
		return true, l.Close()
	}); err != nil {
		t.Fatal(err)
	}
	second = startMapCluster(t, ctx, addr, 40.68, -73.95) // Brooklyn
	want := second.loaded(t, ctx)
	cells := map[string]bool{}
	for _, s := range want.Shards {
		cells[s.Cell] = true
	}
	took, err := waitFor(ctx, 30*time.Second, func(context.Context) (bool, error) {
		shown, err := chromedp.Run(bctx, chromedp.Evaluate[[]shownShard](shownShardsJS))
		if err != nil || len(shown) != len(cells) {
			return false, err
		}
		for _, s := range shown {
			if !cells[s.Cell] {
				return false, nil
			}
		}
		st, err := state()
		return st == "live", err
	})
	if err != nil {
		t.Fatalf("the page never showed the restarted router's %d shards: %v", len(cells), err)
	}
	t.Logf("the page showed the new router's shards %v after its snapshot had them", took.Round(time.Millisecond))
}

func parseCell(s string) (shardmap.Cell, error) { return membership.ParseCell(s) }

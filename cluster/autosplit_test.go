package cluster_test

import (
	"context"
	"fmt"
	"log/slog"
	"math"
	"math/rand/v2"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/uber/h3-go/v4"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/geomatch/geomatch/cluster"
	"github.com/geomatch/geomatch/internal/geo"
	"github.com/geomatch/geomatch/internal/servertest"
	"github.com/geomatch/geomatch/matcher"
	geomatchv1 "github.com/geomatch/geomatch/proto/geomatch/v1"
	"github.com/geomatch/geomatch/shardmap"
	"github.com/geomatch/geomatch/shardmap/autosplit"
)

// TestAutosplitUnderLoadLosesNothing: drivers keep streaming updates and
// riders keep searching while the autosplit controller splits a hot shard
// and, once it cools, merges it back. Not one update may be rejected, not
// one nearby search may fail or come back partial, and afterwards every
// driver is found where it last reported.
func TestAutosplitUnderLoadLosesNothing(t *testing.T) {
	if testing.Short() {
		t.Skip("a split and a merge under load take about 20 s")
	}
	as := autosplit.DefaultConfig()
	as.SplitThreshold = 100 // load units/s
	as.QueryWeight = 0
	as.SplitWindow = time.Second
	as.MergeWindow = 3 * time.Second
	as.ShardCooldown = 2 * time.Second
	as.ClusterInterval = time.Second
	var logs servertest.Output
	c, err := cluster.StartDev(cluster.DevConfig{
		Matchers: 3, Doc: shardmap.Doc{ShardRes: 7, MaxSplitDepth: 1}, Autosplit: &as,
		Matcher: func(mc *matcher.Config) { mc.RateWindow = 500 * time.Millisecond },
		Log:     slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelInfo})),
	})
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
	drivers := geomatchv1.NewDriverServiceClient(conn)
	riders := geomatchv1.NewRiderServiceClient(conn)

	// 400 drivers in one shard (the hot spot) and 200 around the city.
	center := geo.LatLng{Lat: 40.7580, Lng: -73.9855}
	hot := shardmap.Cell(h3.LatLngToCell(h3.LatLng{Lat: center.Lat, Lng: center.Lng}, 7))
	r := rand.New(rand.NewPCG(3, 33))
	type drv struct {
		id  string
		pos geo.LatLng
	}
	var fleet []drv
	for i := 0; len(fleet) < 400; i++ {
		p := near(r, center, 900)
		if shardmap.Cell(h3.LatLngToCell(h3.LatLng{Lat: p.Lat, Lng: p.Lng}, 7)) == hot {
			fleet = append(fleet, drv{id: fmt.Sprintf("hot-%03d", i), pos: p})
		}
	}
	nHot := len(fleet)
	for i := range 200 {
		fleet = append(fleet, drv{id: fmt.Sprintf("bg-%03d", i), pos: near(r, center, 8000)})
	}
	var mu sync.Mutex // guards fleet's positions
	var ts atomic.Int64
	ts.Store(time.Now().UnixMilli())
	var updates, rejected, failedUpdates atomic.Int64
	// send reports the given drivers, each moved a few meters.
	send := func(idx []int) {
		req := &geomatchv1.UpdateLocationsRequest{}
		mu.Lock()
		for _, i := range idx {
			fleet[i].pos = near(r, fleet[i].pos, 5)
			if i < nHot && shardmap.Cell(h3.LatLngToCell(h3.LatLng{Lat: fleet[i].pos.Lat, Lng: fleet[i].pos.Lng}, 7)) != hot {
				fleet[i].pos = center // stay in the hot shard
			}
			p := fleet[i].pos
			req.Updates = append(req.Updates, &geomatchv1.LocationUpdate{DriverId: fleet[i].id,
				Position: &geomatchv1.LatLng{Lat: p.Lat, Lng: p.Lng}, TimestampMs: ts.Add(1), VehicleClass: "standard"})
		}
		mu.Unlock()
		resp, err := drivers.UpdateLocations(ctx, req)
		updates.Add(int64(len(req.Updates)))
		if err != nil {
			failedUpdates.Add(int64(len(req.Updates)))
			t.Errorf("UpdateLocations: %v", err)
			return
		}
		if n := len(resp.GetRejected()); n > 0 {
			rejected.Add(int64(n))
			t.Errorf("UpdateLocations: %d rejected, first %v", n, resp.GetRejected()[0])
		}
	}
	all := make([]int, len(fleet))
	for i := range all {
		all[i] = i
	}
	send(all)

	// Riders search around the hot spot all along.
	var searches, failedSearches atomic.Int64
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		qr := rand.New(rand.NewPCG(4, 44))
		for {
			select {
			case <-stop:
				return
			default:
			}
			q := near(qr, center, 1200)
			resp, err := riders.NearbyDrivers(ctx, &geomatchv1.NearbyDriversRequest{
				Position: &geomatchv1.LatLng{Lat: q.Lat, Lng: q.Lng}, Limit: 20, RadiusM: 1500})
			searches.Add(1)
			if err != nil || resp.GetPartial() || len(resp.GetMissingShards()) > 0 {
				failedSearches.Add(1)
				t.Errorf("NearbyDrivers: %v (partial %v)", err, resp.GetPartial())
			}
			time.Sleep(5 * time.Millisecond)
		}
	}()
	defer func() { close(stop); wg.Wait() }()

	isShard := func() bool { m, _ := c.Membership.Current(); return m.Layout().IsShard(hot) }
	// Hot: every hot driver reports 5 times a second (2,000 updates/s).
	hotIdx := all[:nHot]
	deadline := time.Now().Add(40 * time.Second)
	for isShard() {
		if time.Now().After(deadline) {
			t.Fatalf("shard %s not split after 40 s of 2,000 updates/s (threshold 100/s); logs:\n%s", hot, logs.String())
		}
		send(hotIdx)
		time.Sleep(200 * time.Millisecond)
	}
	// Keep it hot a little longer, across the hand-over.
	for range 10 {
		send(hotIdx)
		time.Sleep(200 * time.Millisecond)
	}
	// Cool: 25 hot drivers every 2 s (12.5 updates/s, under the merge level
	// of 50/s), in turn, and the background, so nobody expires.
	deadline = time.Now().Add(40 * time.Second)
	for round := 0; !isShard(); round++ {
		if time.Now().After(deadline) {
			t.Fatalf("shard %s not merged after 40 s under the merge level; logs:\n%s", hot, logs.String())
		}
		idx := append([]int(nil), all[nHot:]...)
		for k := range 25 {
			idx = append(idx, (round*25+k)%nHot)
		}
		send(idx)
		time.Sleep(2 * time.Second)
	}
	send(all)
	close(stop)
	wg.Wait()
	stop = make(chan struct{}) // for the deferred close

	out := logs.String()
	for _, want := range []string{"action=split cell=" + hot.String(), "action=merge cell=" + hot.String()} {
		if !strings.Contains(out, `msg="autosplit decision" logger=autosplit `+want) {
			t.Errorf("no %q decision logged:\n%s", want, out)
		}
	}
	// Brute force: every driver is found at its last position, nothing
	// else is there.
	total := 0
	for _, n := range c.Nodes {
		total += n.Index().Len()
	}
	if total != len(fleet) {
		t.Errorf("the matchers hold %d drivers, want %d", total, len(fleet))
	}
	lost := 0
	for _, d := range fleet {
		resp, err := riders.NearbyDrivers(ctx, &geomatchv1.NearbyDriversRequest{
			Position: &geomatchv1.LatLng{Lat: d.pos.Lat, Lng: d.pos.Lng}, Limit: 1000, RadiusM: 1})
		found := false
		for _, n := range resp.GetDrivers() {
			found = found || n.GetDriverId() == d.id
		}
		if err != nil || !found {
			lost++
		}
	}
	t.Logf("%d updates (%d rejected, %d failed), %d nearby searches (%d failed), %d drivers lost", updates.Load(), rejected.Load(), failedUpdates.Load(), searches.Load(), failedSearches.Load(), lost)
	if rejected.Load() > 0 || failedUpdates.Load() > 0 || failedSearches.Load() > 0 || lost > 0 {
		t.Fatalf("the split and merge lost work: %d rejected and %d failed updates, %d failed searches, %d drivers lost",
			rejected.Load(), failedUpdates.Load(), failedSearches.Load(), lost)
	}
}

// near returns a point uniformly within radiusM of p (flat approximation).
func near(r *rand.Rand, p geo.LatLng, radiusM float64) geo.LatLng {
	d := radiusM * math.Sqrt(r.Float64())
	a := 2 * math.Pi * r.Float64()
	return geo.LatLng{Lat: p.Lat + d*math.Cos(a)/111_320, Lng: p.Lng + d*math.Sin(a)/(111_320*math.Cos(p.Lat*math.Pi/180))}
}

package main

import (
	"context"
	"fmt"
	"maps"
	"math/rand/v2"
	"os/exec"
	"regexp"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/hashicorp/consul/api"

	"github.com/geomatch/geomatch/internal/consultest"
	"github.com/geomatch/geomatch/internal/geo"
	"github.com/geomatch/geomatch/internal/redistest"
	"github.com/geomatch/geomatch/membership"
	geomatchv1 "github.com/geomatch/geomatch/proto/geomatch/v1"
	"github.com/geomatch/geomatch/shardmap"
	"github.com/geomatch/geomatch/store"
)

// routerWiring is the line a router started by cluster.StartRouter logs.
var routerWiring = regexp.MustCompile(`msg="router started".* matchers="fleet client" services=DriverService,RiderService,AdminService,FenceService,EventService via=cluster.StartRouter`)

// cellOf parses an H3 cell in hex.
func cellOf(t *testing.T, s string) shardmap.Cell {
	t.Helper()
	c, err := membership.ParseCell(s)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// consulCluster is a cluster of real processes with its membership in a
// real Consul: matchers and routers with --consul and --redis.
type consulCluster struct {
	t        *testing.T
	consul   *consultest.Agent
	redis    string
	matchers map[string]*proc
	addrs    map[string]string
	routers  []string
	ring     membership.ConsulConfig
	// client reads the ring for the test: one client, so its idle
	// connections are reused (a client per read would leave one open for
	// 90 s each, and the agent refuses a client address past 200).
	client *api.Client
}

func (c *consulCluster) startMatcher(id, host string) {
	c.t.Helper()
	addr := c.addrs[id]
	if addr == "" {
		addr = freeAddr(c.t, host)
		c.addrs[id] = addr
	}
	p := start(c.t, "matcher "+id, "matcher", "--id", id, "--listen", addr, "--consul", c.consul.Addr,
		"--redis", c.redis, "--offer-timeout", "2s", "--insecure-internal")
	p.waitFor(listening, 60*time.Second)
	c.matchers[id] = p
}

// admin runs `geomatch admin` against the first router only (changes go
// through its AdminService) and returns its output and error.
func (c *consulCluster) admin(args ...string) (string, error) {
	all := append([]string{"admin", "--target", c.routers[0], "--timeout", "5s"}, args...)
	out, err := exec.Command(binary, all...).CombinedOutput()
	return string(out), err
}

// adminConsul runs `geomatch admin` with --consul too: status and ring
// read Consul.
func (c *consulCluster) adminConsul(args ...string) (string, error) {
	return c.admin(append([]string{"--consul", c.consul.Addr}, args...)...)
}

// ringMembers returns the ring's non-drained members and epoch as read
// from Consul.
func (c *consulCluster) ringRecord(ctx context.Context) (membership.Record, error) {
	rec, _, _, err := membership.ReadRing(ctx, c.client, c.ring)
	return rec, err
}

// fleetState is what the test client knows of the fleet: the last
// position the cluster acknowledged for each driver.
type fleetState struct {
	mu       sync.RWMutex // held for writing during an update round
	pos      []geo.LatLng
	ts       []int64
	rejected atomic.Int64 // updates refused during the whole test
	failed   atomic.Int64 // UpdateLocations calls that failed
	rounds   atomic.Int64
}

func fleetID(i int) string { return fmt.Sprintf("f%05d", i) }

// keepUpdating moves every driver a little each interval, through the
// routers in turn, until stop; rejected updates leave the driver's known
// position unchanged.
func keepUpdating(t *testing.T, fs *fleetState, routers []geomatchv1.DriverServiceClient, interval time.Duration, stop <-chan struct{}, wg *sync.WaitGroup) {
	defer wg.Done()
	r := rand.New(rand.NewPCG(3, 33))
	tick := time.NewTicker(interval)
	defer tick.Stop()
	for round := int64(1); round < 100_000; round++ {
		select {
		case <-stop:
			return
		case <-tick.C:
		}
		fs.mu.Lock()
		next := make([]geo.LatLng, len(fs.pos))
		req := &geomatchv1.UpdateLocationsRequest{}
		ts := time.Now().UnixMilli()
		for i, p := range fs.pos {
			next[i] = geo.LatLng{Lat: p.Lat + (r.Float64()-0.5)*0.002, Lng: p.Lng + (r.Float64()-0.5)*0.002}
			req.Updates = append(req.Updates, &geomatchv1.LocationUpdate{DriverId: fleetID(i),
				Position: &geomatchv1.LatLng{Lat: next[i].Lat, Lng: next[i].Lng}, TimestampMs: ts})
		}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		resp, err := routers[round%int64(len(routers))].UpdateLocations(ctx, req)
		cancel()
		if err != nil {
			fs.failed.Add(1)
			t.Logf("update round %d failed: %v", round, err)
			fs.mu.Unlock()
			continue
		}
		refused := map[int32]bool{}
		for _, rj := range resp.GetRejected() {
			refused[rj.GetIndex()] = true
		}
		fs.rejected.Add(int64(len(refused)))
		for i := range next {
			if !refused[int32(i)] {
				fs.pos[i], fs.ts[i] = next[i], ts
			}
		}
		fs.rounds.Add(1)
		fs.mu.Unlock()
	}
}

// mismatch runs queries over the fleet's area through every router and
// returns the first difference from brute force over the acknowledged
// positions, "" when every answer is exact.
func mismatch(fs *fleetState, riders []geomatchv1.RiderServiceClient, r *rand.Rand, queries int) string {
	fs.mu.RLock()
	defer fs.mu.RUnlock()
	pts := make([]geo.Point, len(fs.pos))
	for i, p := range fs.pos {
		pts[i] = geo.Point{ID: fleetID(i), Pos: p}
	}
	for q := range queries {
		center := geo.LatLng{Lat: 40.62 + r.Float64()*0.2, Lng: -74.05 + r.Float64()*0.2}
		radius, k := 2000.0, 10
		if q%4 == 0 {
			radius, k = 5000, 50
		}
		want := geo.NearestBrute(pts, center, radius, k)
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		resp, err := riders[q%len(riders)].NearbyDrivers(ctx, &geomatchv1.NearbyDriversRequest{
			Position: &geomatchv1.LatLng{Lat: center.Lat, Lng: center.Lng}, Limit: int32(k), RadiusM: radius})
		cancel()
		if err != nil {
			return fmt.Sprintf("query %d: %v", q, err)
		}
		got := resp.GetDrivers()
		if len(got) != len(want) {
			return fmt.Sprintf("query %d at %v r=%v: %d drivers, brute force %d", q, center, radius, len(got), len(want))
		}
		for i := range want {
			if got[i].GetDriverId() != want[i].ID || got[i].GetDistanceM() != want[i].DistanceM {
				return fmt.Sprintf("query %d at %v: result %d is %s at %.1f m, brute force %s at %.1f m", q, center, i, got[i].GetDriverId(), got[i].GetDistanceM(), want[i].ID, want[i].DistanceM)
			}
		}
	}
	return ""
}

// waitExact polls until queries equal brute force, and returns how long
// it took.
func waitExact(t *testing.T, fs *fleetState, riders []geomatchv1.RiderServiceClient, within time.Duration, what string) time.Duration {
	t.Helper()
	r := rand.New(rand.NewPCG(5, 55))
	start := time.Now()
	last := ""
	for time.Since(start) < within {
		if last = mismatch(fs, riders, r, 40); last == "" {
			return time.Since(start)
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("%s: answers still differ from brute force after %v: %s", what, within, last)
	return 0
}

// shardOwners returns owner per shard cell (shards with drivers) from a
// router.
func shardOwners(t *testing.T, admin geomatchv1.AdminServiceClient) map[string]string {
	t.Helper()
	resp, err := admin.ListShards(ctxFor(t, 10*time.Second), &geomatchv1.ListShardsRequest{})
	if err != nil {
		t.Fatalf("ListShards: %v", err)
	}
	out := map[string]string{}
	for _, s := range resp.GetShards() {
		if s.GetDrivers() > 0 {
			out[s.GetCell()] = s.GetOwner()
		}
	}
	return out
}

func countByOwner(owners map[string]string) map[string]int {
	c := map[string]int{}
	for _, o := range owners {
		c[o]++
	}
	return c
}

// TestConsulClusterProcesses is the distributed acceptance test: 1 Consul,
// 1 Redis, 3 matchers and 2 routers as separate processes on 127.0.0.x,
// under continuous location updates and queries. It SIGKILLs a matcher,
// adds a fourth, drains one with the admin CLI, splits a hot shard and
// pauses Consul for 10 s, checking answers against brute force and trips
// against the store throughout, and prints the figures.
func TestConsulClusterProcesses(t *testing.T) {
	if testing.Short() {
		t.Skip("multi-process cluster test (about a minute)")
	}
	agent := consultest.Start(t)
	c := &consulCluster{t: t, consul: agent, redis: redistest.Start(t), matchers: map[string]*proc{}, addrs: map[string]string{},
		ring: membership.ConsulConfig{Addr: agent.Addr}}
	var err error
	if c.client, err = membership.NewConsulClient(c.ring); err != nil {
		t.Fatal(err)
	}
	c.startMatcher("m1", "127.0.0.2")
	c.startMatcher("m2", "127.0.0.3")
	c.startMatcher("m3", "127.0.0.4")
	for _, id := range []string{"m1", "m2", "m3"} {
		c.matchers[id].waitFor(regexp.MustCompile(`msg="matcher started".* node=`+id+` search="fleet client, own shards in process" services=MatcherService,DispatchService via=cluster.StartMatcher`), 10*time.Second)
	}
	var drivers []geomatchv1.DriverServiceClient
	var riders []geomatchv1.RiderServiceClient
	var admins []geomatchv1.AdminServiceClient
	for i := range 2 {
		rp := start(t, fmt.Sprintf("router %d", i+1), "router", "--listen", "127.0.0.1:0", "--consul", agent.Addr, "--redis", c.redis, "--auth=off", "--insecure-internal")
		addr := rp.waitFor(listening, 60*time.Second)[1]
		// The same composition root as geomatch dev (cluster's
		// TestDevStartsThroughStartMatcherAndStartRouter checks the same
		// lines of an all-in-one cluster).
		rp.waitFor(routerWiring, 10*time.Second)
		c.routers = append(c.routers, addr)
		conn := dial(t, addr)
		drivers = append(drivers, geomatchv1.NewDriverServiceClient(conn))
		riders = append(riders, geomatchv1.NewRiderServiceClient(conn))
		admins = append(admins, geomatchv1.NewAdminServiceClient(conn))
	}
	st, err := store.NewRedis(context.Background(), store.RedisOptions{Addr: c.redis})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })

	// Wait until the ring lists the three matchers.
	if !consultest.WaitFor(context.Background(), 30*time.Second, func() bool {
		rec, err := c.ringRecord(context.Background())
		return err == nil && len(rec.Doc.Members) == 3
	}) {
		t.Fatal("ring never listed the three matchers")
	}

	// A fleet over New York, acknowledged in full.
	const n = 3000
	r := rand.New(rand.NewPCG(1, 11))
	fs := &fleetState{pos: make([]geo.LatLng, n), ts: make([]int64, n)}
	req := &geomatchv1.UpdateLocationsRequest{}
	now := time.Now().UnixMilli()
	for i := range n {
		fs.pos[i] = geo.LatLng{Lat: 40.60 + r.Float64()*0.25, Lng: -74.08 + r.Float64()*0.25}
		fs.ts[i] = now
		req.Updates = append(req.Updates, &geomatchv1.LocationUpdate{DriverId: fleetID(i),
			Position: &geomatchv1.LatLng{Lat: fs.pos[i].Lat, Lng: fs.pos[i].Lng}, TimestampMs: now})
	}
	if resp, err := drivers[0].UpdateLocations(ctxFor(t, 20*time.Second), req); err != nil || resp.GetAccepted() != n {
		t.Fatalf("load fleet: %v %v", resp, err)
	}

	// Rides in Boston (away from the fleet's queries): drivers whose apps
	// accept, and riders that get them assigned.
	var trips []*geomatchv1.Trip
	// Each cab's app connects, then reports through the router holding its
	// stream: only drivers with a stream are offered rides.
	for i := range 6 {
		driverApp(t, drivers[i%2], fmt.Sprintf("cab%d", i), true)
		rideReq := &geomatchv1.UpdateLocationsRequest{Updates: []*geomatchv1.LocationUpdate{{DriverId: fmt.Sprintf("cab%d", i),
			Position: &geomatchv1.LatLng{Lat: 42.3601 + 0.003*float64(i), Lng: -71.0589}, TimestampMs: now}}}
		if resp, err := drivers[i%2].UpdateLocations(ctxFor(t, 10*time.Second), rideReq); err != nil || resp.GetAccepted() != 1 {
			t.Fatalf("load cab %d: %v %v", i, resp, err)
		}
	}
	for i := range 4 {
		p := &geomatchv1.LatLng{Lat: 42.3601, Lng: -71.0589}
		tr, err := riders[i%2].RequestRide(ctxFor(t, 30*time.Second), &geomatchv1.RequestRideRequest{
			RequestId: fmt.Sprintf("ride%d", i), RiderId: fmt.Sprintf("rider%d", i), Pickup: p, Dropoff: p, WaitMs: 10000})
		if err != nil || tr.GetState() != geomatchv1.TripState_TRIP_STATE_ASSIGNED {
			t.Fatalf("ride %d: %v %v", i, tr, err)
		}
		trips = append(trips, tr)
	}
	checkTrips := func(when string) {
		t.Helper()
		byDriver := map[string]string{}
		for _, tr := range trips {
			got, err := riders[0].GetTrip(ctxFor(t, 10*time.Second), &geomatchv1.GetTripRequest{TripId: tr.GetTripId()})
			if err != nil || got.GetState() != geomatchv1.TripState_TRIP_STATE_ASSIGNED || got.GetDriverId() != tr.GetDriverId() {
				t.Fatalf("%s: trip %s is %v (%v), want assigned to %s", when, tr.GetTripId(), got, err, tr.GetDriverId())
			}
			if other, dup := byDriver[got.GetDriverId()]; dup {
				t.Fatalf("%s: driver %s holds trips %s and %s", when, got.GetDriverId(), other, tr.GetTripId())
			}
			byDriver[got.GetDriverId()] = tr.GetTripId()
			d, err := st.Driver(context.Background(), got.GetDriverId())
			if err != nil || d.Status != store.StatusOnTrip || d.TripID != tr.GetTripId() {
				t.Fatalf("%s: driver %s in the store: %+v %v, want on trip %s", when, got.GetDriverId(), d, err, tr.GetTripId())
			}
		}
	}
	checkTrips("before the kill")
	waitExact(t, fs, riders, 20*time.Second, "steady state")

	// Continuous load from here on.
	const interval = time.Second
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go keepUpdating(t, fs, drivers, interval, stop, &wg)
	t.Cleanup(func() {
		select {
		case <-stop:
		default:
			close(stop)
		}
		wg.Wait()
	})
	time.Sleep(2 * interval)

	// 1. SIGKILL a matcher.
	before := shardOwners(t, admins[0])
	c.matchers["m3"].kill()
	killed := time.Now()
	var served time.Duration
	if !consultest.WaitFor(context.Background(), 20*time.Second, func() bool {
		rec, err := c.ringRecord(context.Background())
		if err != nil {
			return false
		}
		for _, m := range rec.Doc.Members {
			if m.ID == "m3" {
				return false
			}
		}
		served = time.Since(killed)
		return true
	}) {
		t.Fatal("m3 never left the ring")
	}
	// Served: a search over the whole fleet succeeds (no owner unreachable).
	if !consultest.WaitFor(context.Background(), 20*time.Second, func() bool {
		_, err := riders[0].NearbyDrivers(ctxFor(t, 5*time.Second), &geomatchv1.NearbyDriversRequest{
			Position: &geomatchv1.LatLng{Lat: 40.72, Lng: -73.95}, Limit: 10, RadiusM: 30000})
		return err == nil
	}) {
		t.Fatal("m3's shards never served again")
	}
	served = time.Since(killed)
	exactAfter := waitExact(t, fs, riders, 3*interval+5*time.Second, "after SIGKILL of m3")
	t.Logf("SIGKILL m3 (%d of %d active shards): ring without it and its shards served after %v; answers equal brute force %v later (update interval %v)",
		countByOwner(before)["m3"], len(before), served.Round(10*time.Millisecond), exactAfter.Round(10*time.Millisecond), interval)
	if served > 10*time.Second {
		t.Errorf("failover took %v", served)
	}
	checkTrips("after SIGKILL of m3")

	// 2. A fourth matcher joins: about a quarter of the shards move, and
	// no update is lost (answers are exact at once, without a new round).
	c.startMatcher("m3", "127.0.0.4") // m3 comes back first: 3 members
	if !consultest.WaitFor(context.Background(), 20*time.Second, func() bool {
		rec, err := c.ringRecord(context.Background())
		return err == nil && len(rec.Doc.Members) == 3
	}) {
		t.Fatal("m3 did not rejoin")
	}
	waitExact(t, fs, riders, 3*interval+5*time.Second, "after m3 rejoined")
	threeOwners := shardOwners(t, admins[0])
	fs.mu.Lock() // no update round during the move
	c.startMatcher("m4", "127.0.0.5")
	if !consultest.WaitFor(context.Background(), 20*time.Second, func() bool {
		rec, err := c.ringRecord(context.Background())
		return err == nil && len(rec.Doc.Members) == 4
	}) {
		fs.mu.Unlock()
		t.Fatal("m4 did not join")
	}
	fs.mu.Unlock()
	var moved int
	if !consultest.WaitFor(context.Background(), 10*time.Second, func() bool {
		four := shardOwners(t, admins[0])
		moved = 0
		for cell, o := range threeOwners {
			if four[cell] != o {
				moved++
			}
		}
		return countByOwner(four)["m4"] > 0
	}) {
		t.Fatal("m4 owns nothing")
	}
	if msg := mismatch(fs, riders, rand.New(rand.NewPCG(9, 9)), 60); msg != "" {
		t.Fatalf("right after m4 joined (no update since): %s", msg)
	}
	four := shardOwners(t, admins[0])
	t.Logf("m4 joined: %d of %d active shards moved (%.3f; ideal 0.25); shards per node %v", moved, len(threeOwners),
		float64(moved)/float64(len(threeOwners)), countByOwner(four))

	// 3. Drain m1 with the CLI under load: no failed request, m1 ends
	// with nothing.
	failedBefore, rejectedBefore := fs.failed.Load(), fs.rejected.Load()
	out, err := c.admin("drain", "m1")
	if err != nil {
		t.Fatalf("admin drain m1: %v\n%s", err, out)
	}
	t.Logf("admin drain m1: %s", strings.TrimSpace(out))
	if !consultest.WaitFor(context.Background(), 15*time.Second, func() bool { return countByOwner(shardOwners(t, admins[0]))["m1"] == 0 }) {
		t.Fatalf("m1 still owns shards after the drain: %v", countByOwner(shardOwners(t, admins[0])))
	}
	waitExact(t, fs, riders, 3*interval+5*time.Second, "after draining m1")
	time.Sleep(2 * interval)
	if f, rj := fs.failed.Load()-failedBefore, fs.rejected.Load()-rejectedBefore; f != 0 || rj != 0 {
		t.Fatalf("drain: %d update calls failed, %d updates refused", f, rj)
	}
	status, err := c.adminConsul("status")
	if err != nil {
		t.Fatalf("admin status: %v\n%s", err, status)
	}
	if !regexp.MustCompile(`m1\s+\S+\s+passing\s+drained\s+1\s+0\s+0`).MatchString(status) {
		t.Fatalf("admin status after the drain:\n%s", status)
	}

	// Split the busiest shard: its children go to several nodes.
	hot, most := "", int64(0)
	resp, err := admins[0].ListShards(ctxFor(t, 10*time.Second), &geomatchv1.ListShardsRequest{})
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range resp.GetShards() {
		if s.GetDrivers() > most {
			hot, most = s.GetCell(), s.GetDrivers()
		}
	}
	out, err = c.admin("split", hot)
	if err != nil {
		t.Fatalf("admin split %s: %v\n%s", hot, err, out)
	}
	owners := map[string]bool{}
	for _, line := range strings.Split(out, "\n") {
		if f := strings.Fields(line); len(f) == 2 && f[0] != "CHILD" {
			owners[f[1]] = true
		}
	}
	if len(owners) < 2 {
		t.Fatalf("split of %s: children all on one node:\n%s", hot, out)
	}
	t.Logf("split of the busiest shard %s (%d drivers): children served by %d nodes", hot, most, len(owners))
	waitExact(t, fs, riders, 3*interval+5*time.Second, "after the split")

	// Move a shard with MoveShard over gRPC: answered at a new epoch, in
	// Consul's ring record and on both routers, and its drivers follow.
	moving := shardOwners(t, admins[0])
	cell, to := "", ""
	for _, cl := range slices.Sorted(maps.Keys(moving)) {
		if o := moving[cl]; o == "m2" || o == "m3" {
			cell, to = cl, map[string]string{"m2": "m3", "m3": "m2"}[o]
			break
		}
	}
	if cell == "" {
		t.Fatalf("no shard on m2 or m3: %v", moving)
	}
	rc, err := admins[0].MoveShard(ctxFor(t, 15*time.Second), &geomatchv1.MoveShardRequest{Cell: cell, NodeId: to})
	if err != nil {
		t.Fatalf("MoveShard %s to %s: %v", cell, to, err)
	}
	if rc.GetEpoch() <= rc.GetEpochBefore() || len(rc.GetShards()) != 1 || rc.GetShards()[0].GetOwner() != to || rc.GetShards()[0].GetOwnerBefore() != moving[cell] {
		t.Fatalf("MoveShard %s to %s: %v", cell, to, rc)
	}
	if rec, err := c.ringRecord(context.Background()); err != nil || rec.Doc.Epoch < rc.GetEpoch() || rec.Doc.Pins[cellOf(t, cell)] != to {
		t.Fatalf("ring in consul after MoveShard at epoch %d: %+v %v", rc.GetEpoch(), rec.Doc, err)
	}
	if d, err := admins[0].GetRing(ctxFor(t, 5*time.Second), &geomatchv1.GetRingRequest{}); err != nil || d.GetEpoch() < rc.GetEpoch() || d.GetPins()[cell] != to {
		t.Fatalf("GetRing right after MoveShard at epoch %d: %v %v", rc.GetEpoch(), d, err)
	}
	if !consultest.WaitFor(context.Background(), 10*time.Second, func() bool {
		d, err := admins[1].GetRing(ctxFor(t, 5*time.Second), &geomatchv1.GetRingRequest{})
		return err == nil && d.GetEpoch() >= rc.GetEpoch() && d.GetPins()[cell] == to
	}) {
		t.Fatalf("the other router never saw epoch %d", rc.GetEpoch())
	}
	if !consultest.WaitFor(context.Background(), 15*time.Second, func() bool { return shardOwners(t, admins[1])[cell] == to }) {
		t.Fatalf("shard %s not held by %s after MoveShard: %v", cell, to, shardOwners(t, admins[1]))
	}
	waitExact(t, fs, riders, 3*interval+5*time.Second, "after MoveShard")
	t.Logf("MoveShard %s %s -> %s over gRPC: ring epoch %d -> %d", cell, rc.GetShards()[0].GetOwnerBefore(), to, rc.GetEpochBefore(), rc.GetEpoch())

	// 4. Consul stops for 10 s: serving continues on the last ring, admin
	// commands fail clearly, and everything recovers.
	failedBefore, rejectedBefore = fs.failed.Load(), fs.rejected.Load()
	if err := agent.Pause(); err != nil {
		t.Fatal(err)
	}
	paused := time.Now()
	out, err = c.adminConsul("--timeout", "2s", "status")
	if err == nil || !strings.Contains(out, "consul at "+agent.Addr) {
		t.Fatalf("admin status with Consul stopped: %v\n%s", err, out)
	}
	t.Logf("admin status with Consul stopped: %s", strings.TrimSpace(out))
	for time.Since(paused) < 10*time.Second {
		if msg := mismatch(fs, riders, rand.New(rand.NewPCG(4, 4)), 20); msg != "" && !strings.Contains(msg, "brute force") {
			t.Fatalf("with Consul stopped: %s", msg)
		}
		time.Sleep(500 * time.Millisecond)
	}
	if err := agent.Resume(); err != nil {
		t.Fatal(err)
	}
	if f, rj := fs.failed.Load()-failedBefore, fs.rejected.Load()-rejectedBefore; f != 0 || rj != 0 {
		t.Fatalf("with Consul stopped: %d update calls failed, %d updates refused", f, rj)
	}
	if !consultest.WaitFor(context.Background(), 30*time.Second, func() bool { _, err := c.adminConsul("status"); return err == nil }) {
		t.Fatal("admin status never worked again after Consul returned")
	}
	waitExact(t, fs, riders, 3*interval+15*time.Second, "after Consul returned")

	// 5. SIGTERM of a matcher hands its shards over before it exits:
	// answers are exact right after, with no update round in between.
	fs.mu.Lock()
	stopped := time.Now()
	m4 := c.matchers["m4"]
	_ = m4.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-m4.done:
	case <-time.After(30 * time.Second):
	}
	took := time.Since(stopped)
	fs.mu.Unlock()
	select {
	case <-m4.done:
	default:
		t.Fatalf("m4 did not exit within 30 s of SIGTERM")
	}
	if m4.err != nil {
		t.Fatalf("m4 exited with %v after SIGTERM", m4.err)
	}
	msg := mismatch(fs, riders, rand.New(rand.NewPCG(8, 8)), 60)
	if msg != "" {
		t.Fatalf("after m4 left gracefully (no update since): %s", msg)
	}
	t.Logf("SIGTERM m4: left the ring and handed its shards over in %v; answers exact at once", took.Round(10*time.Millisecond))

	// 6. Consul loses its data (a dev agent restarted empty): matchers
	// register again, a writer is elected and writes a ring with an epoch
	// above every one the cluster has seen, and the cluster serves on.
	recBefore, err := c.ringRecord(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if err := agent.Restart(); err != nil {
		t.Fatal(err)
	}
	lost := time.Now()
	var recAfter membership.Record
	if !consultest.WaitFor(context.Background(), 30*time.Second, func() bool {
		recAfter, err = c.ringRecord(context.Background())
		return err == nil && len(recAfter.Doc.Members) == 3 && recAfter.Doc.Epoch > recBefore.Doc.Epoch
	}) {
		t.Fatalf("no ring of the three matchers above epoch %d after Consul lost its data: %+v %v", recBefore.Doc.Epoch, recAfter, err)
	}
	waitExact(t, fs, riders, 3*interval+15*time.Second, "after Consul lost its data")
	t.Logf("Consul lost its data: ring epoch %d (was %d) with 3 matchers after %v; settings back to defaults (drains and splits must be redone)",
		recAfter.Doc.Epoch, recBefore.Doc.Epoch, time.Since(lost).Round(10*time.Millisecond))
	checkTrips("at the end")
	close(stop)
	wg.Wait()
	t.Logf("%d update rounds of %d drivers; %d updates refused, %d calls failed in the whole test", fs.rounds.Load(), n, fs.rejected.Load(), fs.failed.Load())
}

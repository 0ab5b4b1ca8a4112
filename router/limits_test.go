package router_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"

	"github.com/geomatch/geomatch/auth"
	"github.com/geomatch/geomatch/cluster"
	"github.com/geomatch/geomatch/internal/lifecycle"
	geomatchv1 "github.com/geomatch/geomatch/proto/geomatch/v1"
	"github.com/geomatch/geomatch/router"
)

// TestFloodedClientIsLimitedOthersAreNot: one rider calling NearbyDrivers
// twenty times faster than its rate gets RESOURCE_EXHAUSTED for the excess,
// while riders within their rate are never refused. Their latency with and
// without the flood is logged (not asserted: timing belongs to
// benchmarks).
func TestFloodedClientIsLimitedOthersAreNot(t *testing.T) {
	const (
		perS       = 50.0
		normal     = 6
		normalEach = 25 * time.Millisecond // 40 calls/s, within the rate
		phase      = 4 * time.Second
		flooders   = 8
		floodEvery = 8 * time.Millisecond // per flooder: at most 1000 calls/s in all, 20 times the rate
		floodMax   = 6000
	)
	c, k := startAuthCluster(t, cluster.DevConfig{Matchers: 3, Router: router.Config{Limits: router.Limits{RequestsPerS: perS}}})
	ops := as(t, c, k, "ops", auth.RoleAdmin) // admins are not limited
	r := newRand()
	fleet := makeFleet(r, 3000, 7, time.Now().UnixMilli())
	for lo := 0; lo < len(fleet); lo += 500 {
		req := &geomatchv1.UpdateLocationsRequest{}
		for _, d := range fleet[lo : lo+500] {
			req.Updates = append(req.Updates, &geomatchv1.LocationUpdate{DriverId: d.id, Position: ll(d.pos.Lat, d.pos.Lng), TimestampMs: d.ts})
		}
		if _, err := ops.drivers.UpdateLocations(ctxT(t), req); err != nil {
			t.Fatal(err)
		}
	}
	query := &geomatchv1.NearbyDriversRequest{Position: ll(40.7580, -73.9855), Limit: 10, RadiusM: 3000}
	riders := make([]apiClients, normal)
	for i := range riders {
		riders[i] = as(t, c, k, fmt.Sprintf("rider-%d", i), auth.RoleRider)
		if _, err := riders[i].riders.NearbyDrivers(ctxT(t), query); err != nil { // warm the connection
			t.Fatal(err)
		}
	}
	// measure runs the normal riders, paced, for one phase.
	measure := func() ([]time.Duration, error) {
		var (
			mu    sync.Mutex
			lat   []time.Duration
			first error
			wg    sync.WaitGroup
		)
		for _, cl := range riders {
			wg.Add(1)
			go func() {
				defer wg.Done()
				tick := time.NewTicker(normalEach)
				defer tick.Stop()
				for end := time.Now().Add(phase); time.Now().Before(end); <-tick.C {
					start := time.Now()
					_, err := cl.riders.NearbyDrivers(ctxT(t), query)
					d := time.Since(start)
					mu.Lock()
					lat = append(lat, d)
					if err != nil && first == nil {
						first = err
					}
					mu.Unlock()
				}
			}()
		}
		wg.Wait()
		return lat, first
	}
	unloaded, err := measure()
	if err != nil {
		t.Fatalf("riders within their rate, no flood: %v", err)
	}

	flooder := as(t, c, k, "flooder", auth.RoleRider)
	var sent, ok, limited atomic.Int64
	var other atomic.Pointer[error]
	stop := make(chan struct{})
	var fwg sync.WaitGroup
	floodStart := time.Now()
	for g := 0; g < flooders; g++ {
		fwg.Add(1)
		go func() {
			defer fwg.Done()
			tick := time.NewTicker(floodEvery)
			defer tick.Stop()
			for sent.Add(1) <= floodMax {
				select {
				case <-stop:
					return
				case <-tick.C:
				}
				_, err := flooder.riders.NearbyDrivers(ctxT(t), query)
				switch status.Code(err) {
				case codes.OK:
					ok.Add(1)
				case codes.ResourceExhausted:
					limited.Add(1)
				default:
					other.Store(&err)
				}
			}
		}()
	}
	loaded, err := measure()
	close(stop)
	fwg.Wait()
	floodFor := time.Since(floodStart)
	if err != nil {
		t.Fatalf("riders within their rate, during the flood: %v", err)
	}
	if e := other.Load(); e != nil {
		t.Fatalf("flooder: %v, want only OK or RESOURCE_EXHAUSTED", *e)
	}
	calls := ok.Load() + limited.Load()
	// The bucket lets through its burst plus the rate over the flood; the
	// rest is refused.
	if allowed := int64(2*perS + perS*floodFor.Seconds()*1.1 + 5); ok.Load() > allowed || limited.Load() == 0 || calls <= allowed {
		t.Fatalf("flooder: %d calls in %v, %d served (at most %d allowed), %d limited", calls, floodFor, ok.Load(), allowed, limited.Load())
	}
	p50u, p99u := percentile(unloaded, 50), percentile(unloaded, 99)
	p50l, p99l := percentile(loaded, 50), percentile(loaded, 99)
	t.Logf("flooder: %d calls in %v (%.0f/s against a limit of %g/s): %d served, %d RESOURCE_EXHAUSTED",
		calls, floodFor.Round(time.Millisecond), float64(calls)/floodFor.Seconds(), perS, ok.Load(), limited.Load())
	t.Logf("%d riders at %d calls/s each: unloaded p50 %v p99 %v (%d calls); during the flood p50 %v p99 %v (%d calls); p99 ratio %.2f",
		normal, int64(time.Second/normalEach), p50u, p99u, len(unloaded), p50l, p99l, len(loaded), float64(p99l)/float64(p99u))
}

func percentile(d []time.Duration, p int) time.Duration {
	if len(d) == 0 {
		return 0
	}
	s := slices.Clone(d)
	slices.Sort(s)
	return s[min(len(s)-1, len(s)*p/100)]
}

// TestUpdateRateLimit: location updates are charged per update, on
// UpdateLocations (a batch beyond the burst is refused whole, with a hint
// to split it) and on Connect streams (the excess is reported as rejected,
// the stream stays up). Without authentication clients are told apart by
// address.
func TestUpdateRateLimit(t *testing.T) {
	c := startCluster(t, cluster.DevConfig{Matchers: 1, Router: router.Config{Limits: router.Limits{UpdatesPerS: 1, UpdateBurst: 20}}})
	batch := func(n int) *geomatchv1.UpdateLocationsRequest {
		req := &geomatchv1.UpdateLocationsRequest{}
		for i := 0; i < n; i++ {
			req.Updates = append(req.Updates, update(fmt.Sprintf("cab-%d", i), 40.75, -73.98))
		}
		return req
	}
	_, err := c.drivers.UpdateLocations(ctxT(t), batch(21))
	wantCode(t, "batch beyond the burst", err, codes.ResourceExhausted, "split the batch", "peer 127.0.0.1")
	if _, err := c.drivers.UpdateLocations(ctxT(t), batch(15)); err != nil {
		t.Fatal(err)
	}
	_, err = c.drivers.UpdateLocations(ctxT(t), batch(10))
	wantCode(t, "batch beyond the rate", err, codes.ResourceExhausted, "location updates/s")

	stream, err := c.drivers.Connect(ctxT(t))
	if err != nil {
		t.Fatal(err)
	}
	if err := stream.Send(&geomatchv1.DriverMessage{Msg: &geomatchv1.DriverMessage_Hello{Hello: &geomatchv1.DriverHello{DriverId: "cab-0"}}}); err != nil {
		t.Fatal(err)
	}
	if ev, err := stream.Recv(); err != nil || ev.GetConnected() == nil {
		t.Fatalf("connect: %v, %v", ev, err)
	}
	for i := 0; i < 10; i++ {
		if err := stream.Send(&geomatchv1.DriverMessage{Msg: &geomatchv1.DriverMessage_Location{Location: update("cab-0", 40.75, -73.98)}}); err != nil {
			t.Fatal(err)
		}
	}
	ev, err := stream.Recv()
	if err != nil || ev.GetRejected().GetReason() != geomatchv1.RejectReason_REJECT_REASON_RESOURCE_EXHAUSTED || !strings.Contains(ev.GetRejected().GetMessage(), "rate limit") {
		t.Fatalf("streamed update beyond the rate: %v, %v; want a RESOURCE_EXHAUSTED rejection", ev, err)
	}
	if err := stream.CloseSend(); err != nil {
		t.Fatal(err)
	}
	for {
		if _, err := stream.Recv(); err != nil {
			if !errors.Is(err, io.EOF) {
				t.Fatalf("stream ended with %v, want a clean end", err)
			}
			break
		}
	}
}

// TestStreamsPerClient: a client holds at most StreamsPerClient Connect
// streams; closing one makes room.
func TestStreamsPerClient(t *testing.T) {
	c, k := startAuthCluster(t, cluster.DevConfig{Matchers: 1, Router: router.Config{Limits: router.Limits{StreamsPerClient: 1}}})
	cab := as(t, c, k, "cab-1", auth.RoleDriver)
	open := func() (geomatchv1.DriverService_ConnectClient, error) {
		stream, err := cab.drivers.Connect(ctxT(t))
		if err != nil {
			return nil, err
		}
		if err := stream.Send(&geomatchv1.DriverMessage{Msg: &geomatchv1.DriverMessage_Hello{Hello: &geomatchv1.DriverHello{DriverId: "cab-1"}}}); err != nil && !errors.Is(err, io.EOF) {
			return nil, err
		}
		_, err = stream.Recv()
		return stream, err
	}
	first, err := open()
	if err != nil {
		t.Fatal(err)
	}
	_, err = open()
	wantCode(t, "second stream", err, codes.ResourceExhausted, "stream limit", "driver cab-1")
	first.CloseSend()
	if _, err := first.Recv(); !errors.Is(err, io.EOF) {
		t.Fatalf("first stream ended with %v", err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		if _, err = open(); err == nil || time.Now().After(deadline) {
			break
		}
		time.Sleep(10 * time.Millisecond) // the server counts the stream out after it ends
	}
	if err != nil {
		t.Fatalf("a stream after the first closed: %v", err)
	}
	// Admins are not limited.
	ops := as(t, c, k, "ops", auth.RoleAdmin)
	for i := 0; i < 3; i++ {
		s, err := ops.drivers.Connect(ctxT(t))
		if err == nil {
			err = s.Send(&geomatchv1.DriverMessage{Msg: &geomatchv1.DriverMessage_Hello{Hello: &geomatchv1.DriverHello{DriverId: fmt.Sprintf("cab-%d", i+5)}}})
		}
		if err == nil {
			_, err = s.Recv()
		}
		if err != nil {
			t.Fatalf("admin stream %d: %v", i, err)
		}
	}
}

// TestSlowStreamIsDropped: an app that stops reading its stream while it
// keeps sending is dropped with RESOURCE_EXHAUSTED once its event queue is
// full and the router's send has been blocked for SlowStreamAfter; the
// router never buffers more than the bounded queue for it. The app hears
// the status once it reads what was sent before.
func TestSlowStreamIsDropped(t *testing.T) {
	c := startCluster(t, cluster.DevConfig{Matchers: 1, Router: router.Config{SlowStreamAfter: 200 * time.Millisecond}})
	// A small fixed window: the router's sends block after 64 KiB unread.
	cl := dialAPI(t, c.RouterAddr, grpc.WithStaticStreamWindowSize(64<<10), grpc.WithStaticConnWindowSize(64<<10))
	stream, err := cl.drivers.Connect(ctxT(t))
	if err != nil {
		t.Fatal(err)
	}
	if err := stream.Send(&geomatchv1.DriverMessage{Msg: &geomatchv1.DriverMessage_Hello{Hello: &geomatchv1.DriverHello{DriverId: "cab-1"}}}); err != nil {
		t.Fatal(err)
	}
	// Every update is invalid (its vehicle class is too long): each earns
	// a rejection report nobody reads. The sender stops when its sends
	// block: the router no longer reads the stream.
	bad := &geomatchv1.DriverMessage{Msg: &geomatchv1.DriverMessage_Location{Location: &geomatchv1.LocationUpdate{
		DriverId: "cab-1", Position: ll(40.75, -73.98), TimestampMs: time.Now().UnixMilli(), VehicleClass: strings.Repeat("x", 1000)}}}
	var sent atomic.Int64
	sendDone := make(chan struct{})
	go func() {
		defer close(sendDone)
		for sent.Load() < 100_000 {
			if err := stream.Send(bad); err != nil {
				return
			}
			sent.Add(1)
		}
	}()
	last, still := int64(-1), time.Now()
	for deadline := time.Now().Add(20 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		if n := sent.Load(); n != last {
			last, still = n, time.Now()
		} else if time.Since(still) > time.Second {
			break // sends blocked for a second
		}
	}
	events := 0
	for {
		if _, err = stream.Recv(); err != nil {
			break
		}
		events++
	}
	<-sendDone
	wantCode(t, fmt.Sprintf("after %d unread updates (%d events delivered)", sent.Load(), events), err, codes.ResourceExhausted, "unread")
	if events > 10_000 {
		t.Fatalf("%d events delivered: the router buffered without bound", events)
	}
	t.Logf("dropped: %d updates sent, %d events delivered before the status", sent.Load(), events)
}

// TestStreamAnswersAreLimited: offer answers and trip progress on a stream
// are charged like calls: an app that floods them has its stream ended
// with RESOURCE_EXHAUSTED.
func TestStreamAnswersAreLimited(t *testing.T) {
	c := startCluster(t, cluster.DevConfig{Matchers: 1, Router: router.Config{Limits: router.Limits{RequestsPerS: 0.01, RequestBurst: 3}}})
	stream, err := c.drivers.Connect(ctxT(t))
	if err != nil {
		t.Fatal(err)
	}
	if err := stream.Send(&geomatchv1.DriverMessage{Msg: &geomatchv1.DriverMessage_Hello{Hello: &geomatchv1.DriverHello{DriverId: "cab-1"}}}); err != nil {
		t.Fatal(err)
	}
	answer := &geomatchv1.DriverMessage{Msg: &geomatchv1.DriverMessage_OfferAnswer{OfferAnswer: &geomatchv1.OfferAnswer{OfferId: "o", TripId: "t"}}}
	for i := 0; i < 5; i++ {
		if err := stream.Send(answer); err != nil {
			break
		}
	}
	for {
		if _, err = stream.Recv(); err != nil {
			break
		}
	}
	wantCode(t, "answers beyond the rate", err, codes.ResourceExhausted, "rate limit")
}

// openDriverStream opens a Connect stream for driverID on cl and waits for
// its ack (or its refusal).
func openDriverStream(t *testing.T, cl apiClients, driverID string) (geomatchv1.DriverService_ConnectClient, error) {
	t.Helper()
	stream, err := cl.drivers.Connect(ctxT(t))
	if err != nil {
		return nil, err
	}
	if err := stream.Send(&geomatchv1.DriverMessage{Msg: &geomatchv1.DriverMessage_Hello{Hello: &geomatchv1.DriverHello{DriverId: driverID}}}); err != nil && !errors.Is(err, io.EOF) {
		return nil, err
	}
	_, err = stream.Recv()
	return stream, err
}

// refusals scrapes the refusal counters and open driver streams of the
// process from the observer's listener at maddr.
func refusals(t *testing.T, maddr string) (byReason map[string]int, streams int) {
	t.Helper()
	byReason = map[string]int{}
	for k, v := range scrape(t, maddr) {
		n, _ := strconv.Atoi(v)
		if r, ok := strings.CutPrefix(k, `geomatch_refused_total{reason="`); ok {
			byReason[strings.TrimSuffix(r, `"}`)] = n
		}
		if k == "geomatch_driver_streams" {
			streams = n
		}
	}
	return byReason, streams
}

// startObservedCluster is startCluster with the process's metrics served
// on a loopback port, returned.
func startObservedCluster(t *testing.T, cfg cluster.DevConfig) (*testCluster, string) {
	t.Helper()
	cfg.Metrics = cluster.NewObserver()
	c := startCluster(t, cfg)
	maddr := freeLoopback(t)
	g := lifecycle.NewGroup()
	if err := cfg.Metrics.Serve(g, maddr, slog.New(slog.DiscardHandler)); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = g.Stop() })
	return c, maddr
}

// TestPeerLimitsWithoutAuth: with authentication off a client is its peer
// IP address: its streams and calls beyond its limits are refused with
// RESOURCE_EXHAUSTED naming the peer, and counted by reason.
func TestPeerLimitsWithoutAuth(t *testing.T) {
	c, maddr := startObservedCluster(t, cluster.DevConfig{Matchers: 1, Router: router.Config{Limits: router.Limits{
		StreamsPerClient: 2, RequestsPerS: 0.01, RequestBurst: 4, UpdatesPerS: 0.01, UpdateBurst: 3}}})
	before, _ := refusals(t, maddr)
	cl := dialAPI(t, c.RouterAddr)
	other := dialAPI(t, c.RouterAddr) // another connection from the same address: the same client
	for i, conn := range []apiClients{cl, other} {
		if _, err := openDriverStream(t, conn, fmt.Sprintf("cab-%d", i)); err != nil {
			t.Fatalf("stream %d: %v", i, err)
		}
	}
	_, err := openDriverStream(t, other, "cab-9")
	wantCode(t, "third stream of 127.0.0.1", err, codes.ResourceExhausted, "stream limit", "peer 127.0.0.1")
	// Three stream opens took three of the four calls of the burst.
	query := &geomatchv1.NearbyDriversRequest{Position: ll(40.75, -73.98), Limit: 1, RadiusM: 100}
	if _, err := cl.riders.NearbyDrivers(ctxT(t), query); err != nil {
		t.Fatalf("fourth call: %v", err)
	}
	_, err = cl.riders.NearbyDrivers(ctxT(t), query)
	wantCode(t, "fifth call", err, codes.ResourceExhausted, "rate limit", "peer 127.0.0.1")
	batch := &geomatchv1.UpdateLocationsRequest{}
	for i := range 4 {
		batch.Updates = append(batch.Updates, &geomatchv1.LocationUpdate{DriverId: fmt.Sprintf("d%d", i), Position: ll(40.75, -73.98), TimestampMs: time.Now().UnixMilli()})
	}
	_, err = cl.drivers.UpdateLocations(ctxT(t), batch)
	wantCode(t, "a batch beyond the burst", err, codes.ResourceExhausted, "split the batch")
	after, _ := refusals(t, maddr)
	for reason, want := range map[string]int{"client_streams": 1, "request_rate": 1, "update_batch": 1} {
		if got := after[reason] - before[reason]; got != want {
			t.Errorf("geomatch_refused_total{reason=%q} grew by %d, want %d", reason, got, want)
		}
	}
}

// TestServerStreamLimit: the router holds at most Limits.MaxStreams driver
// streams, whoever opens them and whatever driver they name (here one
// driver id over and over, which the sessions table would count once); the
// stream beyond is refused before its hello is read, counted, and a
// stream that ends makes room.
func TestServerStreamLimit(t *testing.T) {
	c, maddr := startObservedCluster(t, cluster.DevConfig{Matchers: 1, Router: router.Config{Limits: router.Limits{MaxStreams: 3}}})
	before, _ := refusals(t, maddr)
	cl := dialAPI(t, c.RouterAddr)
	var open []geomatchv1.DriverService_ConnectClient
	for i := range 3 {
		s, err := openDriverStream(t, cl, "cab-1")
		if err != nil {
			t.Fatalf("stream %d: %v", i, err)
		}
		open = append(open, s)
	}
	_, err := openDriverStream(t, cl, "cab-2")
	wantCode(t, "fourth stream", err, codes.ResourceExhausted, "server stream limit", "3 driver streams")
	after, streams := refusals(t, maddr)
	if got := after["server_streams"] - before["server_streams"]; got != 1 || streams < 3 {
		t.Fatalf("server_streams refusals grew by %d (want 1); %d driver streams open (want at least 3)", got, streams)
	}
	open[0].CloseSend()
	for {
		if _, err := open[0].Recv(); err != nil {
			break
		}
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		if _, err = openDriverStream(t, cl, "cab-2"); err == nil || time.Now().After(deadline) {
			break
		}
		time.Sleep(10 * time.Millisecond) // the server counts the stream out after it ends
	}
	if err != nil {
		t.Fatalf("a stream after one ended: %v", err)
	}
}

// TestSubscriptionsAreNotDriverStreams: the per-client stream bound counts
// driver Connect streams only; a client at its bound still subscribes to
// events (subscriptions have their own bound, Config.MaxSubscriptions).
func TestSubscriptionsAreNotDriverStreams(t *testing.T) {
	c, _ := startObservedCluster(t, cluster.DevConfig{Matchers: 1, Router: router.Config{Limits: router.Limits{StreamsPerClient: 1}}})
	cl := dialAPI(t, c.RouterAddr)
	if _, err := openDriverStream(t, cl, "cab-1"); err != nil {
		t.Fatal(err)
	}
	_, err := openDriverStream(t, cl, "cab-2")
	wantCode(t, "second driver stream", err, codes.ResourceExhausted, "stream limit")
	conn, err := grpc.NewClient(c.RouterAddr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	ctx, cancel := context.WithCancel(ctxT(t))
	defer cancel()
	sub, err := geomatchv1.NewEventServiceClient(conn).Subscribe(ctx, &geomatchv1.SubscribeRequest{})
	if err != nil {
		t.Fatal(err)
	}
	// A refusal would end the stream at once; a live one waits for events.
	got := make(chan error, 1)
	go func() { _, err := sub.Recv(); got <- err }()
	select {
	case err := <-got:
		t.Fatalf("subscription of a client at its driver-stream bound ended: %v", err)
	case <-time.After(300 * time.Millisecond):
	}
}

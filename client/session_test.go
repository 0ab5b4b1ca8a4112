package client_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/geomatch/geomatch/client"
	geomatchv1 "github.com/geomatch/geomatch/proto/geomatch/v1"
)

func dialT(t *testing.T, addr string, opts ...client.Option) *client.Conn {
	t.Helper()
	c, err := client.Dial(addr, append([]client.Option{client.Insecure()}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func at(lat, lng float64) *geomatchv1.LatLng { return &geomatchv1.LatLng{Lat: lat, Lng: lng} }

// within reports whether driver id is available within 1 m of p.
func within(t *testing.T, c *client.Conn, id string, p *geomatchv1.LatLng) bool {
	t.Helper()
	resp, err := c.Nearby(ctxT(t), &geomatchv1.NearbyDriversRequest{Position: p, Limit: 100, RadiusM: 1})
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range resp.GetDrivers() {
		if d.GetDriverId() == id {
			return true
		}
	}
	return false
}

// TestDriverSessionReplaysAfterReconnect: a position sent while the
// network is down is kept, the session reconnects once the network is
// back, replays it, and the router applies it (the driver shows up there).
func TestDriverSessionReplaysAfterReconnect(t *testing.T) {
	px := startProxy(t, routerAddr)
	c := dialT(t, px.addr())
	lost := make(chan error, 8)
	id := fmt.Sprintf("replay-%d", time.Now().UnixNano()) // fresh on every run of the shared cluster
	sess, err := c.ConnectDriver(ctxT(t), client.DriverConfig{
		DriverID: id, MinBackoff: 10 * time.Millisecond, MaxBackoff: 50 * time.Millisecond, MaxReconnects: 1000,
		OnDisconnected: func(err error, _ time.Duration) {
			select {
			case lost <- err:
			default:
			}
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	defer sess.Close()
	a, b := at(51.5000, -0.1200), at(51.5100, -0.1000)
	now := time.Now().UnixMilli()
	if err := sess.SendLocation(&geomatchv1.LocationUpdate{Position: a, TimestampMs: now - 2000}); err != nil {
		t.Fatal(err)
	}
	if err := sess.Flush(ctxT(t)); err != nil {
		t.Fatal(err)
	}
	if st := sess.Stats(); st.Acked != 1 || st.Pending != 0 {
		t.Fatalf("stats %+v after the first ack", st)
	}

	px.cut()
	select {
	case <-lost:
	case <-ctxT(t).Done():
		t.Fatal("the session did not notice the cut")
	}
	if err := sess.SendLocation(&geomatchv1.LocationUpdate{Position: b, TimestampMs: now - 1000}); err != nil {
		t.Fatalf("send while reconnecting: %v; want it kept", err)
	}
	if st := sess.Stats(); st.Pending != 1 {
		t.Fatalf("stats %+v; want the update kept", st)
	}
	px.heal()
	if err := sess.Flush(ctxT(t)); err != nil {
		t.Fatal(err)
	}
	st := sess.Stats()
	if st.Reconnects < 1 || st.Replayed < 1 || st.Pending != 0 || st.Acked < 2 {
		t.Fatalf("stats %+v; want a reconnect, a replay and both acked", st)
	}
	direct := dialT(t, routerAddr)
	if !within(t, direct, id, b) {
		t.Fatalf("%s is not at its replayed position", id)
	}
	if err := sess.Close(); err != nil {
		t.Fatalf("close: %v", err)
	}
	if err := sess.SendLocation(&geomatchv1.LocationUpdate{Position: b, TimestampMs: now}); !errors.Is(err, client.ErrClosed) {
		t.Fatalf("send after close: %v, want ErrClosed", err)
	}
}

// TestDriverSessionRefused: a hello the router refuses (a bad driver id)
// fails ConnectDriver at once, with the router's code, and no retries.
func TestDriverSessionRefused(t *testing.T) {
	c := dialT(t, routerAddr)
	_, err := c.ConnectDriver(ctxT(t), client.DriverConfig{DriverID: "x", VehicleClass: string(make([]byte, 100))})
	if status.Code(err) != codes.InvalidArgument {
		t.Fatalf("got %v, want InvalidArgument", err)
	}
	if _, err := c.ConnectDriver(ctxT(t), client.DriverConfig{}); err == nil {
		t.Fatal("an empty driver id was accepted")
	}
}

// TestDriverSessionGivesUp: with nothing listening, reconnects are
// bounded: ConnectDriver returns once ctx ends; a session whose router
// disappears ends after MaxReconnects attempts, calling OnClose once.
func TestDriverSessionGivesUp(t *testing.T) {
	px := startProxy(t, routerAddr)
	c := dialT(t, px.addr())
	closed := make(chan error, 2)
	sess, err := c.ConnectDriver(ctxT(t), client.DriverConfig{
		DriverID: "gives-up", MinBackoff: time.Millisecond, MaxBackoff: 2 * time.Millisecond, MaxReconnects: 3,
		OnClose: func(err error) { closed <- err },
	})
	if err != nil {
		t.Fatal(err)
	}
	px.cut()
	select {
	case <-sess.Done():
	case <-ctxT(t).Done():
		t.Fatal("the session kept reconnecting")
	}
	if err := <-closed; err == nil || sess.Err() == nil {
		t.Fatalf("session ended with %v, want the last error", err)
	}
	if len(closed) != 0 {
		t.Fatal("OnClose ran twice")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	if _, err := c.ConnectDriver(ctx, client.DriverConfig{DriverID: "never", MinBackoff: time.Millisecond}); err == nil {
		t.Fatal("ConnectDriver succeeded with the network cut")
	}
}

// TestUpdateLocationsSplits: more than 10,000 updates go out in several
// calls; the answer adds them up and numbers each rejection by its place
// in the whole list.
func TestUpdateLocationsSplits(t *testing.T) {
	c := dialT(t, routerAddr)
	const n = client.MaxBatch + 2500
	now := time.Now().UnixMilli()
	ups := make([]*geomatchv1.LocationUpdate, n)
	for i := range ups {
		ups[i] = &geomatchv1.LocationUpdate{DriverId: fmt.Sprintf("split-%05d", i), Position: at(48.80+float64(i%100)*1e-3, 2.30+float64(i/100)*1e-3), TimestampMs: now}
	}
	bad := client.MaxBatch + 7
	ups[bad].Position = at(91, 2.3)
	resp, err := c.UpdateLocations(ctxT(t), ups)
	if err != nil {
		t.Fatal(err)
	}
	if resp.GetAccepted() != n-1 || len(resp.GetRejected()) != 1 || resp.GetRejected()[0].GetIndex() != int32(bad) {
		t.Fatalf("accepted %d, rejected %v; want %d and one at index %d", resp.GetAccepted(), resp.GetRejected(), n-1, bad)
	}
}

// openNearbyOverLine puts 20 drivers PREFIX-00..19 on a line going north
// from (lat, lng), 0.01° apart, and opens a nearby stream closed when the
// test ends.
func openNearbyOverLine(t *testing.T, prefix string, lat, lng float64) *client.NearbyStream {
	t.Helper()
	c := dialT(t, routerAddr)
	now := time.Now().UnixMilli()
	var ups []*geomatchv1.LocationUpdate
	for i := range 20 {
		ups = append(ups, &geomatchv1.LocationUpdate{DriverId: fmt.Sprintf("%s-%02d", prefix, i), Position: at(lat+float64(i)*0.01, lng), TimestampMs: now})
	}
	if _, err := c.UpdateLocations(ctxT(t), ups); err != nil {
		t.Fatal(err)
	}
	ns, err := c.OpenNearbyStream(ctxT(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ns.Close() })
	return ns
}

// TestNearbyStreamMatchesAnswers: many questions at once over one stream
// each get their own answer; a bad one fails alone, naming the field.
func TestNearbyStreamMatchesAnswers(t *testing.T) {
	ns := openNearbyOverLine(t, "ns", 35.60, 139.70)
	var wg sync.WaitGroup
	errs := make([]error, 20)
	for i := range 20 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			resp, err := ns.Nearby(ctxT(t), &geomatchv1.NearbyDriversRequest{Position: at(35.60+float64(i)*0.01, 139.70), Limit: 1, RadiusM: 100})
			if err != nil {
				errs[i] = err
				return
			}
			if want := fmt.Sprintf("ns-%02d", i); len(resp.GetDrivers()) != 1 || resp.GetDrivers()[0].GetDriverId() != want {
				errs[i] = fmt.Errorf("question %d answered %v, want %s", i, resp.GetDrivers(), want)
			}
		}()
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	_, err := ns.Nearby(ctxT(t), &geomatchv1.NearbyDriversRequest{Position: at(35.6, 139.7), Limit: 0, RadiusM: 100})
	if status.Code(err) != codes.InvalidArgument {
		t.Fatalf("bad question: %v, want InvalidArgument", err)
	}
	if _, err := ns.Nearby(ctxT(t), &geomatchv1.NearbyDriversRequest{Position: at(35.6, 139.7), Limit: 1, RadiusM: 100}); err != nil {
		t.Fatalf("the stream did not go on after a bad question: %v", err)
	}
}

// TestNearbyBatchAnswersInOrder: a batch of questions sent at once comes
// back answer for question, a bad question failing alone; batches run
// concurrently on one stream keep their answers apart.
func TestNearbyBatchAnswersInOrder(t *testing.T) {
	ns := openNearbyOverLine(t, "nb", -23.50, -46.60)
	ask := func(from, n, bad int) error {
		reqs := make([]*geomatchv1.NearbyDriversRequest, n)
		for j := range reqs {
			reqs[j] = &geomatchv1.NearbyDriversRequest{Position: at(-23.50+float64(from+j)*0.01, -46.60), Limit: 1, RadiusM: 100}
		}
		if bad >= 0 {
			reqs[bad].Limit = 0
		}
		answers, errs, err := ns.NearbyBatch(ctxT(t), reqs)
		if err != nil {
			return err
		}
		for j := range reqs {
			if j == bad {
				if status.Code(errs[j]) != codes.InvalidArgument || answers[j] != nil {
					return fmt.Errorf("bad question %d: %v, %v; want InvalidArgument and no answer", j, answers[j], errs[j])
				}
				continue
			}
			if want := fmt.Sprintf("nb-%02d", from+j); errs[j] != nil || len(answers[j].GetDrivers()) != 1 || answers[j].GetDrivers()[0].GetDriverId() != want {
				return fmt.Errorf("question %d answered %v, %v; want %s", j, answers[j].GetDrivers(), errs[j], want)
			}
		}
		return nil
	}
	var wg sync.WaitGroup
	errs := make([]error, 2)
	for k := range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[k] = ask(10*k, 10, 3*k-1) // the first batch all good, the second with a bad question
		}()
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	if _, _, err := ns.NearbyBatch(ctxT(t), make([]*geomatchv1.NearbyDriversRequest, client.MaxNearbyInFlight+1)); status.Code(err) != codes.InvalidArgument {
		t.Fatalf("a batch over the bound: %v, want InvalidArgument", err)
	}
	// Batches given up while taking their slots give the slots back: a
	// full-size batch still goes through afterwards.
	done, cancel := context.WithCancel(context.Background())
	cancel()
	full := make([]*geomatchv1.NearbyDriversRequest, client.MaxNearbyInFlight)
	for j := range full {
		full[j] = &geomatchv1.NearbyDriversRequest{Position: at(-23.50, -46.60), Limit: 1, RadiusM: 100}
	}
	for range 20 {
		if _, _, err := ns.NearbyBatch(done, full); status.Code(err) != codes.Canceled {
			t.Fatalf("a batch with a cancelled context: %v, want Canceled", err)
		}
	}
	if _, errs, err := ns.NearbyBatch(ctxT(t), full); err != nil || errs[0] != nil {
		t.Fatalf("a full batch after cancelled ones: %v, %v", err, errs[0])
	}
}

// TestSubscribeResumes: a subscription whose stream breaks resumes after
// the last event it passed on: the event of a driver that came online
// while it was down still arrives, and none comes twice.
func TestSubscribeResumes(t *testing.T) {
	px := startProxy(t, routerAddr)
	c := dialT(t, px.addr())
	direct := dialT(t, routerAddr)
	now := time.Now().UnixMilli()
	online := func(id string, lng float64) {
		t.Helper()
		if _, err := direct.UpdateLocations(ctxT(t), []*geomatchv1.LocationUpdate{{DriverId: id, Position: at(-33.87, lng), TimestampMs: now}}); err != nil {
			t.Fatal(err)
		}
	}
	ctx, cancel := context.WithCancel(ctxT(t))
	defer cancel()
	seen := map[string]int{}
	got := make(chan string, 16)
	done := make(chan error, 1)
	go func() {
		done <- c.Subscribe(ctx, &geomatchv1.SubscribeRequest{Kinds: []geomatchv1.EventKind{geomatchv1.EventKind_EVENT_KIND_DRIVER}, FromOldest: true},
			func(ev *geomatchv1.Event) error {
				seen[ev.GetEventId()]++
				if seen[ev.GetEventId()] > 1 {
					return fmt.Errorf("event %s twice", ev.GetEventId())
				}
				if d := ev.GetDriver(); d.GetLifecycle() == geomatchv1.DriverLifecycle_DRIVER_LIFECYCLE_ONLINE {
					got <- d.GetDriverId()
				}
				return nil
			})
	}()
	waitFor := func(id string) {
		t.Helper()
		for {
			select {
			case g := <-got:
				if g == id {
					return
				}
			case err := <-done:
				t.Fatalf("subscription ended: %v", err)
			case <-ctx.Done():
				t.Fatalf("no online event for %s", id)
			}
		}
	}
	run := time.Now().UnixNano() // drivers new to the shared cluster on every run
	a, b := fmt.Sprintf("sub-a-%d", run), fmt.Sprintf("sub-b-%d", run)
	online(a, 151.20)
	waitFor(a)
	px.cut()
	online(b, 151.21)
	px.heal()
	waitFor(b)
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Fatalf("subscription ended with %v, want the caller's cancel", err)
	}
}

// TestDriverSessionSendsAtOnce: the stream is in place when ConnectDriver
// returns: a session without acknowledgements (nothing to replay) can send
// straight away, and a clean Close answers its updates first.
func TestDriverSessionSendsAtOnce(t *testing.T) {
	c := dialT(t, routerAddr)
	var rejected []int64
	sess, err := c.ConnectDriver(ctxT(t), client.DriverConfig{DriverID: "at-once", NoAcks: true, NoReconnect: true,
		OnRejected: func(r *geomatchv1.Rejection) { rejected = append(rejected, r.GetTimestampMs()) }})
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now().UnixMilli()
	for i, lat := range []float64{-1.2921, 95, -1.2920} { // the second is refused
		if err := sess.SendLocation(&geomatchv1.LocationUpdate{Position: at(lat, 36.8219), TimestampMs: now - 100 + int64(i)}); err != nil {
			t.Fatalf("send %d right after connecting: %v", i, err)
		}
	}
	if err := sess.Close(); err != nil {
		t.Fatal(err)
	}
	if len(rejected) != 1 || rejected[0] != now-99 {
		t.Fatalf("rejections %v; want the bad update's before the stream ended", rejected)
	}
	if err := sess.Flush(ctxT(t)); err == nil {
		t.Fatal("Flush without acknowledgements did not say so")
	}
}

package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/protojson"

	"github.com/geomatch/geomatch/fence/fencetest"
	"github.com/geomatch/geomatch/internal/consultest"
	"github.com/geomatch/geomatch/internal/geo"
	"github.com/geomatch/geomatch/internal/redistest"
	"github.com/geomatch/geomatch/membership"
	geomatchv1 "github.com/geomatch/geomatch/proto/geomatch/v1"
)

// subscriber follows fence events through one router after another,
// resuming after the last cursor it received, and records each fact once
// per distinct event id.
type subscriber struct {
	mu     sync.Mutex
	cursor string
	ids    map[string]fencetest.Fact
	facts  map[fencetest.Fact]int
	cancel context.CancelFunc
	done   chan error
}

func newSubscriber() *subscriber {
	return &subscriber{ids: map[string]fencetest.Fact{}, facts: map[fencetest.Fact]int{}}
}

// follow subscribes on es, from the head of the log when it has no cursor
// yet, until stop or an error.
func (s *subscriber) follow(t *testing.T, es geomatchv1.EventServiceClient) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	s.mu.Lock()
	req := &geomatchv1.SubscribeRequest{AfterCursor: s.cursor, Kinds: []geomatchv1.EventKind{geomatchv1.EventKind_EVENT_KIND_FENCE}}
	s.mu.Unlock()
	stream, err := es.Subscribe(ctx, req)
	if err != nil {
		cancel()
		t.Fatalf("subscribe: %v", err)
	}
	s.cancel, s.done = cancel, make(chan error, 1)
	go func() {
		for {
			ev, err := stream.Recv()
			if err != nil {
				s.done <- err
				return
			}
			s.mu.Lock()
			s.cursor = ev.GetCursor()
			if _, seen := s.ids[ev.GetEventId()]; !seen {
				f := fencetest.FactOf(ev.GetFence())
				s.ids[ev.GetEventId()] = f
				s.facts[f]++
			}
			s.mu.Unlock()
		}
	}()
}

// stop ends the subscription and returns why it ended (nil: stopped).
func (s *subscriber) stop() error {
	s.cancel()
	err := <-s.done
	if status.Code(err) == codes.Canceled || errors.Is(err, io.EOF) {
		return nil
	}
	return err
}

func (s *subscriber) snapshot() (map[fencetest.Fact]int, int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make(map[fencetest.Fact]int, len(s.facts))
	n := 0
	for k, v := range s.facts {
		out[k] = v
		n += v
	}
	return out, n
}

// TestFenceEventsThroughMatcherSIGKILL: three matcher processes and two
// routers on Consul and Redis; drivers walk over fences while a matcher is
// SIGKILLed and later restarted, the subscriber moves from one router to
// the other mid-way (resuming after its last cursor) and the router it
// left is SIGKILLed, and a webhook's receiver is down for the first third.
// The events the subscriber receives (one per event id) equal the
// brute-force oracle's, so do the hook's deliveries and the events of the
// whole log read again from its oldest, and GetFenceCounts equals a
// brute-force recount at the end.
func TestFenceEventsThroughMatcherSIGKILL(t *testing.T) {
	if testing.Short() {
		t.Skip("multi-process cluster test (about 40 s)")
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
	var drivers []geomatchv1.DriverServiceClient
	var evs []geomatchv1.EventServiceClient
	var fences []geomatchv1.FenceServiceClient
	var routers []*proc
	routerArgs := func(addr string) []string {
		return []string{"router", "--listen", addr, "--consul", agent.Addr, "--redis", c.redis, "--auth=off", "--insecure-internal",
			"--hook-lease-ttl", "3s", "--hook-dead-letter-after", "10m"}
	}
	for i := range 2 {
		rp := start(t, fmt.Sprintf("router %d", i+1), routerArgs(freeAddr(t, "127.0.0.1"))...)
		conn := dial(t, rp.waitFor(listening, 60*time.Second)[1])
		routers = append(routers, rp)
		drivers = append(drivers, geomatchv1.NewDriverServiceClient(conn))
		evs = append(evs, geomatchv1.NewEventServiceClient(conn))
		fences = append(fences, geomatchv1.NewFenceServiceClient(conn))
	}
	// A webhook receiver that is down (503) for the first part of the run.
	recv := newHookReceiver(t)
	if _, err := evs[0].PutHook(ctxFor(t, 10*time.Second), &geomatchv1.Hook{HookId: "zones", Endpoint: recv.url,
		Kinds: []geomatchv1.EventKind{geomatchv1.EventKind_EVENT_KIND_FENCE}}); err != nil {
		t.Fatalf("PutHook: %v", err)
	}
	if !consultest.WaitFor(context.Background(), 30*time.Second, func() bool {
		rec, err := c.ringRecord(context.Background())
		return err == nil && len(rec.Doc.Members) == 3
	}) {
		t.Fatal("ring never listed the three matchers")
	}
	defs := fencetest.Fences()
	for _, d := range defs {
		if _, err := fences[0].PutFence(ctxFor(t, 20*time.Second), &geomatchv1.PutFenceRequest{Fence: d}); err != nil {
			t.Fatalf("PutFence %s: %v", d.GetFenceId(), err)
		}
	}
	sub := newSubscriber()
	sub.follow(t, evs[0])
	time.Sleep(300 * time.Millisecond) // the subscription starts at the head

	o, err := fencetest.New(defs)
	if err != nil {
		t.Fatal(err)
	}
	r := rand.New(rand.NewPCG(16, 2))
	nDrivers, steps := 200, 36
	if n := os.Getenv("GEOMATCH_FENCE_REPLAY"); n != "" {
		// A long run for a report, not CI: GEOMATCH_FENCE_REPLAY=1000000 is
		// 27,777 drivers × 36 steps.
		total, err := strconv.Atoi(n)
		if err != nil || total < steps {
			t.Fatalf("GEOMATCH_FENCE_REPLAY=%q: want a number of updates >= %d", n, steps)
		}
		nDrivers = total / steps
	}
	pos := make([]geo.LatLng, nDrivers)
	for i := range pos {
		pos[i] = geo.LatLng{Lat: 40.69 + r.Float64()*0.11, Lng: -74.03 + r.Float64()*0.11}
	}
	base := time.Now().UnixMilli()
	retried := 0
	for step := range steps {
		switch step {
		case steps / 4:
			c.matchers["m2"].kill()
		case steps / 3:
			recv.setDown(false)
		case steps / 2:
			if err := sub.stop(); err != nil {
				t.Fatalf("subscription on router 1 ended: %v", err)
			}
			sub.follow(t, evs[1]) // after its last cursor, on the other router
			routers[0].kill()     // it may hold the hook: router 2 takes it over
		case 3 * steps / 4:
			c.startMatcher("m2", "127.0.0.3")
		}
		ts := base + int64(step)*1000
		var todo []*geomatchv1.LocationUpdate
		for i := range pos {
			pos[i] = fencetest.Walk(pos[i], 50+r.Float64()*700, r.Float64(), r.Float64())
			id, class := fmt.Sprintf("d%03d", i), ""
			if i%4 == 0 {
				class = "xl"
			}
			todo = append(todo, &geomatchv1.LocationUpdate{DriverId: id, VehicleClass: class,
				Position: &geomatchv1.LatLng{Lat: pos[i].Lat, Lng: pos[i].Lng}, TimestampMs: ts})
			o.Observe(id, class, pos[i], ts)
		}
		// Every update of the step is acknowledged before the next step:
		// refused ones (a failover in progress) are sent again.
		deadline := time.Now().Add(60 * time.Second)
		for len(todo) > 0 {
			if time.Now().After(deadline) {
				t.Fatalf("step %d: %d updates still refused after 60 s", step, len(todo))
			}
			var again []*geomatchv1.LocationUpdate
			for len(todo) > 0 {
				chunk := todo[:min(len(todo), 5000)]
				todo = todo[len(chunk):]
				resp, err := drivers[1].UpdateLocations(ctxFor(t, 20*time.Second), &geomatchv1.UpdateLocationsRequest{Updates: chunk})
				if err != nil {
					again = append(again, chunk...)
					continue
				}
				for _, rj := range resp.GetRejected() {
					again = append(again, chunk[rj.GetIndex()])
				}
			}
			if len(again) > 0 {
				retried += len(again)
				time.Sleep(100 * time.Millisecond)
			}
			todo = again
		}
	}
	want := len(o.Facts)
	deadline := time.Now().Add(30*time.Second + time.Duration(want)*20*time.Microsecond)
	for {
		if _, n := sub.snapshot(); n >= want || time.Now().After(deadline) {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	time.Sleep(500 * time.Millisecond)
	got, n := sub.snapshot()
	t.Logf("%d events expected, %d received through a SIGKILL, a restart and a change of router (%d updates sent again)", want, n, retried)
	if d := o.Diff(got); d != "" {
		t.Errorf("subscriber: %s", d)
	}
	if err := sub.stop(); err != nil {
		t.Errorf("subscription ended: %v", err)
	}

	// The hook delivered every event (at least once: one fact per event id)
	// though its receiver was down, a matcher died and a router died.
	deadline = time.Now().Add(30 * time.Second)
	for {
		if _, n := recv.snapshot(); n >= want || time.Now().After(deadline) {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	hookFacts, hn := recv.snapshot()
	t.Logf("hook: %d events delivered (%d POSTs refused while the receiver was down)", hn, recv.refused.Load())
	if d := o.Diff(hookFacts); d != "" {
		t.Errorf("hook: %s", d)
	}

	// The whole log, read again from its oldest event.
	all := newSubscriber()
	stream, err := evs[1].Subscribe(ctxFor(t, 30*time.Second), &geomatchv1.SubscribeRequest{FromOldest: true, Kinds: []geomatchv1.EventKind{geomatchv1.EventKind_EVENT_KIND_FENCE}})
	if err != nil {
		t.Fatal(err)
	}
	for len(all.ids) < len(sub.ids) {
		ev, err := stream.Recv()
		if err != nil {
			t.Fatalf("reading the log from its oldest: %v after %d events", err, len(all.ids))
		}
		if _, seen := all.ids[ev.GetEventId()]; !seen {
			f := fencetest.FactOf(ev.GetFence())
			all.ids[ev.GetEventId()] = f
			all.facts[f]++
		}
	}
	if d := o.Diff(all.facts); d != "" {
		t.Errorf("log from its oldest: %s", d)
	}

	ids := make([]string, len(defs))
	for i, d := range defs {
		ids[i] = d.GetFenceId()
	}
	// The restarted matcher takes its shards back; counts settle once the
	// hand-over is done.
	var mismatch string
	for range 50 {
		mismatch = ""
		counts, err := fences[1].GetFenceCounts(ctxFor(t, 10*time.Second), &geomatchv1.GetFenceCountsRequest{FenceIds: ids})
		if err != nil {
			mismatch = err.Error()
		} else {
			for i, fc := range counts.GetCounts() {
				if want := o.Count(o.Fences[i]); fc.GetInside() != want {
					mismatch += fmt.Sprintf("fence %s: GetFenceCounts inside = %d, brute force %d; ", fc.GetFenceId(), fc.GetInside(), want)
				}
			}
		}
		if mismatch == "" {
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
	if mismatch != "" {
		t.Error(mismatch)
	}
}

// hookReceiver is a webhook sink: it refuses deliveries (503) while down,
// and records each fact once per event id.
type hookReceiver struct {
	url     string
	down    atomic.Bool
	refused atomic.Int64
	mu      sync.Mutex
	ids     map[string]bool
	facts   map[fencetest.Fact]int
}

func newHookReceiver(t *testing.T) *hookReceiver {
	r := &hookReceiver{ids: map[string]bool{}, facts: map[fencetest.Fact]int{}}
	r.down.Store(true)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		if r.down.Load() {
			r.refused.Add(1)
			http.Error(w, "down for maintenance", http.StatusServiceUnavailable)
			return
		}
		var body struct {
			Events []json.RawMessage `json:"events"`
		}
		if err := json.NewDecoder(req.Body).Decode(&body); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		r.mu.Lock()
		defer r.mu.Unlock()
		for _, raw := range body.Events {
			ev := &geomatchv1.Event{}
			if err := protojson.Unmarshal(raw, ev); err != nil {
				http.Error(w, err.Error(), http.StatusBadRequest)
				return
			}
			if !r.ids[ev.GetEventId()] {
				r.ids[ev.GetEventId()] = true
				r.facts[fencetest.FactOf(ev.GetFence())]++
			}
		}
	}))
	t.Cleanup(srv.Close)
	r.url = srv.URL + "/hook"
	return r
}

func (r *hookReceiver) setDown(down bool) { r.down.Store(down) }

func (r *hookReceiver) snapshot() (map[fencetest.Fact]int, int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return maps.Clone(r.facts), len(r.ids)
}

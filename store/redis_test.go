package store_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/geomatch/geomatch/internal/redistest"
	"github.com/geomatch/geomatch/store"
	"github.com/geomatch/geomatch/store/storetest"
)

// prefixes numbers key prefixes, so the tests of one run share a server
// without seeing each other's keys.
var prefixes atomic.Int64

func nextPrefix() string { return fmt.Sprintf("test%d:", prefixes.Add(1)) }

// newRedis returns a store on addr (or client) with a fresh key prefix,
// closed when the test ends.
func newRedis(t *testing.T, opts store.RedisOptions) *store.Redis {
	t.Helper()
	if opts.KeyPrefix == "" {
		opts.KeyPrefix = nextPrefix()
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	s, err := store.NewRedis(ctx, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Errorf("close store: %v", err)
		}
	})
	return s
}

// newClient returns a client of addr closed when the test ends.
func newClient(t *testing.T, addr string) *redis.Client {
	t.Helper()
	c := redis.NewClient(&redis.Options{Addr: addr})
	t.Cleanup(func() { _ = c.Close() })
	return c
}

func TestRedisConformance(t *testing.T) {
	client := newClient(t, redistest.Start(t))
	storetest.Run(t, func(t *testing.T) store.Store {
		// A small buffer so the slow-subscriber rule overflows it.
		return newRedis(t, store.RedisOptions{Client: client, EventBuffer: 64})
	})
}

// TestRedisTwoMatchers: two store objects on one server, as two matcher
// nodes that both believe they own a shard during a ring change: the second
// cannot reserve the driver the first holds, and events cross between them.
func TestRedisTwoMatchers(t *testing.T) {
	addr := redistest.Start(t)
	prefix := nextPrefix()
	a := newRedis(t, store.RedisOptions{Addr: addr, KeyPrefix: prefix})
	b := newRedis(t, store.RedisOptions{Addr: addr, KeyPrefix: prefix})
	ctx := t.Context()
	now := time.Now()

	if _, err := a.Reserve(ctx, "d1", "trip-a", time.Minute, now); err != nil {
		t.Fatal(err)
	}
	_, err := b.Reserve(ctx, "d1", "trip-b", time.Minute, now)
	if !errors.Is(err, store.ErrConflict) || !strings.Contains(err.Error(), "trip-a") {
		t.Fatalf("second matcher's Reserve: err = %v, want ErrConflict naming trip-a", err)
	}
	d, err := b.Driver(ctx, "d1")
	if err != nil || d.Status != store.StatusReserved || d.TripID != "trip-a" {
		t.Fatalf("second matcher reads %+v, %v; want reserved by trip-a", d, err)
	}
	if _, err := a.Release(ctx, "d1", "trip-a"); err != nil {
		t.Fatal(err)
	}
	if _, err := b.Reserve(ctx, "d1", "trip-b", time.Minute, now); err != nil {
		t.Fatalf("second matcher's Reserve after release: %v", err)
	}

	events, err := b.Subscribe(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := a.Publish(ctx, store.Event{Kind: store.EventOffer, DriverID: "d1", TripID: "trip-b"}); err != nil {
		t.Fatal(err)
	}
	select {
	case e := <-events:
		if e.Kind != store.EventOffer || e.DriverID != "d1" || e.TripID != "trip-b" {
			t.Fatalf("event %+v", e)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("no event across stores")
	}
}

// commandLog records the commands a client sends, pipelines included.
type commandLog struct {
	mu   sync.Mutex
	cmds [][]any
}

func (l *commandLog) DialHook(next redis.DialHook) redis.DialHook { return next }

func (l *commandLog) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		l.add(cmd)
		return next(ctx, cmd)
	}
}

func (l *commandLog) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		for _, cmd := range cmds {
			l.add(cmd)
		}
		return next(ctx, cmds)
	}
}

func (l *commandLog) add(cmd redis.Cmder) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.cmds = append(l.cmds, cmd.Args())
}

// hashTag is the part of a key Redis Cluster hashes: between the first '{'
// and the next '}', if not empty; else the whole key.
func hashTag(key string) (string, bool) {
	_, rest, ok := strings.Cut(key, "{")
	if !ok {
		return key, false
	}
	tag, _, ok := strings.Cut(rest, "}")
	if !ok || tag == "" {
		return key, false
	}
	return tag, true
}

// TestRedisKeysShareOneSlotPerCall runs every operation with a client that
// logs its commands and checks that each command and script touches one
// key, and that the key's hash tag is the entity it belongs to: what makes
// the store run on Redis Cluster.
func TestRedisKeysShareOneSlotPerCall(t *testing.T) {
	addr := redistest.Start(t)
	client := newClient(t, addr)
	log := &commandLog{}
	client.AddHook(log)
	s := newRedis(t, store.RedisOptions{Client: client})
	ctx := t.Context()
	now := time.Now()

	// Every operation at least once, scripts both on their success and on
	// their refusal paths.
	must := func(_ any, err error) {
		t.Helper()
		if err != nil && !errors.Is(err, store.ErrConflict) {
			t.Fatal(err)
		}
	}
	must(s.Driver(ctx, "drv-1"))
	must(s.Reserve(ctx, "drv-1", "trip-1", time.Minute, now))
	must(s.Reserve(ctx, "drv-1", "trip-2", time.Minute, now))
	must(s.SetOffer(ctx, "drv-1", store.Offer{ID: "o", TripID: "trip-1"}, now.Add(time.Minute)))
	must(s.StartTrip(ctx, "drv-1", "trip-1", now))
	must(s.EndTrip(ctx, "drv-1", "trip-1"))
	must(s.SetOffline(ctx, "drv-1"))
	must(s.SetAvailable(ctx, "drv-1"))
	must(s.Release(ctx, "drv-1", "trip-1"))
	rec, _, err := s.CreateTrip(ctx, store.TripRecord{ID: "trip-1"})
	must(rec, err)
	must(s.Trip(ctx, "trip-1"))
	must(s.UpdateTrip(ctx, store.TripRecord{ID: "trip-1", Version: 1}))
	must(s.UpdateTrip(ctx, store.TripRecord{ID: "trip-1", Version: 2, Final: true}))
	must(s.ActiveTrips(ctx, 10))
	must(nil, s.SavePositions(ctx, 42, []store.Position{{DriverID: "drv-1", TimestampMs: 1}}))
	must(s.Positions(ctx, 42))
	must(nil, s.DeletePositions(ctx, 42, []string{"drv-1"}))
	must(nil, s.Publish(ctx, store.Event{Kind: store.EventTrip}))

	wantTags := map[string]bool{"drv-1": true, "trip-1": true, "active": true, "42": true}
	log.mu.Lock()
	defer log.mu.Unlock()
	seen := map[string]bool{}
	for _, args := range log.cmds {
		name := strings.ToLower(fmt.Sprint(args[0]))
		var keys []string
		switch name {
		case "ping", "hello", "client", "publish":
			continue // no key
		case "evalsha", "eval":
			if n := fmt.Sprint(args[2]); n != "1" {
				t.Errorf("%s with %s keys: %v", name, n, args)
				continue
			}
			keys = []string{fmt.Sprint(args[3])}
			name = "script"
		case "hmget", "hgetall", "hdel", "zadd", "zrem", "zrange":
			keys = []string{fmt.Sprint(args[1])}
		default:
			t.Errorf("unexpected command %v: add it to this test with its keys", args)
			continue
		}
		seen[name] = true
		for _, k := range keys {
			tag, ok := hashTag(k)
			if !ok || !wantTags[tag] {
				t.Errorf("%s key %q: hash tag %q, want one of the entity ids", name, k, tag)
			}
		}
	}
	for _, name := range []string{"script", "hmget", "hgetall", "zadd", "zrem", "zrange"} {
		if !seen[name] {
			t.Errorf("no %s command seen: the test no longer covers it", name)
		}
	}
}

// TestRedisActiveSetRepair: ids left in the active set by a crash between
// its two writes are skipped, and removed once they are old enough not to
// be a create in flight.
func TestRedisActiveSetRepair(t *testing.T) {
	client := newClient(t, redistest.Start(t))
	prefix := nextPrefix()
	s := newRedis(t, store.RedisOptions{Client: client, KeyPrefix: prefix})
	ctx := t.Context()
	active := prefix + "{active}:trips"
	old := float64(time.Now().Add(-time.Hour).UnixMilli())
	young := float64(time.Now().UnixMilli())
	if err := client.ZAdd(ctx, active, redis.Z{Score: old, Member: "crashed"}, redis.Z{Score: young, Member: "in-flight"}).Err(); err != nil {
		t.Fatal(err)
	}
	if _, _, err := s.CreateTrip(ctx, store.TripRecord{ID: "real"}); err != nil {
		t.Fatal(err)
	}
	// A trip made final whose removal from the set was lost.
	if _, _, err := s.CreateTrip(ctx, store.TripRecord{ID: "done"}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.UpdateTrip(ctx, store.TripRecord{ID: "done", Version: 1, Final: true}); err != nil {
		t.Fatal(err)
	}
	if err := client.ZAdd(ctx, active, redis.Z{Score: young, Member: "done"}).Err(); err != nil {
		t.Fatal(err)
	}

	got, err := s.ActiveTrips(ctx, 10)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 || got[0].ID != "real" {
		t.Fatalf("ActiveTrips = %v, want [real]", got)
	}
	left, err := client.ZRange(ctx, active, 0, -1).Result()
	if err != nil {
		t.Fatal(err)
	}
	if strings.Join(left, ",") != "in-flight,real" && strings.Join(left, ",") != "real,in-flight" {
		t.Fatalf("active set after repair: %v, want in-flight and real", left)
	}
}

// TestRedisFinalTripsExpire: final records get a TTL, unfinished ones none.
func TestRedisFinalTripsExpire(t *testing.T) {
	client := newClient(t, redistest.Start(t))
	prefix := nextPrefix()
	s := newRedis(t, store.RedisOptions{Client: client, KeyPrefix: prefix})
	ctx := t.Context()
	for _, rec := range []store.TripRecord{{ID: "open"}, {ID: "born-final", Final: true}, {ID: "finished"}} {
		if _, _, err := s.CreateTrip(ctx, rec); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := s.UpdateTrip(ctx, store.TripRecord{ID: "finished", Version: 1, Final: true}); err != nil {
		t.Fatal(err)
	}
	for id, final := range map[string]bool{"open": false, "born-final": true, "finished": true} {
		ttl, err := client.PTTL(ctx, prefix+"trip:{"+id+"}").Result()
		if err != nil {
			t.Fatal(err)
		}
		if final && (ttl <= 6*24*time.Hour || ttl > 7*24*time.Hour) {
			t.Errorf("final trip %s: TTL %v, want about 7 days", id, ttl)
		}
		if !final && ttl >= 0 {
			t.Errorf("open trip %s: TTL %v, want none", id, ttl)
		}
	}
}

// TestRedisScriptCacheFlushed: after SCRIPT FLUSH (a restarted or failed
// over server) the scripts are sent again.
func TestRedisScriptCacheFlushed(t *testing.T) {
	client := newClient(t, redistest.Start(t))
	s := newRedis(t, store.RedisOptions{Client: client})
	ctx := t.Context()
	if _, err := s.Reserve(ctx, "d1", "t1", time.Minute, time.Now()); err != nil {
		t.Fatal(err)
	}
	if err := client.ScriptFlush(ctx).Err(); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Reserve(ctx, "d2", "t1", time.Minute, time.Now()); err != nil {
		t.Fatalf("Reserve after SCRIPT FLUSH: %v", err)
	}
}

// TestRedisStateSurvivesRestart: a reservation and a trip written before a
// server restart (append-only file on) are there after it.
func TestRedisStateSurvivesRestart(t *testing.T) {
	dir := t.TempDir()
	prefix := nextPrefix()
	now := time.Now()
	t.Run("before", func(t *testing.T) {
		s := newRedis(t, store.RedisOptions{Addr: redistest.StartWithDir(t, dir), KeyPrefix: prefix})
		if _, err := s.Reserve(t.Context(), "d1", "t1", time.Hour, now); err != nil {
			t.Fatal(err)
		}
		if _, _, err := s.CreateTrip(t.Context(), store.TripRecord{ID: "t1", Data: []byte("x")}); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("after", func(t *testing.T) {
		s := newRedis(t, store.RedisOptions{Addr: redistest.StartWithDir(t, dir), KeyPrefix: prefix})
		if _, err := s.Reserve(t.Context(), "d1", "t2", time.Hour, now); !errors.Is(err, store.ErrConflict) {
			t.Fatalf("Reserve of a driver reserved before the restart: err = %v, want ErrConflict", err)
		}
		if rec, err := s.Trip(t.Context(), "t1"); err != nil || string(rec.Data) != "x" {
			t.Fatalf("Trip after restart = %+v, %v", rec, err)
		}
	})
}

// TestNewRedisNoServer: construction fails fast and names the address.
func TestNewRedisNoServer(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	_ = l.Close()
	ctx, cancel := context.WithTimeout(t.Context(), 500*time.Millisecond)
	defer cancel()
	_, err = store.NewRedis(ctx, store.RedisOptions{Addr: addr})
	if err == nil || !strings.Contains(err.Error(), addr) {
		t.Fatalf("NewRedis without a server: err = %v, want an error naming %s", err, addr)
	}
	if _, err := store.NewRedis(ctx, store.RedisOptions{}); err == nil {
		t.Fatal("NewRedis with no client and no address succeeded")
	}
	if _, err := store.NewRedis(ctx, store.RedisOptions{Addr: addr, KeyPrefix: "gm{x}:"}); err == nil {
		t.Fatal("NewRedis with a brace in the key prefix succeeded")
	}
}

// TestRedisSubscriptionsStop: every goroutine a subscription starts has
// exited once its context is done or the store is closed.
func TestRedisSubscriptionsStop(t *testing.T) {
	addr := redistest.Start(t)
	ctx := t.Context()
	// Warm up: go-redis starts a few process-wide goroutines on first use.
	warm, err := store.NewRedis(ctx, store.RedisOptions{Addr: addr})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := warm.Subscribe(ctx); err != nil {
		t.Fatal(err)
	}
	if err := warm.Close(); err != nil {
		t.Fatal(err)
	}
	waitGoroutinesSettle()
	before := runtimeGoroutines()

	s, err := store.NewRedis(ctx, store.RedisOptions{Addr: addr, KeyPrefix: nextPrefix()})
	if err != nil {
		t.Fatal(err)
	}
	subCtx, cancel := context.WithCancel(ctx)
	cancelled, err := s.Subscribe(subCtx)
	if err != nil {
		t.Fatal(err)
	}
	var kept []<-chan store.Event
	for range 3 {
		ch, err := s.Subscribe(ctx)
		if err != nil {
			t.Fatal(err)
		}
		kept = append(kept, ch)
	}
	cancel()
	for range cancelled {
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	for _, ch := range kept {
		if _, ok := <-ch; ok {
			t.Fatal("subscription open after Close")
		}
	}
	waitGoroutines(t, before)
	if _, err := s.Subscribe(ctx); err == nil {
		t.Fatal("Subscribe on a closed store succeeded")
	}
}

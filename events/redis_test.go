package events_test

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync/atomic"
	"testing"

	"github.com/redis/go-redis/v9"

	"github.com/geomatch/geomatch/events"
	"github.com/geomatch/geomatch/internal/redistest"
)

// prefixes numbers key prefixes, so the tests of one run share a server
// without seeing each other's streams.
var prefixes atomic.Int64

func nextPrefix() string { return fmt.Sprintf("test%d:", prefixes.Add(1)) }

func newClient(t testing.TB, addr string) *redis.Client {
	t.Helper()
	c := redis.NewClient(&redis.Options{Addr: addr})
	t.Cleanup(func() { _ = c.Close() })
	return c
}

func newRedisLog(t testing.TB, client redis.UniversalClient, partitions int, maxLen int64) *events.Redis {
	t.Helper()
	log, err := events.NewRedis(client, events.RedisConfig{Prefix: nextPrefix(), Partitions: partitions, MaxLen: maxLen})
	if err != nil {
		t.Fatal(err)
	}
	return log
}

func TestRedisConformance(t *testing.T) {
	client := newClient(t, redistest.Start(t))
	runConformance(t, func(t *testing.T, partitions, retention int) events.Log {
		return newRedisLog(t, client, partitions, int64(retention))
	})
}

func TestRedisConfigRejectsBadValues(t *testing.T) {
	client := redis.NewClient(&redis.Options{Addr: "127.0.0.1:1"})
	defer client.Close()
	for _, cfg := range []events.RedisConfig{{Prefix: "a{b}"}, {Partitions: -2}, {MaxLen: -1}} {
		if _, err := events.NewRedis(client, cfg); err == nil {
			t.Errorf("NewRedis(%+v) succeeded", cfg)
		}
	}
	if _, err := events.NewRedis(nil, events.RedisConfig{}); err == nil {
		t.Error("NewRedis(nil) succeeded")
	}
}

func TestRedisKeysShareOneHashTag(t *testing.T) {
	log := newRedisLog(t, redis.NewClient(&redis.Options{Addr: "127.0.0.1:1"}), 3, 0)
	for p, want := range []string{"{events}:0", "{events}:1", "{events}:2"} {
		if k := log.Key(p); k[len(k)-len(want):] != want {
			t.Errorf("key %d = %q, want suffix %q", p, k, want)
		}
	}
}

// A server restarted on its append-only file keeps the log: a cursor
// from before the restart resumes with exactly the rest.
func TestRedisResumesAcrossServerRestart(t *testing.T) {
	dir := t.TempDir()
	prefix := nextPrefix()
	var recs []events.Record
	for n := range 40 {
		recs = append(recs, rec("k"+strconv.Itoa(n%3), n/3))
	}
	var cursor string
	t.Run("before", func(t *testing.T) {
		log, err := events.NewRedis(newClient(t, redistest.StartWithDir(t, dir)), events.RedisConfig{Prefix: prefix})
		if err != nil {
			t.Fatal(err)
		}
		appendAll(t, log, recs)
		es, _ := readAll(t, log, events.Cursor{}, 15)
		cursor = es[14].Cursor.String()
	})
	t.Run("after", func(t *testing.T) {
		log, err := events.NewRedis(newClient(t, redistest.StartWithDir(t, dir)), events.RedisConfig{Prefix: prefix})
		if err != nil {
			t.Fatal(err)
		}
		c, err := events.ParseCursor(cursor, log.Partitions())
		if err != nil {
			t.Fatal(err)
		}
		rest, _ := readAll(t, log, c, 7)
		if len(rest) != 25 {
			t.Fatalf("read %d entries after the restart, want 25", len(rest))
		}
	})
}

// A server that lost its data restarts its numbering: an old cursor is
// refused as ahead instead of silently skipping the new entries.
func TestRedisDataLossIsCursorAhead(t *testing.T) {
	ctx := context.Background()
	prefix := nextPrefix()
	first, err := events.NewRedis(newClient(t, redistest.Start(t)), events.RedisConfig{Prefix: prefix, Partitions: 2})
	if err != nil {
		t.Fatal(err)
	}
	appendAll(t, first, []events.Record{rec("k", 0), rec("k", 1), rec("k", 2)})
	head, err := first.Head(ctx)
	if err != nil {
		t.Fatal(err)
	}
	second, err := events.NewRedis(newClient(t, redistest.Start(t)), events.RedisConfig{Prefix: prefix, Partitions: 2})
	if err != nil {
		t.Fatal(err)
	}
	appendAll(t, second, []events.Record{rec("k", 0)})
	if _, _, err := second.Read(ctx, head, 10, 0); !errors.Is(err, events.ErrCursorAhead) {
		t.Fatalf("read = %v, want ErrCursorAhead", err)
	}
}

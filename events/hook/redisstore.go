package hook

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"
	"google.golang.org/protobuf/proto"

	geomatchv1 "github.com/geomatch/geomatch/proto/geomatch/v1"
)

// RedisStoreConfig configures NewRedisStore.
type RedisStoreConfig struct {
	// Prefix starts every key (default "geomatch"):
	//
	//	<prefix>:hooks                 hash: hook id → marshalled geomatchv1.Hook
	//	<prefix>:hook:<id>:cursor      string: the acknowledged cursor
	//	<prefix>:hook:<id>:stats       string: JSON counters (Progress)
	//	<prefix>:hook:<id>:lease       string: the owner, with a PX expiry
	//	<prefix>:deadletter:<id>       stream: dead letters
	//
	// The Lua scripts touch several of these keys at once: on Redis Cluster
	// they must hash to one slot (use a prefix like "{geomatch}").
	Prefix string
	// DeadLetterMaxLen bounds each dead-letter stream (XADD MAXLEN ~, so
	// a little more may be kept). Default 100,000: a day of a hook failing
	// at one event a second, tens of MB at most.
	DeadLetterMaxLen int64
}

// Defaults of RedisStoreConfig.
const (
	DefaultRedisPrefix           = "geomatch"
	DefaultRedisDeadLetterMaxLen = 100_000
)

// RedisStore is a Store in Redis, shared by every router of a cluster.
// Definitions hold webhook secrets in clear: protect the Redis server as
// the rest of geomatch's state.
type RedisStore struct {
	rdb     redis.UniversalClient
	prefix  string
	deadMax int64
}

var _ Store = (*RedisStore)(nil)

// NewRedisStore returns a store on rdb, which the caller keeps owning
// (and closes).
func NewRedisStore(rdb redis.UniversalClient, cfg RedisStoreConfig) *RedisStore {
	if cfg.Prefix == "" {
		cfg.Prefix = DefaultRedisPrefix
	}
	if cfg.DeadLetterMaxLen <= 0 {
		cfg.DeadLetterMaxLen = DefaultRedisDeadLetterMaxLen
	}
	return &RedisStore{rdb: rdb, prefix: cfg.Prefix, deadMax: cfg.DeadLetterMaxLen}
}

func (s *RedisStore) hooksKey() string               { return s.prefix + ":hooks" }
func (s *RedisStore) hookKey(id, what string) string { return s.prefix + ":hook:" + id + ":" + what }
func (s *RedisStore) deadKey(id string) string       { return s.prefix + ":deadletter:" + id }

// putScript stores a definition; for a new hook it checks the bound and
// sets the start progress.
// KEYS: hooks, cursor, stats. ARGV: id, definition, cursor, stats, max.
var putScript = redis.NewScript(`
if redis.call('HEXISTS', KEYS[1], ARGV[1]) == 0 then
  local max = tonumber(ARGV[5])
  if max > 0 and redis.call('HLEN', KEYS[1]) >= max then return -1 end
  redis.call('SET', KEYS[2], ARGV[3])
  redis.call('SET', KEYS[3], ARGV[4])
end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
return 1
`)

// PutHook implements Store.
func (s *RedisStore) PutHook(ctx context.Context, h *geomatchv1.Hook, start Progress, maxHooks int) error {
	def := proto.Clone(h).(*geomatchv1.Hook)
	def.Stats = nil
	b, err := proto.Marshal(def)
	if err != nil {
		return fmt.Errorf("put hook %s: %w", h.GetHookId(), err)
	}
	stats, err := json.Marshal(start)
	if err != nil {
		return fmt.Errorf("put hook %s: %w", h.GetHookId(), err)
	}
	id := h.GetHookId()
	n, err := putScript.Run(ctx, s.rdb,
		[]string{s.hooksKey(), s.hookKey(id, "cursor"), s.hookKey(id, "stats")},
		id, b, start.Cursor, stats, maxHooks).Int()
	if err != nil {
		return fmt.Errorf("put hook %s: %w", id, err)
	}
	if n < 0 {
		return fmt.Errorf("put hook %s: %w (at most %d)", id, ErrTooManyHooks, maxHooks)
	}
	return nil
}

// deleteScript removes a hook and everything about it.
// KEYS: hooks, cursor, stats, lease, dead letters. ARGV: id.
var deleteScript = redis.NewScript(`
if redis.call('HDEL', KEYS[1], ARGV[1]) == 0 then return 0 end
redis.call('DEL', KEYS[2], KEYS[3], KEYS[4], KEYS[5])
return 1
`)

// DeleteHook implements Store.
func (s *RedisStore) DeleteHook(ctx context.Context, id string) error {
	n, err := deleteScript.Run(ctx, s.rdb,
		[]string{s.hooksKey(), s.hookKey(id, "cursor"), s.hookKey(id, "stats"), s.hookKey(id, "lease"), s.deadKey(id)},
		id).Int()
	if err != nil {
		return fmt.Errorf("delete hook %s: %w", id, err)
	}
	if n == 0 {
		return fmt.Errorf("delete hook %s: %w", id, ErrNotFound)
	}
	return nil
}

// Hooks implements Store.
func (s *RedisStore) Hooks(ctx context.Context) ([]*geomatchv1.Hook, error) {
	all, err := s.rdb.HGetAll(ctx, s.hooksKey()).Result()
	if err != nil {
		return nil, fmt.Errorf("list hooks: %w", err)
	}
	out := make([]*geomatchv1.Hook, 0, len(all))
	for id, b := range all {
		h := &geomatchv1.Hook{}
		if err := proto.Unmarshal([]byte(b), h); err != nil {
			return nil, fmt.Errorf("list hooks: decode %s: %w", id, err)
		}
		out = append(out, h)
	}
	return out, nil
}

// Progress implements Store.
func (s *RedisStore) Progress(ctx context.Context, id string) (Progress, error) {
	vals, err := s.rdb.MGet(ctx, s.hookKey(id, "cursor"), s.hookKey(id, "stats")).Result()
	if err != nil {
		return Progress{}, fmt.Errorf("progress of hook %s: %w", id, err)
	}
	cursor, ok := vals[0].(string)
	if !ok {
		return Progress{}, fmt.Errorf("progress of hook %s: %w", id, ErrNotFound)
	}
	var p Progress
	if stats, ok := vals[1].(string); ok {
		if err := json.Unmarshal([]byte(stats), &p); err != nil {
			return Progress{}, fmt.Errorf("progress of hook %s: decode stats: %w", id, err)
		}
	}
	p.Cursor = cursor
	return p, nil
}

// saveScript stores progress if the owner holds the lease.
// KEYS: lease, cursor, stats. ARGV: owner, cursor, stats.
var saveScript = redis.NewScript(`
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
redis.call('SET', KEYS[2], ARGV[2])
redis.call('SET', KEYS[3], ARGV[3])
return 1
`)

// SaveProgress implements Store.
func (s *RedisStore) SaveProgress(ctx context.Context, id, owner string, p Progress) error {
	stats, err := json.Marshal(p)
	if err != nil {
		return fmt.Errorf("save progress of hook %s: %w", id, err)
	}
	n, err := saveScript.Run(ctx, s.rdb,
		[]string{s.hookKey(id, "lease"), s.hookKey(id, "cursor"), s.hookKey(id, "stats")},
		owner, p.Cursor, stats).Int()
	if err != nil {
		return fmt.Errorf("save progress of hook %s: %w", id, err)
	}
	if n == 0 {
		return fmt.Errorf("save progress of hook %s: %w", id, ErrLeaseLost)
	}
	return nil
}

// extendScript extends a lease its owner holds.
// KEYS: lease. ARGV: owner, ttl in ms.
var extendScript = redis.NewScript(`
if redis.call('GET', KEYS[1]) == ARGV[1] then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  return 1
end
return 0
`)

// Lease implements Store: SET NX PX to acquire, a compare-and-extend
// script to renew.
func (s *RedisStore) Lease(ctx context.Context, id, owner string, ttl time.Duration) (bool, error) {
	key := s.hookKey(id, "lease")
	ok, err := s.rdb.SetNX(ctx, key, owner, ttl).Result()
	if err != nil {
		return false, fmt.Errorf("lease hook %s: %w", id, err)
	}
	if ok {
		return true, nil
	}
	n, err := extendScript.Run(ctx, s.rdb, []string{key}, owner, ttl.Milliseconds()).Int()
	if err != nil {
		return false, fmt.Errorf("extend lease of hook %s: %w", id, err)
	}
	return n == 1, nil
}

// releaseScript deletes a lease its owner holds. KEYS: lease. ARGV: owner.
var releaseScript = redis.NewScript(`
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
`)

// Release implements Store.
func (s *RedisStore) Release(ctx context.Context, id, owner string) error {
	if err := releaseScript.Run(ctx, s.rdb, []string{s.hookKey(id, "lease")}, owner).Err(); err != nil {
		return fmt.Errorf("release lease of hook %s: %w", id, err)
	}
	return nil
}

// DeadLetter implements Store: one XADD <prefix>:deadletter:<id> MAXLEN ~
// <DeadLetterMaxLen> * id <event_id> key <key> event <json> error <text>
// time_ms <ms> per letter, pipelined.
func (s *RedisStore) DeadLetter(ctx context.Context, id string, letters []DeadLetter) error {
	pipe := s.rdb.Pipeline()
	for _, l := range letters {
		pipe.XAdd(ctx, &redis.XAddArgs{
			Stream: s.deadKey(id),
			MaxLen: s.deadMax,
			Approx: true,
			Values: []any{"id", l.EventID, "key", l.Key, "event", l.JSON, "error", l.Error, "time_ms", l.TimeMs},
		})
	}
	if _, err := pipe.Exec(ctx); err != nil {
		return fmt.Errorf("dead-letter %d events of hook %s: %w", len(letters), id, err)
	}
	return nil
}

// DeadLetters implements Store.
func (s *RedisStore) DeadLetters(ctx context.Context, id string, max int) ([]DeadLetter, error) {
	msgs, err := s.rdb.XRangeN(ctx, s.deadKey(id), "-", "+", int64(max)).Result()
	if err != nil && !errors.Is(err, redis.Nil) {
		return nil, fmt.Errorf("dead letters of hook %s: %w", id, err)
	}
	out := make([]DeadLetter, 0, len(msgs))
	for _, m := range msgs {
		str := func(k string) string { v, _ := m.Values[k].(string); return v }
		ms, _ := strconv.ParseInt(str("time_ms"), 10, 64)
		out = append(out, DeadLetter{EventID: str("id"), Key: str("key"), JSON: []byte(str("event")), Error: str("error"), TimeMs: ms})
	}
	return out, nil
}

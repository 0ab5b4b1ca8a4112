package store

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
)

// Fence keys (prefix P); the definitions share one hash tag, so the
// scripts run on Redis Cluster too:
//
//	P {fences}:data       hash: fence id → marshalled geomatchv1.Fence
//	P {fences}:set        hash: fence id → set
//	P {fences}:ids        sorted set (all scores 0): every fence id, by id
//	P {fences}:ids:<set>  sorted set (all scores 0): the set's fence ids
//	P {fences}:rev        sorted set: fence id → revision of its last put
//	P {fences}:dead       sorted set: deleted fence id → revision (bounded)
//	P {fences}:counter    the last revision
//	P {fences}:floor      the highest revision of a forgotten deletion
//	P fst:{driverID}      the fences a driver is inside, comma-separated
//
// A driver's fence state expires after fenceStateTTL without a transition,
// longer than any driver TTL.

const fenceStateTTL = 24 * time.Hour

func (r *Redis) fenceKey(suffix string) string { return r.prefix + "{fences}:" + suffix }
func (r *Redis) fenceStateKey(id string) string {
	return r.prefix + "fst:{" + id + "}"
}

var putFenceScript = redis.NewScript(`
local base, id, set, data, maxn = ARGV[1], ARGV[2], ARGV[3], ARGV[4], tonumber(ARGV[5])
local exists = redis.call('HEXISTS', base .. 'data', id)
if exists == 0 and redis.call('ZCARD', base .. 'ids') >= maxn then
  return -1
end
local rev = redis.call('INCR', base .. 'counter')
local old = redis.call('HGET', base .. 'set', id)
if old and old ~= set then
  redis.call('ZREM', base .. 'ids:' .. old, id)
end
redis.call('HSET', base .. 'data', id, data)
redis.call('HSET', base .. 'set', id, set)
redis.call('ZADD', base .. 'ids:' .. set, 0, id)
redis.call('ZADD', base .. 'ids', 0, id)
redis.call('ZADD', base .. 'rev', rev, id)
redis.call('ZREM', base .. 'dead', id)
return rev
`)

var deleteFenceScript = redis.NewScript(`
local base, id, maxdead = ARGV[1], ARGV[2], tonumber(ARGV[3])
if redis.call('HEXISTS', base .. 'data', id) == 0 then
  return -1
end
local rev = redis.call('INCR', base .. 'counter')
local set = redis.call('HGET', base .. 'set', id)
redis.call('HDEL', base .. 'data', id)
redis.call('HDEL', base .. 'set', id)
if set then
  redis.call('ZREM', base .. 'ids:' .. set, id)
end
redis.call('ZREM', base .. 'ids', id)
redis.call('ZREM', base .. 'rev', id)
redis.call('ZADD', base .. 'dead', rev, id)
if redis.call('ZCARD', base .. 'dead') > maxdead then
  local popped = redis.call('ZPOPMIN', base .. 'dead')
  local floor = tonumber(redis.call('GET', base .. 'floor') or '0')
  if tonumber(popped[2]) > floor then
    redis.call('SET', base .. 'floor', popped[2])
  end
end
return rev
`)

var fenceChangesScript = redis.NewScript(`
local base, since, limit = ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3])
local floor = tonumber(redis.call('GET', base .. 'floor') or '0')
local counter = tonumber(redis.call('GET', base .. 'counter') or '0')
local reset = 0
if since < floor then
  reset = 1
  since = 0
end
local live = redis.call('ZRANGEBYSCORE', base .. 'rev', '(' .. since, '+inf', 'WITHSCORES', 'LIMIT', 0, limit + 1)
local dead = {}
if since > 0 then
  dead = redis.call('ZRANGEBYSCORE', base .. 'dead', '(' .. since, '+inf', 'WITHSCORES', 'LIMIT', 0, limit + 1)
end
return {counter, reset, since, live, dead}
`)

// PutFence implements Fences.
func (r *Redis) PutFence(ctx context.Context, rec FenceRecord) (FenceRecord, error) {
	rev, err := putFenceScript.Run(ctx, r.client, []string{r.fenceKey("data")},
		r.fenceKey(""), rec.ID, rec.Set, rec.Data, DefaultMaxFences).Int64()
	if err != nil {
		return FenceRecord{}, fmt.Errorf("put fence %s: %w", rec.ID, err)
	}
	if rev < 0 {
		return FenceRecord{}, ErrFenceLimit
	}
	rec.Rev = uint64(rev)
	return rec, nil
}

// DeleteFence implements Fences.
func (r *Redis) DeleteFence(ctx context.Context, id string) (uint64, error) {
	rev, err := deleteFenceScript.Run(ctx, r.client, []string{r.fenceKey("data")},
		r.fenceKey(""), id, MaxFenceTombstones).Int64()
	if err != nil {
		return 0, fmt.Errorf("delete fence %s: %w", id, err)
	}
	if rev < 0 {
		return 0, ErrNotFound
	}
	return uint64(rev), nil
}

// Fence implements Fences.
func (r *Redis) Fence(ctx context.Context, id string) (FenceRecord, error) {
	pipe := r.client.Pipeline()
	data := pipe.HGet(ctx, r.fenceKey("data"), id)
	set := pipe.HGet(ctx, r.fenceKey("set"), id)
	rev := pipe.ZScore(ctx, r.fenceKey("rev"), id)
	if _, err := pipe.Exec(ctx); err != nil {
		if errors.Is(err, redis.Nil) {
			return FenceRecord{}, ErrNotFound
		}
		return FenceRecord{}, fmt.Errorf("read fence %s: %w", id, err)
	}
	return FenceRecord{ID: id, Set: set.Val(), Rev: uint64(rev.Val()), Data: []byte(data.Val())}, nil
}

// ListFences implements Fences.
func (r *Redis) ListFences(ctx context.Context, set, after string, limit int) ([]FenceRecord, error) {
	key := r.fenceKey("ids")
	if set != "" {
		key = r.fenceKey("ids:" + set)
	}
	min := "-"
	if after != "" {
		min = "(" + after
	}
	ids, err := r.client.ZRangeByLex(ctx, key, &redis.ZRangeBy{Min: min, Max: "+", Count: int64(limit)}).Result()
	if err != nil {
		return nil, fmt.Errorf("list fences of set %q: %w", set, err)
	}
	return r.fenceRecords(ctx, ids)
}

// fenceRecords reads the listed fences; ones deleted meanwhile are left
// out.
func (r *Redis) fenceRecords(ctx context.Context, ids []string) ([]FenceRecord, error) {
	if len(ids) == 0 {
		return nil, nil
	}
	pipe := r.client.Pipeline()
	data := pipe.HMGet(ctx, r.fenceKey("data"), ids...)
	sets := pipe.HMGet(ctx, r.fenceKey("set"), ids...)
	revs := pipe.ZMScore(ctx, r.fenceKey("rev"), ids...)
	if _, err := pipe.Exec(ctx); err != nil {
		return nil, fmt.Errorf("read %d fences: %w", len(ids), err)
	}
	out := make([]FenceRecord, 0, len(ids))
	for i, id := range ids {
		d, ok := data.Val()[i].(string)
		if !ok {
			continue
		}
		s, _ := sets.Val()[i].(string)
		out = append(out, FenceRecord{ID: id, Set: s, Rev: uint64(revs.Val()[i]), Data: []byte(d)})
	}
	return out, nil
}

// CountFences implements Fences.
func (r *Redis) CountFences(ctx context.Context) (int, error) {
	n, err := r.client.ZCard(ctx, r.fenceKey("ids")).Result()
	if err != nil {
		return 0, fmt.Errorf("count fences: %w", err)
	}
	return int(n), nil
}

// FenceChanges implements Fences.
func (r *Redis) FenceChanges(ctx context.Context, since uint64, limit int) (FenceChanges, error) {
	res, err := fenceChangesScript.Run(ctx, r.client, []string{r.fenceKey("data")},
		r.fenceKey(""), strconv.FormatUint(since, 10), limit).Slice()
	if err != nil || len(res) != 5 {
		return FenceChanges{}, fmt.Errorf("fence changes since %d: %v", since, cmp.Or(err, errors.New("malformed reply")))
	}
	counter, _ := res[0].(int64)
	reset, _ := res[1].(int64)
	from, _ := res[2].(int64)
	var recs []FenceRecord
	var live []string
	for _, pair := range [][]any{asSlice(res[3]), asSlice(res[4])} {
		for i := 0; i+1 < len(pair); i += 2 {
			id, _ := pair[i].(string)
			score, _ := pair[i+1].(string)
			rev, _ := strconv.ParseUint(score, 10, 64)
			recs = append(recs, FenceRecord{ID: id, Rev: rev})
		}
	}
	nlive := len(asSlice(res[3])) / 2
	for _, rec := range recs[:nlive] {
		live = append(live, rec.ID)
	}
	slices.SortFunc(recs, func(a, b FenceRecord) int { return cmp.Compare(a.Rev, b.Rev) })
	out := FenceChanges{Reset: reset == 1}
	if len(recs) > limit {
		recs, out.More = recs[:limit], true
	}
	if len(live) > 0 {
		got, err := r.fenceRecords(ctx, live)
		if err != nil {
			return FenceChanges{}, err
		}
		byID := make(map[string]FenceRecord, len(got))
		for _, g := range got {
			byID[g.ID] = g
		}
		for i := range recs {
			if g, ok := byID[recs[i].ID]; ok {
				recs[i].Set, recs[i].Data = g.Set, g.Data
			}
		}
	}
	out.Records = recs
	out.Rev = uint64(from)
	if len(recs) > 0 {
		out.Rev = recs[len(recs)-1].Rev
	}
	if !out.More {
		out.Rev = max(out.Rev, uint64(counter))
	}
	return out, nil
}

func asSlice(v any) []any {
	s, _ := v.([]any)
	return s
}

// saveFenceStateScript sets (or, with no ids, deletes) a driver's fence
// state "ts|ids" unless the stored one is newer.
var saveFenceStateScript = redis.NewScript(`
local cur = redis.call('GET', KEYS[1])
if cur then
  local ts = tonumber(string.match(cur, '^(%d+)'))
  if ts and ts > tonumber(ARGV[1]) then
    return 0
  end
end
if ARGV[2] == '' then
  redis.call('DEL', KEYS[1])
else
  redis.call('SET', KEYS[1], ARGV[1] .. '|' .. ARGV[2], 'PX', ARGV[3])
end
return 1
`)

// FenceStates implements FenceStates: one pipelined GET per driver.
func (r *Redis) FenceStates(ctx context.Context, driverIDs []string) (map[string]FenceState, error) {
	out := make(map[string]FenceState)
	if len(driverIDs) == 0 {
		return out, nil
	}
	pipe := r.client.Pipeline()
	cmds := make([]*redis.StringCmd, len(driverIDs))
	for i, id := range driverIDs {
		cmds[i] = pipe.Get(ctx, r.fenceStateKey(id))
	}
	if _, err := pipe.Exec(ctx); err != nil && !errors.Is(err, redis.Nil) {
		return nil, fmt.Errorf("read fence states of %d drivers: %w", len(driverIDs), err)
	}
	for i, c := range cmds {
		v := c.Val()
		tsText, ids, ok := strings.Cut(v, "|")
		if !ok {
			continue
		}
		ts, err := strconv.ParseInt(tsText, 10, 64)
		if err != nil {
			return nil, fmt.Errorf("fence state of %s: malformed %q", driverIDs[i], v)
		}
		out[driverIDs[i]] = FenceState{TimestampMs: ts, IDs: strings.Split(ids, ",")}
	}
	return out, nil
}

// SaveFenceStates implements FenceStates: one pipelined script call per
// driver (the script is loaded first, so EVALSHA does not miss).
func (r *Redis) SaveFenceStates(ctx context.Context, states map[string]FenceState) error {
	if len(states) == 0 {
		return nil
	}
	for attempt := 0; ; attempt++ {
		pipe := r.client.Pipeline()
		for id, s := range states {
			saveFenceStateScript.EvalSha(ctx, pipe, []string{r.fenceStateKey(id)},
				s.TimestampMs, strings.Join(s.IDs, ","), fenceStateTTL.Milliseconds())
		}
		_, err := pipe.Exec(ctx)
		if err == nil {
			return nil
		}
		if attempt == 0 && redis.HasErrorPrefix(err, "NOSCRIPT") {
			if err := saveFenceStateScript.Load(ctx, r.client).Err(); err != nil {
				return fmt.Errorf("load the fence state script: %w", err)
			}
			continue
		}
		return fmt.Errorf("save fence states of %d drivers: %w", len(states), err)
	}
}

// Client returns the Redis client the store uses (for the event log and
// hooks, which share the server).
func (r *Redis) Client() redis.UniversalClient { return r.client }

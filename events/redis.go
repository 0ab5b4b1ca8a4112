package events

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
)

// RedisConfig configures NewRedis.
type RedisConfig struct {
	// Prefix starts every key, so several deployments (or tests) can share
	// a server. Default "geomatch:". It must not contain '{' or '}': the
	// hash tag is the log's business.
	Prefix string
	// Partitions is the number of partitions (streams). Default 8: enough
	// to spread readers' work, few enough for a compact cursor. It is part
	// of the log's identity: changing it orphans every cursor handed out
	// (ParseCursor refuses them) and breaks per-key order across the
	// change.
	Partitions int
	// MaxLen is how many entries each partition keeps, approximately
	// (XADD MAXLEN ~: never fewer, up to one stream node more). Default
	// 1_000_000: up to about 200 MB of 200-byte events per partition; at
	// 2,000 events/s over 8 partitions, over an hour of history.
	MaxLen int64
}

// Defaults of RedisConfig.
const (
	DefaultRedisPrefix = "geomatch:"
	DefaultRedisMaxLen = 1_000_000
)

func (c *RedisConfig) setDefaults() error {
	if c.Prefix == "" {
		c.Prefix = DefaultRedisPrefix
	}
	if c.Partitions == 0 {
		c.Partitions = DefaultPartitions
	}
	if c.MaxLen == 0 {
		c.MaxLen = DefaultRedisMaxLen
	}
	if strings.ContainsAny(c.Prefix, "{}") {
		return fmt.Errorf("prefix %q contains '{' or '}'", c.Prefix)
	}
	if c.Partitions < 0 || c.Partitions > maxPartitions {
		return fmt.Errorf("partitions %d not in [1, %d]", c.Partitions, maxPartitions)
	}
	if c.MaxLen < 0 {
		return fmt.Errorf("max length %d is negative", c.MaxLen)
	}
	return nil
}

// Redis is the Log on Redis Streams (standalone, Sentinel or Cluster).
//
// Partition p is the stream
//
//	<prefix>{events}:<p>
//
// All partitions share one hash tag, so one XREAD covers them all on
// Redis Cluster too (a multi-key command must stay in one slot); the
// price is that the log lives on one Cluster node. Events (fence, trip
// and driver lifecycle, not position updates) come at a rate one node
// serves many times over.
//
// Entries get the ids 0-1, 0-2, ... (XADD with the id "0-*": Redis picks
// the next sequence number). Numbering every partition without holes is
// what makes gap detection exact and free: a read after 0-n that does
// not start at 0-(n+1) has lost entries to trimming, and the log says so
// with a *TrimmedError instead of skipping them. (Redis 7.0 does not
// record the ids MAXLEN trimming removes: max-deleted-entry-id counts
// XDEL only.) It also catches a server that lost data: its numbering
// restarts, and a cursor past the newest id fails with ErrCursorAhead.
// The time of an entry is its "t" field, not its id.
//
// Fields of an entry: i event id, y key, k kind, s set, f fence id (s
// and f only when not empty), t time (ms), p payload.
//
// Durability is the server's: Append returns once Redis has applied the
// XADDs; with appendonly yes and appendfsync always they are on disk,
// with the default everysec a server crash may lose the last second
// (which readers then see as ErrCursorAhead, not as a silent gap).
type Redis struct {
	client redis.UniversalClient
	cfg    RedisConfig
	keys   []string
}

var _ Log = (*Redis)(nil)

// NewRedis returns the log on client (which the log does not close).
func NewRedis(client redis.UniversalClient, cfg RedisConfig) (*Redis, error) {
	if err := cfg.setDefaults(); err != nil {
		return nil, fmt.Errorf("redis event log: %w", err)
	}
	if client == nil {
		return nil, errors.New("redis event log: nil client")
	}
	r := &Redis{client: client, cfg: cfg, keys: make([]string, cfg.Partitions)}
	for p := range r.keys {
		r.keys[p] = cfg.Prefix + "{events}:" + strconv.Itoa(p)
	}
	return r, nil
}

// Partitions returns the partition count.
func (r *Redis) Partitions() int { return r.cfg.Partitions }

// Key returns the stream key of partition p (for tools and tests).
func (r *Redis) Key(p int) string { return r.keys[p] }

// Entry field names.
const (
	fieldID      = "i"
	fieldKey     = "y"
	fieldKind    = "k"
	fieldSet     = "s"
	fieldFence   = "f"
	fieldTime    = "t"
	fieldPayload = "p"
)

// Append adds recs with one XADD each, trimming each partition to about
// MaxLen, all in one pipeline (one round trip). Records keep their order
// within a partition, hence per key. If it fails, a prefix of recs may
// have been stored: the caller retries the whole batch, and readers drop
// the duplicates by event id.
func (r *Redis) Append(ctx context.Context, recs []Record) error {
	if len(recs) == 0 {
		return nil
	}
	pipe := r.client.Pipeline()
	for i := range recs {
		rec := &recs[i]
		vals := make([]any, 0, 14)
		vals = append(vals, fieldID, rec.ID, fieldKey, rec.Key, fieldKind, int64(rec.Kind), fieldTime, rec.TimeMs)
		if rec.Set != "" {
			vals = append(vals, fieldSet, rec.Set)
		}
		if rec.FenceID != "" {
			vals = append(vals, fieldFence, rec.FenceID)
		}
		vals = append(vals, fieldPayload, rec.Payload)
		pipe.XAdd(ctx, &redis.XAddArgs{
			Stream: r.keys[PartitionOf(rec.Key, r.cfg.Partitions)],
			MaxLen: r.cfg.MaxLen,
			Approx: true,
			ID:     "0-*",
			Values: vals,
		})
	}
	if _, err := pipe.Exec(ctx); err != nil {
		return fmt.Errorf("append %d events to redis: %w", len(recs), err)
	}
	return nil
}

// Read returns up to limit entries after c (see Log.Read), waiting up to
// wait for one.
//
// Trimming is detected on every read, exactly and without another
// command: entries are numbered without holes, so a partition's first
// entry read must be the one after the cursor's position, or the entries
// between were trimmed (*TrimmedError). A partition that returns nothing
// has lost nothing after the position.
//
// Cost: a first round trip pipelines a non-blocking XREAD of every
// partition with an XINFO STREAM per partition, whose last id tells a
// cursor past the newest entry (ErrCursorAhead). When that finds nothing
// and wait > 0, a second round trip, XREAD BLOCK, waits. XREAD asks each
// of the n partitions for ceil(limit/n) entries: a reader behind on
// every partition gets about limit entries a round trip, one behind on a
// single hot partition only limit/n (it catches up n times slower than
// it could; fetching limit from each would instead fetch and drop up to
// n times too much on every catch-up read).
func (r *Redis) Read(ctx context.Context, c Cursor, limit int, wait time.Duration) ([]Entry, Cursor, error) {
	pos, err := c.widen(r.cfg.Partitions)
	if err != nil {
		return nil, c, fmt.Errorf("read events: %w", err)
	}
	if limit <= 0 {
		return nil, c, errors.New("read events: limit must be positive")
	}
	for p, ps := range pos {
		if ps.Ms != 0 {
			return nil, c, fmt.Errorf("read events: partition %d at %s, not a position of this log: %w", p, ps, ErrCursorAhead)
		}
	}
	args := make([]string, 0, 2*len(pos))
	args = append(args, r.keys...)
	for _, ps := range pos {
		args = append(args, ps.String())
	}

	// COUNT is per stream: ask each partition for its share of limit, so
	// a reader far behind on every partition fetches about limit entries,
	// not limit per partition.
	count := int64((limit + len(pos) - 1) / len(pos))
	pipe := r.client.Pipeline()
	read := pipe.XRead(ctx, &redis.XReadArgs{Streams: args, Count: count, Block: -1})
	infos := make([]*redis.XInfoStreamCmd, len(pos))
	for p := range pos {
		infos[p] = pipe.XInfoStream(ctx, r.keys[p])
	}
	_, _ = pipe.Exec(ctx) // errors are per command, below
	if err := checkAhead(pos, infos); err != nil {
		return nil, Cursor{pos: pos}, err
	}
	streams, err := read.Result()
	if dl, ok := ctx.Deadline(); ok {
		// go-redis does not interrupt a blocked XREAD when ctx ends: wait
		// no longer than ctx allows. (A cancelled ctx is noticed at the
		// end of the wait.)
		wait = min(wait, time.Until(dl))
	}
	if errors.Is(err, redis.Nil) && wait >= time.Millisecond {
		streams, err = r.client.XRead(ctx, &redis.XReadArgs{Streams: args, Count: count, Block: wait}).Result()
	}
	if errors.Is(err, redis.Nil) {
		return nil, Cursor{pos: pos}, nil
	}
	if err != nil {
		return nil, Cursor{pos: pos}, fmt.Errorf("read events from redis: %w", err)
	}
	return r.merge(pos, limit, streams)
}

// checkAhead fails with ErrCursorAhead if a partition's position is
// past its newest entry, by the XINFO STREAM answers.
func checkAhead(pos []Position, infos []*redis.XInfoStreamCmd) error {
	for p, ps := range pos {
		_, newest, err := bounds(infos[p])
		if err != nil {
			return fmt.Errorf("read events: partition %d: %w", p, err)
		}
		if newest.Less(ps) {
			return fmt.Errorf("read events: partition %d at %s, newest is %s: %w", p, ps, newest, ErrCursorAhead)
		}
	}
	return nil
}

// bounds returns a partition's oldest position (before its first entry)
// and newest (its last entry) from XINFO STREAM; both zero for a stream
// not created yet.
func bounds(info *redis.XInfoStreamCmd) (oldest, newest Position, err error) {
	v, err := info.Result()
	if err != nil {
		if strings.Contains(err.Error(), "no such key") {
			return Position{}, Position{}, nil
		}
		return Position{}, Position{}, fmt.Errorf("xinfo stream: %w", err)
	}
	if newest, err = parseID(v.LastGeneratedID); err != nil {
		return Position{}, Position{}, err
	}
	if v.Length == 0 {
		return newest, newest, nil
	}
	first, err := parseID(v.FirstEntry.ID)
	if err != nil {
		return Position{}, Position{}, err
	}
	return Position{Seq: first.Seq - 1}, newest, nil
}

// merge parses XREAD's answer and merges it into one batch, failing with
// a *TrimmedError if a partition's entries do not follow its position.
func (r *Redis) merge(pos []Position, limit int, streams []redis.XStream) ([]Entry, Cursor, error) {
	var arr [16][]redis.XMessage
	msgs := arr[:0]
	for range pos {
		msgs = append(msgs, nil)
	}
	avail := 0
	var trimmed []Position
	for _, s := range streams {
		p, err := r.partitionOfKey(s.Stream)
		if err != nil {
			return nil, Cursor{pos: pos}, err
		}
		if len(s.Messages) == 0 {
			continue
		}
		first, err := parseID(s.Messages[0].ID)
		if err != nil {
			return nil, Cursor{pos: pos}, fmt.Errorf("read events: partition %d: %w", p, err)
		}
		if first.Seq != pos[p].Seq+1 {
			if trimmed == nil {
				trimmed = append([]Position(nil), pos...)
			}
			trimmed[p] = Position{Seq: first.Seq - 1}
		}
		msgs[p] = s.Messages
		avail += len(s.Messages)
	}
	if trimmed != nil {
		return nil, Cursor{pos: pos}, fmt.Errorf("read events: %w", &TrimmedError{Oldest: Cursor{pos: trimmed}})
	}
	var decodeErr error
	peek := func(p int) (int64, bool) {
		if len(msgs[p]) == 0 || decodeErr != nil {
			return 0, false
		}
		t, _ := strconv.ParseInt(str(msgs[p][0].Values[fieldTime]), 10, 64)
		return t, true
	}
	take := func(p int) (Record, Position) {
		m := msgs[p][0]
		msgs[p] = msgs[p][1:]
		rec, ps, err := decodeEntry(m)
		if err != nil && decodeErr == nil {
			decodeErr = fmt.Errorf("read events: partition %d: %w", p, err)
		}
		return rec, ps
	}
	entries, next := merge(pos, limit, avail, peek, take)
	if decodeErr != nil {
		return nil, Cursor{pos: pos}, decodeErr
	}
	return entries, next, nil
}

// partitionOfKey maps a stream key back to its partition.
func (r *Redis) partitionOfKey(key string) (int, error) {
	p, err := strconv.Atoi(strings.TrimPrefix(key, r.cfg.Prefix+"{events}:"))
	if err != nil || p < 0 || p >= len(r.keys) || r.keys[p] != key {
		return 0, fmt.Errorf("read events: unexpected stream %q in reply", key)
	}
	return p, nil
}

// decodeEntry turns a stream entry back into a record.
func decodeEntry(m redis.XMessage) (Record, Position, error) {
	ps, err := parseID(m.ID)
	if err != nil {
		return Record{}, Position{}, err
	}
	kind, err := strconv.ParseUint(str(m.Values[fieldKind]), 10, 8)
	if err != nil {
		return Record{}, ps, fmt.Errorf("entry %s: kind: %w", m.ID, err)
	}
	t, err := strconv.ParseInt(str(m.Values[fieldTime]), 10, 64)
	if err != nil {
		return Record{}, ps, fmt.Errorf("entry %s: time: %w", m.ID, err)
	}
	return Record{
		ID:      str(m.Values[fieldID]),
		Key:     str(m.Values[fieldKey]),
		Kind:    Kind(kind),
		Set:     str(m.Values[fieldSet]),
		FenceID: str(m.Values[fieldFence]),
		TimeMs:  t,
		Payload: []byte(str(m.Values[fieldPayload])),
	}, ps, nil
}

// str is a field value as a string ("" when absent).
func str(v any) string {
	s, _ := v.(string)
	return s
}

// parseID parses a stream id of this log ("0-n").
func parseID(id string) (Position, error) {
	msStr, seqStr, ok := strings.Cut(id, "-")
	if !ok {
		return Position{}, fmt.Errorf("stream id %q: no '-'", id)
	}
	ms, err1 := strconv.ParseUint(msStr, 10, 64)
	seq, err2 := strconv.ParseUint(seqStr, 10, 64)
	if err1 != nil || err2 != nil {
		return Position{}, fmt.Errorf("stream id %q: not ms-seq", id)
	}
	if ms != 0 {
		return Position{}, fmt.Errorf("stream id %q: not an event log id (0-n)", id)
	}
	return Position{Ms: ms, Seq: seq}, nil
}

// Head returns the cursor after the newest entry.
func (r *Redis) Head(ctx context.Context) (Cursor, error) {
	return r.edges(ctx, func(oldest, newest Position) Position { return newest })
}

// Oldest returns the cursor before the oldest entry retained.
func (r *Redis) Oldest(ctx context.Context) (Cursor, error) {
	return r.edges(ctx, func(oldest, newest Position) Position { return oldest })
}

// edges runs XINFO STREAM on every partition in one pipeline and picks a
// position of each.
func (r *Redis) edges(ctx context.Context, pick func(oldest, newest Position) Position) (Cursor, error) {
	pipe := r.client.Pipeline()
	infos := make([]*redis.XInfoStreamCmd, len(r.keys))
	for p, k := range r.keys {
		infos[p] = pipe.XInfoStream(ctx, k)
	}
	_, _ = pipe.Exec(ctx)
	pos := make([]Position, len(r.keys))
	for p := range pos {
		oldest, newest, err := bounds(infos[p])
		if err != nil {
			return Cursor{}, fmt.Errorf("event log edges: partition %d: %w", p, err)
		}
		pos[p] = pick(oldest, newest)
	}
	return Cursor{pos: pos}, nil
}

package store

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"strings"
)

// SavePositions implements Store with one script call: the shard's hash
// keeps, per driver, the position with the newer timestamp (an equal
// timestamp replaces).
func (r *Redis) SavePositions(ctx context.Context, shard uint64, ps []Position) error {
	if len(ps) == 0 {
		return nil
	}
	args := make([]any, 0, 3*len(ps))
	for _, p := range ps {
		args = append(args, p.DriverID, encodePosition(p), strconv.FormatInt(p.TimestampMs, 10))
	}
	if err := savePositionsScript.Run(ctx, r.client, []string{r.positionsKey(shard)}, args...).Err(); err != nil {
		return fmt.Errorf("save %d positions of shard %d: %w", len(ps), shard, err)
	}
	return nil
}

// DeletePositions implements Store.
func (r *Redis) DeletePositions(ctx context.Context, shard uint64, driverIDs []string) error {
	if len(driverIDs) == 0 {
		return nil
	}
	if err := r.client.HDel(ctx, r.positionsKey(shard), driverIDs...).Err(); err != nil {
		return fmt.Errorf("delete %d positions of shard %d: %w", len(driverIDs), shard, err)
	}
	return nil
}

// Positions implements Store, ordered by driver id.
func (r *Redis) Positions(ctx context.Context, shard uint64) ([]Position, error) {
	m, err := r.client.HGetAll(ctx, r.positionsKey(shard)).Result()
	if err != nil {
		return nil, fmt.Errorf("read positions of shard %d: %w", shard, err)
	}
	out := make([]Position, 0, len(m))
	for id, v := range m {
		p, err := decodePosition(id, v)
		if err != nil {
			return nil, fmt.Errorf("read positions of shard %d: %w", shard, err)
		}
		out = append(out, p)
	}
	sortPositions(out)
	return out, nil
}

// encodePosition is the stored value: "lat,lng,ts_ms,status,class",
// floats at full precision; the class comes last, so it may hold commas.
func encodePosition(p Position) string {
	b := make([]byte, 0, 56+len(p.VehicleClass))
	b = strconv.AppendFloat(b, p.Lat, 'g', -1, 64)
	b = append(b, ',')
	b = strconv.AppendFloat(b, p.Lng, 'g', -1, 64)
	b = append(b, ',')
	b = strconv.AppendInt(b, p.TimestampMs, 10)
	b = append(b, ',')
	b = strconv.AppendInt(b, int64(p.Status), 10)
	b = append(b, ',')
	b = append(b, p.VehicleClass...)
	return string(b)
}

// decodePosition parses a value written by encodePosition (or by earlier
// releases, which wrote only "lat,lng,ts_ms").
func decodePosition(id, v string) (Position, error) {
	lat, rest, ok1 := strings.Cut(v, ",")
	lng, rest, ok2 := strings.Cut(rest, ",")
	ts, rest, hasStatus := strings.Cut(rest, ",")
	if !ok1 || !ok2 {
		return Position{}, fmt.Errorf("corrupt position of driver %s: %q", id, v)
	}
	p := Position{DriverID: id}
	var err1, err2, err3, err4 error
	p.Lat, err1 = strconv.ParseFloat(lat, 64)
	p.Lng, err2 = strconv.ParseFloat(lng, 64)
	p.TimestampMs, err3 = strconv.ParseInt(ts, 10, 64)
	if hasStatus {
		var status, class string
		var ok bool
		if status, class, ok = strings.Cut(rest, ","); !ok {
			return Position{}, fmt.Errorf("corrupt position of driver %s: %q", id, v)
		}
		var st int64
		st, err4 = strconv.ParseInt(status, 10, 32)
		p.Status, p.VehicleClass = int32(st), class
	}
	if err1 != nil || err2 != nil || err3 != nil || err4 != nil {
		return Position{}, fmt.Errorf("corrupt position of driver %s: %q", id, v)
	}
	return p, nil
}

// PositionShards implements Store with a bounded SCAN over the position
// keys.
func (r *Redis) PositionShards(ctx context.Context, limit int) ([]uint64, error) {
	prefix := r.prefix + "pos:{"
	var out []uint64
	iter := r.client.Scan(ctx, 0, prefix+"*", 1000).Iterator()
	for iter.Next(ctx) && len(out) < limit {
		k := strings.TrimSuffix(strings.TrimPrefix(iter.Val(), prefix), "}")
		s, err := strconv.ParseUint(k, 10, 64)
		if err != nil {
			continue // not a key of ours
		}
		out = append(out, s)
	}
	if err := iter.Err(); err != nil {
		return nil, fmt.Errorf("list position shards: %w", err)
	}
	slices.Sort(out)
	out = slices.Compact(out)
	return out, nil
}

package store

import (
	"context"
	"fmt"
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

// encodePosition is the stored value: "lat,lng,ts_ms", floats at full
// precision.
func encodePosition(p Position) string {
	b := make([]byte, 0, 48)
	b = strconv.AppendFloat(b, p.Lat, 'g', -1, 64)
	b = append(b, ',')
	b = strconv.AppendFloat(b, p.Lng, 'g', -1, 64)
	b = append(b, ',')
	b = strconv.AppendInt(b, p.TimestampMs, 10)
	return string(b)
}

// decodePosition parses a value written by encodePosition.
func decodePosition(id, v string) (Position, error) {
	lat, rest, ok1 := strings.Cut(v, ",")
	lng, ts, ok2 := strings.Cut(rest, ",")
	if !ok1 || !ok2 {
		return Position{}, fmt.Errorf("corrupt position of driver %s: %q", id, v)
	}
	p := Position{DriverID: id}
	var err1, err2, err3 error
	p.Lat, err1 = strconv.ParseFloat(lat, 64)
	p.Lng, err2 = strconv.ParseFloat(lng, 64)
	p.TimestampMs, err3 = strconv.ParseInt(ts, 10, 64)
	if err1 != nil || err2 != nil || err3 != nil {
		return Position{}, fmt.Errorf("corrupt position of driver %s: %q", id, v)
	}
	return p, nil
}

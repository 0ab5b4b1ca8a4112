package store

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"
)

// activeGrace is how old an active-set entry must be before ActiveTrips
// removes it for lack of a trip record. CreateTrip adds the id before it
// writes the record, so a young entry without a record may be a create in
// flight; an old one is the leftover of a create that crashed in between.
const activeGrace = time.Minute

// activePage is how many active-set entries ActiveTrips reads per round
// trip at least.
const activePage = 128

// CreateTrip implements Store. The id enters the active set before the
// record is written, so a crash in between leaves at worst an id without a
// record, which ActiveTrips skips and later removes; never an unfinished
// trip missing from the set.
func (r *Redis) CreateTrip(ctx context.Context, rec TripRecord) (TripRecord, bool, error) {
	op := "create trip " + rec.ID
	if rec.ID == "" {
		return TripRecord{}, false, errors.New("create trip: empty trip id")
	}
	if !rec.Final {
		z := redis.Z{Score: float64(time.Now().UnixMilli()), Member: rec.ID}
		if err := r.client.ZAdd(ctx, r.activeKey(), z).Err(); err != nil {
			return TripRecord{}, false, fmt.Errorf("%s: add to active set: %w", op, err)
		}
	}
	res, err := createTripScript.Run(ctx, r.client, []string{r.tripKey(rec.ID)},
		rec.Data, boolArg(rec.Final), finalTripTTL.Milliseconds()).Slice()
	if err != nil {
		return TripRecord{}, false, fmt.Errorf("%s: %w", op, err)
	}
	if len(res) != 4 {
		return TripRecord{}, false, fmt.Errorf("%s: unexpected script reply %v", op, res)
	}
	created, _ := res[0].(int64)
	ver, _ := res[1].(string)
	final, _ := res[2].(string)
	data, _ := res[3].(string)
	out, err := parseTrip(rec.ID, ver, final, data)
	if err != nil {
		return TripRecord{}, false, fmt.Errorf("%s: %w", op, err)
	}
	if created == 0 && out.Final && !rec.Final {
		// A retry of a finished trip put its id back into the set; take it
		// out again (best effort: ActiveTrips removes final ids anyway).
		_ = r.client.ZRem(ctx, r.activeKey(), rec.ID).Err()
	}
	return out, created == 1, nil
}

// Trip implements Store.
func (r *Redis) Trip(ctx context.Context, id string) (TripRecord, error) {
	vals, err := r.client.HMGet(ctx, r.tripKey(id), "ver", "final", "data").Result()
	if err != nil {
		return TripRecord{}, fmt.Errorf("read trip %s: %w", id, err)
	}
	rec, ok, err := tripFromHMGet(id, vals)
	if err != nil {
		return TripRecord{}, fmt.Errorf("read trip %s: %w", id, err)
	}
	if !ok {
		return TripRecord{}, fmt.Errorf("read trip %s: %w", id, ErrNotFound)
	}
	return rec, nil
}

// UpdateTrip implements Store. A final trip is not updated again
// (ErrConflict). The id leaves the active set after the final record is
// written; a crash or error in between leaves an id ActiveTrips removes
// lazily.
func (r *Redis) UpdateTrip(ctx context.Context, rec TripRecord) (TripRecord, error) {
	op := fmt.Sprintf("update trip %s at version %d", rec.ID, rec.Version)
	res, err := updateTripScript.Run(ctx, r.client, []string{r.tripKey(rec.ID)},
		strconv.FormatUint(rec.Version, 10), rec.Data, boolArg(rec.Final), finalTripTTL.Milliseconds()).StringSlice()
	if err != nil {
		return TripRecord{}, fmt.Errorf("%s: %w", op, err)
	}
	switch {
	case len(res) == 1 && res[0] == "notfound":
		return TripRecord{}, fmt.Errorf("%s: %w", op, ErrNotFound)
	case len(res) == 2 && res[0] == "conflict":
		return TripRecord{}, fmt.Errorf("%s: stored version is %s: %w", op, res[1], ErrConflict)
	case len(res) == 2 && res[0] == "final":
		return TripRecord{}, fmt.Errorf("%s: trip is final: %w", op, ErrConflict)
	case len(res) != 2 || res[0] != "ok":
		return TripRecord{}, fmt.Errorf("%s: unexpected script reply %q", op, res)
	}
	ver, err := strconv.ParseUint(res[1], 10, 64)
	if err != nil {
		return TripRecord{}, fmt.Errorf("%s: corrupt version %q", op, res[1])
	}
	if rec.Final {
		// Best effort: the update is committed, so failing the call now
		// would invite a retry that can only conflict. An id left behind
		// is removed by ActiveTrips, which skips final trips.
		_ = r.client.ZRem(ctx, r.activeKey(), rec.ID).Err()
	}
	rec.Version = ver
	return rec, nil
}

// ActiveTrips implements Store: unfinished trips in the order of their
// (latest) CreateTrip call, oldest first, at millisecond resolution. Entries
// whose trip is final, or missing for longer than activeGrace, are removed
// on the way.
func (r *Redis) ActiveTrips(ctx context.Context, limit int) ([]TripRecord, error) {
	const op = "list active trips"
	if limit <= 0 {
		return nil, fmt.Errorf("%s: limit %d is not positive", op, limit)
	}
	page := int64(max(limit, activePage))
	staleBefore := float64(time.Now().Add(-activeGrace).UnixMilli())
	out := make([]TripRecord, 0, min(limit, activePage))
	seen := make(map[string]bool)
	for start := int64(0); len(out) < limit; {
		entries, err := r.client.ZRangeWithScores(ctx, r.activeKey(), start, start+page-1).Result()
		if err != nil {
			return nil, fmt.Errorf("%s: %w", op, err)
		}
		if len(entries) == 0 {
			break
		}
		pipe := r.client.Pipeline()
		cmds := make([]*redis.SliceCmd, len(entries))
		for i, z := range entries {
			cmds[i] = pipe.HMGet(ctx, r.tripKey(z.Member.(string)), "ver", "final", "data")
		}
		if _, err := pipe.Exec(ctx); err != nil {
			return nil, fmt.Errorf("%s: read trips: %w", op, err)
		}
		var stale []any
		for i, z := range entries {
			id := z.Member.(string)
			rec, ok, err := tripFromHMGet(id, cmds[i].Val())
			switch {
			case err != nil:
				return nil, fmt.Errorf("%s: trip %s: %w", op, id, err)
			case !ok && z.Score < staleBefore, ok && rec.Final:
				stale = append(stale, id)
			case !ok, seen[id]:
			case len(out) < limit:
				seen[id] = true
				out = append(out, rec)
			}
		}
		if len(stale) > 0 {
			if err := r.client.ZRem(ctx, r.activeKey(), stale...).Err(); err != nil {
				return nil, fmt.Errorf("%s: remove finished trips: %w", op, err)
			}
		}
		if int64(len(entries)) < page {
			break
		}
		start += int64(len(entries) - len(stale))
	}
	return out, nil
}

// tripFromHMGet decodes an HMGET ver final data reply; ok is false when
// the trip does not exist.
func tripFromHMGet(id string, vals []any) (TripRecord, bool, error) {
	if len(vals) != 3 || vals[0] == nil {
		return TripRecord{}, false, nil
	}
	ver, _ := vals[0].(string)
	final, _ := vals[1].(string)
	data, _ := vals[2].(string)
	rec, err := parseTrip(id, ver, final, data)
	return rec, err == nil, err
}

// parseTrip decodes the stored trip fields.
func parseTrip(id, ver, final, data string) (TripRecord, error) {
	v, err := strconv.ParseUint(ver, 10, 64)
	if err != nil {
		return TripRecord{}, fmt.Errorf("corrupt trip record: ver %q", ver)
	}
	rec := TripRecord{ID: id, Version: v, Final: final == "1"}
	if data != "" {
		rec.Data = []byte(data)
	}
	return rec, nil
}

// boolArg encodes a flag for a script.
func boolArg(b bool) string {
	if b {
		return "1"
	}
	return "0"
}

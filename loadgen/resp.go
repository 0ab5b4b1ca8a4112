package loadgen

import (
	"context"
	"fmt"

	"github.com/redis/go-redis/v9"
)

// RESPProtocol selects the geo commands of a RESP server.
type RESPProtocol string

// The RESP geo protocols.
const (
	// RedisGEO uses GEOADD key lng lat member and GEOSEARCH key FROMLONLAT
	// lng lat BYRADIUS r m ASC COUNT n.
	RedisGEO RESPProtocol = "redis"
	// Tile38 uses SET key id POINT lat lng and NEARBY key LIMIT n POINT lat
	// lng r.
	Tile38 RESPProtocol = "tile38"
)

// respKey is the key (Redis) or collection (Tile38) holding the fleet.
const respKey = "fleet"

// RESPTarget is a RESP geo server, Redis or Tile38, driven through
// go-redis. A batch is one pipeline; a driver-app stream sends one command
// per update (RESP has no streams), on the shared connection pool.
type RESPTarget struct {
	addr  string
	proto RESPProtocol
	c     *redis.Client
}

// NewRESPTarget connects (lazily) to the RESP server at addr, which must be
// a loopback address. poolSize is the number of connections, at least the
// concurrency the run will use (the stream apps included).
func NewRESPTarget(addr string, proto RESPProtocol, poolSize int) (*RESPTarget, error) {
	if err := CheckLoopback(addr); err != nil {
		return nil, err
	}
	if proto != RedisGEO && proto != Tile38 {
		return nil, fmt.Errorf("resp protocol: %q is neither %s nor %s", proto, RedisGEO, Tile38)
	}
	opts := &redis.Options{Addr: addr, PoolSize: max(poolSize, 10), Protocol: 2, DisableIdentity: true}
	return &RESPTarget{addr: addr, proto: proto, c: redis.NewClient(opts)}, nil
}

// Name implements Target.
func (t *RESPTarget) Name() string { return string(t.proto) + " " + t.addr }

// Close implements Target.
func (t *RESPTarget) Close() error { return t.c.Close() }

// Ping checks that the server answers.
func (t *RESPTarget) Ping(ctx context.Context) error {
	if err := t.c.Ping(ctx).Err(); err != nil {
		return fmt.Errorf("%s: %w", t.Name(), err)
	}
	return nil
}

// respCmdable is a client or a pipeline.
type respCmdable interface {
	redis.Cmdable
	Do(ctx context.Context, args ...any) *redis.Cmd
}

// add queues one update's command on c.
func (t *RESPTarget) add(ctx context.Context, c respCmdable, u Update) error {
	if t.proto == Tile38 {
		return c.Do(ctx, "SET", respKey, u.ID, "POINT", u.Lat, u.Lng).Err()
	}
	return c.GeoAdd(ctx, respKey, &redis.GeoLocation{Name: u.ID, Longitude: u.Lng, Latitude: u.Lat}).Err()
}

// Update implements Target with one pipeline.
func (t *RESPTarget) Update(ctx context.Context, batch []Update) (int, error) {
	if len(batch) == 1 {
		if err := t.add(ctx, t.c, batch[0]); err != nil {
			return 1, err
		}
		return 0, nil
	}
	pipe := t.c.Pipeline()
	for _, u := range batch {
		_ = t.add(ctx, pipe, u) // errors come from Exec
	}
	return execPipeline(ctx, pipe)
}

// execPipeline runs pipe and returns how many of its commands failed (at
// least 1 when it failed) and the first error.
func execPipeline(ctx context.Context, pipe redis.Pipeliner) (int, error) {
	cmds, err := pipe.Exec(ctx)
	if err == nil {
		return 0, nil
	}
	failed := 0
	for _, c := range cmds {
		if c.Err() != nil {
			failed++
		}
	}
	return max(failed, 1), err
}

// search queues or runs one search on c: NEARBY for Tile38, GEOSEARCH for
// Redis.
func (t *RESPTarget) search(ctx context.Context, c respCmdable, q NearbyQuery) error {
	if t.proto == Tile38 {
		return c.Do(ctx, "NEARBY", respKey, "LIMIT", q.Limit, "POINT", q.Lat, q.Lng, q.RadiusM).Err()
	}
	return c.GeoSearch(ctx, respKey, &redis.GeoSearchQuery{Longitude: q.Lng, Latitude: q.Lat,
		Radius: q.RadiusM, RadiusUnit: "m", Sort: "ASC", Count: q.Limit}).Err()
}

// Nearby implements Target with GEOSEARCH or NEARBY.
func (t *RESPTarget) Nearby(ctx context.Context, lat, lng, radiusM float64, limit int) error {
	return t.search(ctx, t.c, NearbyQuery{Lat: lat, Lng: lng, RadiusM: radiusM, Limit: limit})
}

// NearbyPipelined implements Pipeliner: the searches of qs in one
// pipeline.
func (t *RESPTarget) NearbyPipelined(ctx context.Context, qs []NearbyQuery) (int, error) {
	pipe := t.c.Pipeline()
	for _, q := range qs {
		_ = t.search(ctx, pipe, q) // errors come from Exec
	}
	return execPipeline(ctx, pipe)
}

// OpenStream implements Target: RESP has no driver sessions, so the app
// sends one command per update.
func (t *RESPTarget) OpenStream(ctx context.Context, driverID string) (Stream, error) {
	return &respStream{ctx: ctx, t: t, id: driverID}, nil
}

type respStream struct {
	ctx      context.Context
	t        *RESPTarget
	id       string
	rejected int64
}

func (s *respStream) Send(u Update) error {
	u.ID = s.id
	err := s.t.add(s.ctx, s.t.c, u)
	if err != nil {
		s.rejected++
	}
	return err
}

func (s *respStream) Close() (int64, int64, error) { return s.rejected, 0, nil }

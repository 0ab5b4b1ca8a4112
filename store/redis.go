package store

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/geomatch/geomatch/internal/tracing"
)

// RedisOptions configures NewRedis.
type RedisOptions struct {
	// Client is the connection to use (a *redis.Client, *redis.ClusterClient
	// or failover client). The store does not close a supplied client. If
	// nil, a client is built from Addr, Username, Password and DB, and
	// closed by Close.
	Client redis.UniversalClient
	// Addr is host:port of the server when Client is nil.
	Addr string
	// Username and Password authenticate (Redis 6 ACL); both empty means no
	// AUTH.
	Username, Password string
	// DB is the database number when Client is nil (0 on Redis Cluster).
	DB int
	// KeyPrefix starts every key and the events channel, so several
	// deployments (or tests) can share one server. Default "gm:". It must
	// not contain '{' or '}': hash tags are the store's business.
	KeyPrefix string
	// EventBuffer is the channel capacity of each subscription; a subscriber
	// that falls further behind loses events. Default 1024: about a second
	// of offers and trip updates for one busy router.
	EventBuffer int
}

// Defaults of RedisOptions.
const (
	DefaultKeyPrefix   = "gm:"
	DefaultEventBuffer = 1024
)

// finalTripTTL is how long a final trip record is kept: long enough for
// clients to read the outcome and for support to look at it, short enough
// that the keyspace does not grow forever.
const finalTripTTL = 7 * 24 * time.Hour

// Redis is the Store on Redis (standalone, Sentinel or Cluster).
//
// Key layout (prefix P, default "gm:"); every key carries a hash tag and
// every script touches exactly one key, so the same code runs on Redis
// Cluster:
//
//	P drv:{driverID}     hash: status, trip, lease_ms, offer (JSON), ver
//	P trip:{tripID}      hash: ver, final, data; final records expire after 7 days
//	P {active}:trips     sorted set of unfinished trip ids, scored by creation time (ms)
//	P pos:{shard}        hash: driverID → "lat,lng,ts_ms"
//	P events             pub/sub channel of JSON-encoded events
//
// Driver transitions are Lua scripts (EVALSHA, falling back to EVAL) that
// read the hash, compare, write and bump the version in one round trip;
// the caller's clock is passed in, never the server's.
//
// Leases are judged at the caller's now where the call takes one (Reserve,
// StartTrip) and at the wall clock (time.Now) where it does not (Driver,
// Release, SetOffline, SetAvailable). A refused transition returns the
// current state along with the ErrConflict error.
type Redis struct {
	client    redis.UniversalClient
	ownClient bool
	prefix    string
	buffer    int

	mu     sync.Mutex
	closed bool
	subs   map[uint64]context.CancelFunc // live subscriptions, cancelled by Close
	nextID uint64
	wg     sync.WaitGroup // subscription goroutines
}

var _ Store = (*Redis)(nil)

// NewRedis connects to Redis and checks the connection with PING.
func NewRedis(ctx context.Context, opts RedisOptions) (*Redis, error) {
	if opts.KeyPrefix == "" {
		opts.KeyPrefix = DefaultKeyPrefix
	}
	if strings.ContainsAny(opts.KeyPrefix, "{}") {
		return nil, fmt.Errorf("redis store: key prefix %q contains a brace", opts.KeyPrefix)
	}
	if opts.EventBuffer <= 0 {
		opts.EventBuffer = DefaultEventBuffer
	}
	r := &Redis{
		client: opts.Client,
		prefix: opts.KeyPrefix,
		buffer: opts.EventBuffer,
		subs:   make(map[uint64]context.CancelFunc),
	}
	if r.client == nil {
		if opts.Addr == "" {
			return nil, errors.New("redis store: no client and no address")
		}
		r.client = redis.NewClient(&redis.Options{
			Addr:     opts.Addr,
			Username: opts.Username,
			Password: opts.Password,
			DB:       opts.DB,
		})
		r.ownClient = true
	}
	if h := tracing.RedisHook(); h != nil {
		// Commands become spans of the traces they serve (nil unless the
		// process traces). A supplied client gets the hook too: give each
		// client to one store.
		r.client.AddHook(h)
	}
	if err := r.client.Ping(ctx).Err(); err != nil {
		if r.ownClient {
			_ = r.client.Close()
		}
		return nil, fmt.Errorf("redis store: ping %s: %w", clientAddr(opts.Addr, r.client), err)
	}
	return r, nil
}

// clientAddr names the server(s) a client talks to, for errors.
func clientAddr(addr string, c redis.UniversalClient) string {
	if addr != "" {
		return addr
	}
	switch c := c.(type) {
	case *redis.Client:
		return c.Options().Addr
	case *redis.ClusterClient:
		return strings.Join(c.Options().Addrs, ",")
	}
	return fmt.Sprintf("%T", c)
}

// Close ends every subscription, waits for their goroutines, and closes the
// client if the store built it.
func (r *Redis) Close() error {
	r.mu.Lock()
	if r.closed {
		r.mu.Unlock()
		return nil
	}
	r.closed = true
	for _, cancel := range r.subs {
		cancel()
	}
	r.mu.Unlock()
	r.wg.Wait()
	if r.ownClient {
		if err := r.client.Close(); err != nil {
			return fmt.Errorf("redis store: close client: %w", err)
		}
	}
	return nil
}

// Keys. Braces mark the hash tag: the part Redis Cluster hashes.

func (r *Redis) driverKey(id string) string { return r.prefix + "drv:{" + id + "}" }
func (r *Redis) tripKey(id string) string   { return r.prefix + "trip:{" + id + "}" }
func (r *Redis) activeKey() string          { return r.prefix + "{active}:trips" }
func (r *Redis) positionsKey(s uint64) string {
	return r.prefix + "pos:{" + strconv.FormatUint(s, 10) + "}"
}
func (r *Redis) eventsChannel() string { return r.prefix + "events" }

// Driver implements Store.
func (r *Redis) Driver(ctx context.Context, id string) (Driver, error) {
	if id == "" {
		return Driver{}, errors.New("read driver: empty driver id")
	}
	vals, err := r.client.HMGet(ctx, r.driverKey(id), "status", "trip", "lease_ms", "offer", "ver").Result()
	if err != nil {
		return Driver{}, fmt.Errorf("read driver %s: %w", id, err)
	}
	strs := make([]string, len(vals))
	for i, v := range vals {
		if s, ok := v.(string); ok {
			strs[i] = s
		}
	}
	s, err := parseDriverState(strs[0], strs[1], strs[2], strs[3], strs[4])
	if err != nil {
		return Driver{}, fmt.Errorf("read driver %s: %w", id, err)
	}
	return s.view(id, time.Now()), nil
}

// runDriverScript runs one driver transition and turns its reply into the
// result: the state viewed at now, or ErrConflict described at now.
func (r *Redis) runDriverScript(ctx context.Context, op, id string, now time.Time, sc *redis.Script, args ...any) (Driver, error) {
	res, err := sc.Run(ctx, r.client, []string{r.driverKey(id)}, args...).StringSlice()
	if err != nil {
		return Driver{}, fmt.Errorf("%s: %w", op, err)
	}
	if len(res) != 6 {
		return Driver{}, fmt.Errorf("%s: unexpected script reply %q", op, res)
	}
	s, err := parseDriverState(res[1], res[2], res[3], res[4], res[5])
	if err != nil {
		return Driver{}, fmt.Errorf("%s: %w", op, err)
	}
	switch res[0] {
	case "ok":
		return s.view(id, now), nil
	case "conflict":
		return s.view(id, now), conflict(op, s, now.UnixMilli())
	}
	return Driver{}, fmt.Errorf("%s: unexpected script reply %q", op, res)
}

// parseDriverState decodes the driver hash fields; empty strings are
// missing fields (a driver never seen).
func parseDriverState(status, trip, lease, offer, ver string) (driverState, error) {
	s := newDriverState()
	if status != "" {
		st, ok := parseStatus(status)
		if !ok {
			return s, fmt.Errorf("corrupt driver record: status %q", status)
		}
		s.status = st
	}
	s.trip = trip
	var err error
	if lease != "" {
		if s.leaseMs, err = strconv.ParseInt(lease, 10, 64); err != nil {
			return s, fmt.Errorf("corrupt driver record: lease_ms %q", lease)
		}
	}
	if ver != "" {
		if s.ver, err = strconv.ParseUint(ver, 10, 64); err != nil {
			return s, fmt.Errorf("corrupt driver record: ver %q", ver)
		}
	}
	if offer != "" {
		s.offer = new(Offer)
		if err := json.Unmarshal([]byte(offer), s.offer); err != nil {
			return s, fmt.Errorf("corrupt driver record: offer: %w", err)
		}
	}
	return s, nil
}

// parseStatus is the inverse of DriverStatus.String for stored statuses.
func parseStatus(s string) (DriverStatus, bool) {
	for _, st := range []DriverStatus{StatusAvailable, StatusReserved, StatusOnTrip, StatusOffline} {
		if st.String() == s {
			return st, true
		}
	}
	return StatusUnknown, false
}

// msArg formats a time as the Unix ms argument of a script.
func msArg(t time.Time) string { return strconv.FormatInt(t.UnixMilli(), 10) }

// Reserve implements Store.
func (r *Redis) Reserve(ctx context.Context, driverID, tripID string, lease time.Duration, now time.Time) (Driver, error) {
	op := opReserve(driverID, tripID)
	if err := checkDriverArgs(op, driverID, tripID); err != nil {
		return Driver{}, err
	}
	if err := checkLease(op, lease); err != nil {
		return Driver{}, err
	}
	return r.runDriverScript(ctx, op, driverID, now, reserveScript, tripID, msArg(now.Add(lease)), msArg(now))
}

// SetOffer implements Store.
func (r *Redis) SetOffer(ctx context.Context, driverID string, offer Offer, leaseUntil time.Time) (Driver, error) {
	op := opSetOffer(driverID, offer.TripID)
	if err := checkDriverArgs(op, driverID, offer.TripID); err != nil {
		return Driver{}, err
	}
	js, err := json.Marshal(offer)
	if err != nil {
		return Driver{}, fmt.Errorf("%s: encode offer: %w", op, err)
	}
	return r.runDriverScript(ctx, op, driverID, time.Now(), setOfferScript, offer.TripID, js, msArg(leaseUntil))
}

// Release implements Store.
func (r *Redis) Release(ctx context.Context, driverID, tripID string) (Driver, error) {
	op := opRelease(driverID, tripID)
	if err := checkDriverArgs(op, driverID, tripID); err != nil {
		return Driver{}, err
	}
	now := time.Now()
	return r.runDriverScript(ctx, op, driverID, now, releaseScript, tripID, msArg(now))
}

// StartTrip implements Store.
func (r *Redis) StartTrip(ctx context.Context, driverID, tripID string, now time.Time) (Driver, error) {
	op := opStartTrip(driverID, tripID)
	if err := checkDriverArgs(op, driverID, tripID); err != nil {
		return Driver{}, err
	}
	return r.runDriverScript(ctx, op, driverID, now, startTripScript, tripID, msArg(now))
}

// EndTrip implements Store.
func (r *Redis) EndTrip(ctx context.Context, driverID, tripID string) (Driver, error) {
	op := opEndTrip(driverID, tripID)
	if err := checkDriverArgs(op, driverID, tripID); err != nil {
		return Driver{}, err
	}
	return r.runDriverScript(ctx, op, driverID, time.Now(), endTripScript, tripID)
}

// SetOffline implements Store.
func (r *Redis) SetOffline(ctx context.Context, driverID string) (Driver, error) {
	op := opSetOffline(driverID)
	if err := checkDriverArgs(op, driverID); err != nil {
		return Driver{}, err
	}
	now := time.Now()
	return r.runDriverScript(ctx, op, driverID, now, setOfflineScript, msArg(now))
}

// SetAvailable implements Store.
func (r *Redis) SetAvailable(ctx context.Context, driverID string) (Driver, error) {
	op := opSetAvailable(driverID)
	if err := checkDriverArgs(op, driverID); err != nil {
		return Driver{}, err
	}
	now := time.Now()
	return r.runDriverScript(ctx, op, driverID, now, setAvailableScript, msArg(now))
}

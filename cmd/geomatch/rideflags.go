package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"net"
	"strconv"

	"github.com/redis/go-redis/v9"

	"github.com/geomatch/geomatch/dispatch"
	"github.com/geomatch/geomatch/internal/tlsconfig"
	"github.com/geomatch/geomatch/store"
)

// storeFlags select the durable store: Redis when --redis is given.
type storeFlags struct {
	addr     string
	username string
	password string
	db       int
	prefix   string
	tls      bool
	ca       string
	cert     string
	key      string
}

func (s *storeFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&s.addr, "redis", "", "Redis address (host:port) holding driver status, reservations, trips and last positions")
	fs.StringVar(&s.username, "redis-username", "", "Redis ACL user")
	fs.StringVar(&s.password, "redis-password", "", "Redis password (prefer the environment twin)")
	fs.IntVar(&s.db, "redis-db", 0, "Redis database number")
	fs.StringVar(&s.prefix, "redis-prefix", "gm:", "prefix of every Redis key and channel")
	fs.BoolVar(&s.tls, "redis-tls", false, "talk TLS to Redis (the system's roots verify it unless --redis-ca is given)")
	fs.StringVar(&s.ca, "redis-ca", "", "PEM CA bundle of Redis's certificate; implies --redis-tls")
	fs.StringVar(&s.cert, "redis-cert", "", "PEM client certificate for Redis (tls-auth-clients); with --redis-key; implies --redis-tls")
	fs.StringVar(&s.key, "redis-key", "", "PEM private key of --redis-cert")
}

// open returns the Redis store, or nil when --redis is not set.
func (s *storeFlags) open(ctx context.Context) (store.Store, error) {
	if s.addr == "" {
		return nil, nil
	}
	opts := store.RedisOptions{Addr: s.addr, Username: s.username, Password: s.password, DB: s.db, KeyPrefix: s.prefix}
	files := tlsconfig.Files{CA: s.ca, Cert: s.cert, Key: s.key}
	if !s.tls && !files.Enabled() {
		st, err := store.NewRedis(ctx, opts)
		if err != nil {
			return nil, fmt.Errorf("--redis: %w", err)
		}
		return st, nil
	}
	cfg, err := tlsconfig.Client(files)
	if err != nil {
		return nil, fmt.Errorf("--redis-tls: %w", err)
	}
	if cfg.ServerName, _, err = net.SplitHostPort(s.addr); err != nil {
		return nil, fmt.Errorf("--redis: %q is not host:port", s.addr)
	}
	client := redis.NewClient(&redis.Options{Addr: s.addr, Username: s.username, Password: s.password, DB: s.db, TLSConfig: cfg})
	opts.Client = client
	st, err := store.NewRedis(ctx, opts)
	if err != nil {
		return nil, errors.Join(fmt.Errorf("--redis: %w", err), client.Close())
	}
	return ownedClient{Store: st, client: client}, nil
}

// args passes the flags on to another command (geomatch dev --consul).
func (s *storeFlags) args() []string {
	if s.addr == "" {
		return nil
	}
	a := []string{"--redis", s.addr, "--redis-db", strconv.Itoa(s.db), "--redis-prefix", s.prefix}
	for _, f := range [][2]string{{"--redis-username", s.username}, {"--redis-password", s.password}, {"--redis-ca", s.ca}, {"--redis-cert", s.cert}, {"--redis-key", s.key}} {
		if f[1] != "" {
			a = append(a, f[0], f[1])
		}
	}
	if s.tls {
		a = append(a, "--redis-tls")
	}
	return a
}

// ownedClient is a store over a client it closes when the store closes.
type ownedClient struct {
	store.Store
	client *redis.Client
}

// Close closes the store, then its client.
// Client returns the Redis client (the event log and hooks share it).
func (o ownedClient) Client() redis.UniversalClient { return o.client }

func (o ownedClient) Close() error { return errors.Join(o.Store.Close(), o.client.Close()) }

// dispatchFlags configure ride matching.
type dispatchFlags struct {
	mode        string
	batchWindow string
	offer       string
	maxOffers   int
	radius      float64
}

func (d *dispatchFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&d.mode, "match-mode", "greedy", "greedy (first come, nearest driver) or batch (per-shard windows, minimum total pickup distance)")
	fs.StringVar(&d.batchWindow, "batch-window", "2s", "how long batch mode collects requests per shard")
	fs.StringVar(&d.offer, "offer-timeout", "10s", "how long a driver has to answer an offer")
	fs.IntVar(&d.maxOffers, "max-offers", 5, "offers per trip before it ends as no_driver (at most 10)")
	fs.Float64Var(&d.radius, "pickup-radius", 5000, "pickup search radius in meters")
}

func (d *dispatchFlags) config() (dispatch.Config, error) {
	cfg := dispatch.DefaultConfig()
	cfg.Mode = dispatch.Mode(d.mode)
	if cfg.Mode != dispatch.Greedy && cfg.Mode != dispatch.Batch {
		return cfg, fmt.Errorf("--match-mode: %q is neither greedy nor batch", d.mode)
	}
	var err error
	if cfg.BatchWindow, err = parseDuration("--batch-window", d.batchWindow); err != nil {
		return cfg, err
	}
	if cfg.OfferTimeout, err = parseDuration("--offer-timeout", d.offer); err != nil {
		return cfg, err
	}
	if d.maxOffers < 1 || d.maxOffers > 10 {
		return cfg, fmt.Errorf("--max-offers: %d, want 1..10", d.maxOffers)
	}
	cfg.MaxOffers = d.maxOffers
	if d.radius <= 0 || d.radius > 100_000 {
		return cfg, fmt.Errorf("--pickup-radius: %v, want (0, 100000]", d.radius)
	}
	cfg.SearchRadiusM = d.radius
	return cfg, nil
}

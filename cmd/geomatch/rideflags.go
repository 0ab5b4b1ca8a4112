package main

import (
	"context"
	"flag"
	"fmt"

	"github.com/geomatch/geomatch/dispatch"
	"github.com/geomatch/geomatch/store"
)

// storeFlags select the durable store: Redis when --redis is given.
type storeFlags struct {
	addr     string
	username string
	password string
	db       int
	prefix   string
}

func (s *storeFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&s.addr, "redis", "", "Redis address (host:port) holding driver status, reservations, trips and last positions")
	fs.StringVar(&s.username, "redis-username", "", "Redis ACL user")
	fs.StringVar(&s.password, "redis-password", "", "Redis password (prefer the environment twin)")
	fs.IntVar(&s.db, "redis-db", 0, "Redis database number")
	fs.StringVar(&s.prefix, "redis-prefix", "gm:", "prefix of every Redis key and channel")
}

// open returns the Redis store, or nil when --redis is not set.
func (s *storeFlags) open(ctx context.Context) (store.Store, error) {
	if s.addr == "" {
		return nil, nil
	}
	st, err := store.NewRedis(ctx, store.RedisOptions{Addr: s.addr, Username: s.username, Password: s.password, DB: s.db, KeyPrefix: s.prefix})
	if err != nil {
		return nil, fmt.Errorf("--redis: %w", err)
	}
	return st, nil
}

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

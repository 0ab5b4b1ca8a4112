package dispatch

import (
	"github.com/geomatch/geomatch/events"

	"errors"
	"time"

	"github.com/geomatch/geomatch/internal/defaults"
)

// Mode selects how a coordinator picks drivers.
type Mode string

// Matching modes.
const (
	// Greedy serves requests one by one as they arrive: each takes the
	// nearest reservable driver.
	Greedy Mode = "greedy"
	// Batch collects the requests of a pickup shard for BatchWindow and
	// assigns them together, minimising total pickup distance.
	Batch Mode = "batch"
)

// Config configures dispatch. Zero fields take the defaults of
// DefaultConfig.
type Config struct {
	// Mode is Greedy (default) or Batch.
	Mode Mode
	// Events, when set, receives a trip event for every step of every
	// trip (TripEvent in the public API's event streams).
	Events events.Log
	// BatchWindow is how long batch mode collects requests per shard;
	// default 2 s.
	BatchWindow time.Duration
	// OfferTimeout is how long a driver has to answer an offer; default
	// 10 s.
	OfferTimeout time.Duration
	// LeaseGrace is added to the offer timeout for the reservation lease, so
	// an answer at the last moment still finds its reservation despite clock
	// skew; default 5 s.
	LeaseGrace time.Duration
	// MaxOffers is how many drivers a trip is offered to before it ends as
	// no_driver; default 5 (at most trip.MaxAttempts).
	MaxOffers int
	// Candidates is how many nearby drivers one search considers (and, in
	// batch mode, the candidate edges per request); default 10.
	Candidates int
	// SearchRadiusM is the pickup search radius in meters; default 5000.
	SearchRadiusM float64
	// MaxActive bounds the trips one coordinator drives at once; more are
	// refused with ResourceExhausted. Default 100000.
	MaxActive int
	// MaxWait bounds how long RequestRide waits for an outcome; default 60 s.
	MaxWait time.Duration
	// RecoverEvery is how often a coordinator looks for unfinished trips of
	// its shards that nobody drives (after a restart or a ring change);
	// default 5 s.
	RecoverEvery time.Duration
	// Now is the clock; default time.Now.
	Now func() time.Time
}

// DefaultConfig returns the dispatch defaults.
func DefaultConfig() Config {
	return Config{
		Mode:          Greedy,
		BatchWindow:   2 * time.Second,
		OfferTimeout:  10 * time.Second,
		LeaseGrace:    5 * time.Second,
		MaxOffers:     5,
		Candidates:    10,
		SearchRadiusM: 5000,
		MaxActive:     100_000,
		MaxWait:       60 * time.Second,
		RecoverEvery:  5 * time.Second,
		Now:           time.Now,
	}
}

func (c *Config) fill() error {
	d := DefaultConfig()
	var f defaults.Filler
	if c.Mode == "" {
		c.Mode = d.Mode
	}
	if c.Mode != Greedy && c.Mode != Batch {
		f.Fail(errors.New(`Mode: must be "greedy" or "batch"`))
	}
	f.Duration("BatchWindow", &c.BatchWindow, d.BatchWindow)
	f.Duration("OfferTimeout", &c.OfferTimeout, d.OfferTimeout)
	f.Duration("LeaseGrace", &c.LeaseGrace, d.LeaseGrace)
	f.Duration("MaxWait", &c.MaxWait, d.MaxWait)
	f.Duration("RecoverEvery", &c.RecoverEvery, d.RecoverEvery)
	f.Int("MaxOffers", &c.MaxOffers, d.MaxOffers)
	f.Max("MaxOffers", c.MaxOffers, 10)
	f.Int("Candidates", &c.Candidates, d.Candidates)
	f.Max("Candidates", c.Candidates, 100)
	f.Float("SearchRadiusM", &c.SearchRadiusM, d.SearchRadiusM)
	f.Int("MaxActive", &c.MaxActive, d.MaxActive)
	if c.Now == nil {
		c.Now = d.Now
	}
	return f.Err("dispatch config")
}

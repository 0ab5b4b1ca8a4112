package hook

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"time"
)

// Config configures a Manager. Zero fields take the defaults of
// DefaultConfig.
type Config struct {
	// Owner names this manager in leases; it must differ between the
	// managers sharing a Store. Default: hostname, pid and 4 random bytes.
	Owner string

	// BatchSize bounds the events of one delivery (one webhook POST, one
	// round of JetStream publishes, one XADD pipeline). Default 500: a
	// POST of ~250 KB of typical events, big enough that 20k events/s is
	// 40 requests/s.
	BatchSize int
	// BatchBytes bounds the JSON bytes of one delivery. Default 1 MiB, under
	// the body limits of common receivers.
	BatchBytes int
	// Concurrency is how many deliveries of one hook may be in flight,
	// each over disjoint partitions of the log (never two of one
	// partition, so per-key order holds). A runner reads BatchSize ×
	// Concurrency events at a time and holds at most that many: its
	// memory bound. Default 4.
	Concurrency int

	// RequestTimeout bounds one delivery attempt (a POST and its answer,
	// the acks of a batch). Default 10 s.
	RequestTimeout time.Duration
	// BackoffMin and BackoffMax bound the wait between attempts: full
	// jitter over BackoffMin doubling per attempt, capped at BackoffMax.
	// Defaults 100 ms and 30 s.
	BackoffMin, BackoffMax time.Duration
	// DeadLetterAfter is how long a runner's deliveries may keep failing
	// before it gives up on them: once the sink has failed continuously
	// for this long, each batch that fails is dead-lettered instead of
	// retried, until an attempt succeeds. Default 15 min: a sink down for
	// 10 minutes loses nothing (the backlog waits in the event log).
	DeadLetterAfter time.Duration

	// PollInterval is how often the manager reads the hook definitions,
	// acquires and renews leases and updates the lag gauges. Default 1 s.
	PollInterval time.Duration
	// LeaseTTL is how long a lease lasts unrenewed: a router that dies
	// stops delivering its hooks and another takes them over within about
	// LeaseTTL + PollInterval. Default 10 s (ten renewals per TTL).
	LeaseTTL time.Duration
	// MaxHooks bounds the hooks of the store (Put refuses more). Default
	// 10,000.
	MaxHooks int
	// RedisMaxLen is the approximate MAXLEN of the streams of redis://
	// sinks. Default 1,000,000.
	RedisMaxLen int64
}

// DefaultConfig returns the defaults (Owner left empty: NewManager makes
// one up).
func DefaultConfig() Config {
	return Config{
		BatchSize:       500,
		BatchBytes:      1 << 20,
		Concurrency:     4,
		RequestTimeout:  10 * time.Second,
		BackoffMin:      100 * time.Millisecond,
		BackoffMax:      30 * time.Second,
		DeadLetterAfter: 15 * time.Minute,
		PollInterval:    time.Second,
		LeaseTTL:        10 * time.Second,
		MaxHooks:        10_000,
		RedisMaxLen:     1_000_000,
	}
}

// withDefaults fills zero fields and checks the rest.
func (c Config) withDefaults() (Config, error) {
	d := DefaultConfig()
	if c.Owner == "" {
		c.Owner = defaultOwner()
	}
	setInt(&c.BatchSize, d.BatchSize)
	setInt(&c.BatchBytes, d.BatchBytes)
	setInt(&c.Concurrency, d.Concurrency)
	setInt(&c.MaxHooks, d.MaxHooks)
	setDur(&c.RequestTimeout, d.RequestTimeout)
	setDur(&c.BackoffMin, d.BackoffMin)
	setDur(&c.BackoffMax, d.BackoffMax)
	setDur(&c.DeadLetterAfter, d.DeadLetterAfter)
	setDur(&c.PollInterval, d.PollInterval)
	setDur(&c.LeaseTTL, d.LeaseTTL)
	if c.RedisMaxLen == 0 {
		c.RedisMaxLen = d.RedisMaxLen
	}
	switch {
	case c.BatchSize < 0, c.BatchBytes < 0, c.Concurrency < 0, c.MaxHooks < 0, c.RedisMaxLen < 0:
		return c, fmt.Errorf("hook config: negative size in %+v", c)
	case c.RequestTimeout < 0, c.BackoffMin < 0, c.BackoffMax < 0, c.DeadLetterAfter < 0, c.PollInterval < 0, c.LeaseTTL < 0:
		return c, fmt.Errorf("hook config: negative duration in %+v", c)
	case c.BackoffMax < c.BackoffMin:
		return c, fmt.Errorf("hook config: BackoffMax %v < BackoffMin %v", c.BackoffMax, c.BackoffMin)
	case c.LeaseTTL <= 2*c.PollInterval:
		return c, fmt.Errorf("hook config: LeaseTTL %v must exceed two PollIntervals (%v) so renewals land in time", c.LeaseTTL, c.PollInterval)
	}
	return c, nil
}

func setInt(v *int, d int) {
	if *v == 0 {
		*v = d
	}
}

func setDur(v *time.Duration, d time.Duration) {
	if *v == 0 {
		*v = d
	}
}

// defaultOwner is hostname-pid-random.
func defaultOwner() string {
	host, _ := os.Hostname()
	var b [4]byte
	_, _ = rand.Read(b[:])
	return fmt.Sprintf("%s-%d-%s", host, os.Getpid(), hex.EncodeToString(b[:]))
}

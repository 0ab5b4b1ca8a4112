package index

import (
	"time"

	"github.com/geomatch/geomatch/internal/defaults"
)

// Config tunes an Index. Zero fields take the defaults of DefaultConfig.
type Config struct {
	// TTL is how long a driver stays live after its last update was
	// received (by the Now clock, not the client timestamp), and how long a
	// tombstone is kept. Default 30s: drivers report every few seconds, so a
	// driver silent for 30s has lost its connection or switched off its app.
	TTL time.Duration
	// MaxDrivers bounds live drivers plus tombstones, so a flood of ids
	// cannot exhaust memory. Default 5_000_000: about 500 MB of index at the
	// measured ~100 bytes per driver, far more than one node's shards hold.
	// At most MaxMaxDrivers.
	MaxDrivers int
	// Now is the clock used for receive times and expiry. Default time.Now;
	// tests inject a fake clock.
	Now func() time.Time
}

// Defaults of DefaultConfig.
const (
	DefaultTTL        = 30 * time.Second
	DefaultMaxDrivers = 5_000_000
	// MaxMaxDrivers is the largest MaxDrivers: drivers are numbered by
	// slots of slotBits bits.
	MaxMaxDrivers = 1 << slotBits
)

// DefaultConfig returns the configuration with every field at its default.
func DefaultConfig() Config {
	return Config{TTL: DefaultTTL, MaxDrivers: DefaultMaxDrivers, Now: time.Now}
}

// withDefaults fills zero fields and checks the rest.
func (c Config) withDefaults() (Config, error) {
	d := DefaultConfig()
	var f defaults.Filler
	f.Duration("TTL", &c.TTL, d.TTL)
	f.Int("MaxDrivers", &c.MaxDrivers, d.MaxDrivers)
	f.Max("MaxDrivers", c.MaxDrivers, MaxMaxDrivers)
	if c.Now == nil {
		c.Now = d.Now
	}
	return c, f.Err("index config")
}

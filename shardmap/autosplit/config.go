package autosplit

import (
	"errors"
	"fmt"
	"math"
	"time"

	"github.com/geomatch/geomatch/shardmap"
)

// Config holds the thresholds, windows and rate limits of automatic
// splitting. DefaultConfig gives every field a value; Validate checks one.
type Config struct {
	// Enabled is the kill switch: false and the planner decides nothing
	// (operators' splits and pins are untouched either way). Default true.
	Enabled bool
	// SplitThreshold is the load, in load units per second (updates/s +
	// QueryWeight × queries/s), above which a shard is hot. Default 5,000
	// (20,000 drivers reporting every 4 s in one shard): about 5% of what
	// one matcher ingests on the project's 2-core benchmark machine
	// (~100k updates/s per matcher), so no single shard takes a large
	// share of a node, while an ordinary 5 km² shard (a few hundred
	// drivers: ~100/s) is far below it. Scale it with the hardware.
	SplitThreshold float64
	// QueryWeight adds nearby queries to the load: load = updates/s +
	// QueryWeight × queries/s. Default 0 (updates only): a shard's query
	// rate counts a search once on every shard it covers (a 2 km search
	// covers ~30 resolution-8 shards), so it does not divide when a shard
	// splits (each child counts the whole search again) and splitting
	// cannot relieve it; updates partition exactly. Set it (a search costs
	// ~65 µs of matcher CPU, an update ~7 µs) where searches are small
	// against the shards.
	QueryWeight float64
	// SplitWindow is how long a shard's load must stay above
	// SplitThreshold before it is split. Default 10 s, CockroachDB's
	// load-based splitting window: long enough that a burst does not split,
	// short enough to act within the 30 s an operator would.
	SplitWindow time.Duration
	// MergeFraction sets the merge level: the children of an automatic
	// split are merged back when their combined load stays under
	// MergeFraction × SplitThreshold. Default 0.5 (CockroachDB's), a 2×
	// hysteresis: right after a split the children carry the load that
	// split them, twice the merge level. Within (0, 1).
	MergeFraction float64
	// MergeWindow is how long the children's combined load must stay under
	// the merge level before they are merged. Default 5 min
	// (CockroachDB's by_load_merge_delay): a merge moves drivers too, and
	// a hot spot that pauses for a minute should not be merged and split
	// again. At least SplitWindow.
	MergeWindow time.Duration
	// ShardCooldown is the least time between two changes of the same cell
	// (a split cell is not merged, a merged cell not split again, within
	// it); the merge window of a split starts once it has passed, after
	// the children's rates have built up on their new owners. Default 1 min,
	// CockroachDB's minimum interval between split suggestions of a range.
	ShardCooldown time.Duration
	// ClusterInterval is the least time between two decisions anywhere in
	// the cluster: each decision moves drivers between matchers and bumps
	// the ring's epoch, and the next decision should see its effect on the
	// load first. Default 10 s (one split window).
	ClusterInterval time.Duration
	// MaxDepth bounds how many levels below the shard resolution automatic
	// splits go; 0 means the ring's own MaxSplitDepth. A ring's limit is
	// never exceeded. Default 0.
	MaxDepth int
}

// DefaultConfig returns the defaults documented on Config.
func DefaultConfig() Config {
	return Config{
		Enabled:         true,
		SplitThreshold:  5000,
		QueryWeight:     0,
		SplitWindow:     10 * time.Second,
		MergeFraction:   0.5,
		MergeWindow:     5 * time.Minute,
		ShardCooldown:   time.Minute,
		ClusterInterval: 10 * time.Second,
	}
}

// Validate reports every field that is out of range, each error naming
// its field.
func (c Config) Validate() error {
	var errs []error
	bad := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	finite := func(v float64) bool { return !math.IsNaN(v) && !math.IsInf(v, 0) }
	if !finite(c.SplitThreshold) || c.SplitThreshold <= 0 {
		bad("SplitThreshold: %v load units/s, want > 0", c.SplitThreshold)
	}
	if !finite(c.QueryWeight) || c.QueryWeight < 0 || c.QueryWeight > 1e6 {
		bad("QueryWeight: %v, want within [0, 1e6]", c.QueryWeight)
	}
	if !finite(c.MergeFraction) || c.MergeFraction <= 0 || c.MergeFraction >= 1 {
		bad("MergeFraction: %v, want within (0, 1)", c.MergeFraction)
	}
	if c.SplitWindow < 0 {
		bad("SplitWindow: %v, want >= 0", c.SplitWindow)
	}
	if c.MergeWindow < c.SplitWindow {
		bad("MergeWindow: %v, want at least SplitWindow (%v)", c.MergeWindow, c.SplitWindow)
	}
	if c.ShardCooldown < 0 {
		bad("ShardCooldown: %v, want >= 0", c.ShardCooldown)
	}
	if c.ClusterInterval < 0 {
		bad("ClusterInterval: %v, want >= 0", c.ClusterInterval)
	}
	if c.MaxDepth < 0 || c.MaxDepth > shardmap.MaxSplitDepthLimit {
		bad("MaxDepth: %d, want within [0, %d] (0: the ring's)", c.MaxDepth, shardmap.MaxSplitDepthLimit)
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("autosplit config: %w", err)
	}
	return nil
}

// mergeLevel is the combined load under which children are merged.
func (c Config) mergeLevel() float64 { return c.MergeFraction * c.SplitThreshold }

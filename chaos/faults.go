package chaos

import (
	"fmt"
	"math/rand/v2"
	"time"
)

// FaultKind is a fault the harness can inject.
type FaultKind string

// The faults.
const (
	// FaultKill SIGKILLs a matcher and starts it again after For.
	FaultKill FaultKind = "sigkill"
	// FaultStop SIGSTOPs a matcher and SIGCONTs it after For.
	FaultStop FaultKind = "sigstop"
	// FaultTerm SIGTERMs a matcher (it hands its shards over and exits)
	// and starts it again after For.
	FaultTerm FaultKind = "sigterm"
	// FaultDrain drains a matcher through AdminService.DrainNode and
	// undrains it after For.
	FaultDrain FaultKind = "drain"
	// FaultPartition cuts a matcher off from Consul and from its peers and
	// routers (its proxies refuse) for For, then heals.
	FaultPartition FaultKind = "partition"
	// FaultMinority cuts a matcher and the last router off from Consul
	// (not from each other) for For: the router keeps routing by the ring
	// it last saw, to the matcher, while the rest of the cluster moves the
	// matcher's shards elsewhere. A matcher that answers after its lease
	// lapsed shows here as stale answers (and double assignments).
	FaultMinority FaultKind = "minority"
	// FaultConsulCut cuts Consul off from every process for For.
	FaultConsulCut FaultKind = "consul-cut"
	// FaultRedisPause SIGSTOPs Redis for For.
	FaultRedisPause FaultKind = "redis-pause"
	// FaultConsulPause SIGSTOPs Consul for For.
	FaultConsulPause FaultKind = "consul-pause"
)

// Fault is one fault of a schedule.
type Fault struct {
	At   time.Duration `json:"at"`
	Kind FaultKind     `json:"kind"`
	// Node is the matcher (m1…mN) it hits; empty for Redis and Consul.
	Node string `json:"node,omitempty"`
	// For is how long until it is undone (restart, SIGCONT, heal).
	For time.Duration `json:"for"`
}

// Scenarios are the names --scenario accepts.
var Scenarios = []string{"kill", "partition", "blips", "drain"}

// ScheduleConfig is what a schedule is made from.
type ScheduleConfig struct {
	Scenario string
	Duration time.Duration
	Matchers int
	// Faults is how many kills (kill scenario); 0: one per 10 s.
	Faults int
	// Partition is how long a partition lasts (partition scenario).
	Partition time.Duration
	Seed      uint64
}

// Lead-in and tail of every schedule: load runs before the first fault
// and after the last one is undone, so the recovery is measured.
const (
	warmup = 5 * time.Second
	tail   = 5 * time.Second
)

// Schedule returns the faults of a scenario, ordered by time. The same
// config gives the same schedule.
func Schedule(cfg ScheduleConfig) ([]Fault, error) {
	if cfg.Matchers < 2 {
		return nil, fmt.Errorf("--matchers: at least 2 (a fault must leave a node to fail over to), got %d", cfg.Matchers)
	}
	r := rand.New(rand.NewPCG(cfg.Seed, 0x6368616f73))
	node := func() string { return fmt.Sprintf("m%d", 1+r.IntN(cfg.Matchers)) }
	need := func(d time.Duration) error {
		if cfg.Duration < d {
			return fmt.Errorf("--duration: scenario %s needs at least %v, got %v", cfg.Scenario, d, cfg.Duration)
		}
		return nil
	}
	switch cfg.Scenario {
	case "kill":
		n := cfg.Faults
		if n <= 0 {
			n = max(1, int(cfg.Duration/(10*time.Second)))
		}
		// Each kill needs a few seconds for the failover and the restart.
		if err := need(warmup + tail + time.Duration(n)*6*time.Second); err != nil {
			return nil, fmt.Errorf("%w for %d kills", err, n)
		}
		period := (cfg.Duration - warmup - tail) / time.Duration(n)
		down := min(3*time.Second, period/3)
		out := make([]Fault, n)
		prev := ""
		for i := range out {
			m := node()
			for m == prev { // the same node twice in a row tests less
				m = node()
			}
			prev = m
			jitter := time.Duration(r.Int64N(int64(period / 4)))
			out[i] = Fault{At: warmup + time.Duration(i)*period + jitter, Kind: FaultKill, Node: m, For: down}
		}
		return out, nil
	case "partition":
		p := cfg.Partition
		if p <= 0 {
			p = 30 * time.Second
		}
		cut := min(p, 10*time.Second)
		settle := min(p, 10*time.Second)
		if err := need(warmup + p + settle + p + settle + cut + tail); err != nil {
			return nil, err
		}
		return []Fault{
			{At: warmup, Kind: FaultPartition, Node: node(), For: p},
			{At: warmup + p + settle, Kind: FaultMinority, Node: node(), For: p},
			{At: warmup + 2*(p+settle), Kind: FaultConsulCut, For: cut},
		}, nil
	case "blips":
		if err := need(warmup + 10*time.Second + 10*time.Second + tail); err != nil {
			return nil, err
		}
		return []Fault{
			{At: warmup, Kind: FaultRedisPause, For: 5 * time.Second},
			{At: warmup + 10*time.Second, Kind: FaultConsulPause, For: 10 * time.Second},
		}, nil
	case "drain":
		if err := need(warmup + 15*time.Second + tail); err != nil {
			return nil, err
		}
		first := node()
		second := node()
		for second == first {
			second = node()
		}
		rest := cfg.Duration - warmup - tail
		return []Fault{
			{At: warmup, Kind: FaultTerm, Node: first, For: 3 * time.Second},
			{At: warmup + rest/2, Kind: FaultDrain, Node: second, For: min(10*time.Second, rest/4)},
		}, nil
	}
	return nil, fmt.Errorf("--scenario: %q is not one of %v", cfg.Scenario, Scenarios)
}

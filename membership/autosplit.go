package membership

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"sync"
	"time"

	"github.com/hashicorp/consul/api"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/geomatch/geomatch/shardmap"
	"github.com/geomatch/geomatch/shardmap/autosplit"
)

// DefaultAutosplitInterval is how often the autosplit controller polls
// the matchers' load: the matchers refresh their rates once a second.
const DefaultAutosplitInterval = time.Second

// SettingsChanger applies an operator's change of the ring settings and
// publishes the ring that includes it (Local in `geomatch dev`, Consul in
// a Consul cluster): the path of the admin API's SplitShard and MergeShard.
type SettingsChanger interface {
	ChangeSettings(ctx context.Context, change Change) (before, after *shardmap.Map, err error)
}

// AutosplitRecords keeps the autosplit record (which splits and pins the
// controller made) beside the ring.
type AutosplitRecords interface {
	// Load returns the stored record; the empty record when there is none.
	Load(ctx context.Context) (autosplit.Record, error)
	// Save replaces the stored record.
	Save(ctx context.Context, r autosplit.Record) error
}

// AutosplitConfig configures the autosplit controller.
type AutosplitConfig struct {
	// Planner holds the thresholds, windows and rate limits; see
	// autosplit.Config. Planner.Enabled false is the kill switch.
	Planner autosplit.Config
	// Interval is how often the matchers' load is polled; default
	// DefaultAutosplitInterval.
	Interval time.Duration
	// Source is the ring the controller decides on; required.
	Source Source
	// Ring applies the decisions, exactly as the admin API's SplitShard
	// and MergeShard do; required.
	Ring SettingsChanger
	// Loads polls the matchers of m for their per-shard load (the source
	// AdminService.ListShards reads) and returns it with the ids of the
	// members that did not answer; required.
	Loads func(ctx context.Context, m *shardmap.Map) (loads []autosplit.Load, missing []string)
	// Records stores the record of automatic splits; default in memory
	// (NewMemoryRecords).
	Records AutosplitRecords
	// Leading, when set, gates every decision: the controller decides only
	// while it returns true (the process holds the ring writer's lock), so
	// one controller decides for the cluster, as one writer writes the
	// ring. Nil: always (the in-process ring of `geomatch dev`).
	Leading func() bool
	// Metrics, when set, registers the controller's metrics.
	Metrics prometheus.Registerer
	// Now is the clock; default time.Now (tests step it).
	Now func() time.Time
}

// Autosplit is the controller that splits hot shards and merges them back
// (package shardmap/autosplit decides; this applies): it polls the
// matchers' per-shard load every Interval, feeds the planner, applies its
// decisions through the ring settings, logs each one (logger=autosplit) and
// counts it (geomatch_autosplit_decisions_total{action,outcome}). Run owns
// its only goroutine.
type Autosplit struct {
	cfg     AutosplitConfig
	log     *slog.Logger
	planner *autosplit.Planner

	decisions *prometheus.CounterVec
	enabled   prometheus.Gauge
	leading   prometheus.Gauge
	ownSplits prometheus.Gauge

	// Owned by Run's goroutine.
	rec     autosplit.Record
	loaded  bool // rec was read from Records while leading
	dirty   bool // rec changed and is not saved yet
	wasLead bool
}

// Outcomes of a decision, the outcome label of the decisions counter.
const (
	// OutcomeApplied: the ring includes the change.
	OutcomeApplied = "applied"
	// OutcomeRefused: the change was refused (the ring or the operator
	// changed in between: a *ChangeError).
	OutcomeRefused = "refused"
	// OutcomeFailed: the settings store failed (unreachable, timeout).
	OutcomeFailed = "failed"
)

// NewAutosplit returns a controller for cfg, once cfg is valid.
func NewAutosplit(cfg AutosplitConfig, log *slog.Logger) (*Autosplit, error) {
	switch {
	case cfg.Source == nil:
		return nil, errors.New("autosplit: Source: required")
	case cfg.Ring == nil:
		return nil, errors.New("autosplit: Ring: required")
	case cfg.Loads == nil:
		return nil, errors.New("autosplit: Loads: required")
	case cfg.Interval < 0:
		return nil, fmt.Errorf("autosplit: Interval: %v, want >= 0 (0: %v)", cfg.Interval, DefaultAutosplitInterval)
	}
	if cfg.Interval == 0 {
		cfg.Interval = DefaultAutosplitInterval
	}
	if cfg.Records == nil {
		cfg.Records = NewMemoryRecords()
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	p, err := autosplit.NewPlanner(cfg.Planner)
	if err != nil {
		return nil, err
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	a := &Autosplit{
		cfg: cfg, log: log.With("logger", "autosplit"), planner: p,
		decisions: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "geomatch_autosplit_decisions_total",
			Help: "Automatic split and merge decisions, by action (split, merge) and outcome (applied, refused, failed).",
		}, []string{"action", "outcome"}),
		enabled: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "geomatch_autosplit_enabled",
			Help: "1 when automatic splitting is on (the kill switch is off).",
		}),
		leading: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "geomatch_autosplit_leading",
			Help: "1 while this process's autosplit controller decides for the cluster (it holds the ring writer's lock).",
		}),
		ownSplits: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "geomatch_autosplit_splits",
			Help: "Cells currently split by the autosplit controller (operators' splits not counted).",
		}),
	}
	for _, action := range []autosplit.Action{autosplit.Split, autosplit.Merge} {
		for _, outcome := range []string{OutcomeApplied, OutcomeRefused, OutcomeFailed} {
			a.decisions.WithLabelValues(string(action), outcome) // every series from the start
		}
	}
	if cfg.Planner.Enabled {
		a.enabled.Set(1)
	}
	if cfg.Metrics != nil {
		for _, c := range []prometheus.Collector{a.decisions, a.enabled, a.leading, a.ownSplits} {
			if err := cfg.Metrics.Register(c); err != nil {
				return nil, fmt.Errorf("autosplit: register metrics: %w", err)
			}
		}
	}
	return a, nil
}

// Run polls and decides every Interval until ctx is done.
func (a *Autosplit) Run(ctx context.Context) error {
	a.log.Info("autosplit controller running", "enabled", a.cfg.Planner.Enabled, "threshold", a.cfg.Planner.SplitThreshold,
		"split_window", a.cfg.Planner.SplitWindow, "merge_window", a.cfg.Planner.MergeWindow)
	t := time.NewTicker(a.cfg.Interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
			a.Step(ctx)
		}
	}
}

// Step polls once and applies the planner's decision, if any. Run calls
// it every Interval; it is exported for tests that step a controller by
// hand. Not safe for concurrent use with Run.
func (a *Autosplit) Step(ctx context.Context) {
	if !a.cfg.Planner.Enabled {
		return
	}
	if a.cfg.Leading != nil && !a.cfg.Leading() {
		if a.wasLead {
			a.log.Info("not the ring writer: autosplit stops deciding")
			a.planner.Reset()
			a.loaded, a.wasLead = false, false
			a.leading.Set(0)
		}
		return
	}
	if !a.wasLead {
		a.wasLead = true
		a.leading.Set(1)
	}
	if !a.loaded {
		rec, err := a.cfg.Records.Load(ctx)
		if err != nil {
			a.log.Warn("autosplit record unreadable; not deciding", "err", err)
			return
		}
		a.rec, a.loaded = rec, true
	}
	m, _ := a.cfg.Source.Current()
	if rec := a.rec.Reconcile(m.Doc()); !rec.Equal(a.rec) {
		a.rec, a.dirty = rec, true
	}
	a.save(ctx)
	a.ownSplits.Set(float64(len(a.rec.Splits)))
	loads, missing := a.cfg.Loads(ctx, m)
	d, ok := a.planner.Step(autosplit.Sample{At: a.cfg.Now(), Loads: loads, Missing: missing}, m, a.rec)
	if !ok {
		return
	}
	a.apply(ctx, d)
}

// apply makes decision d through the ring settings, logs and counts it.
func (a *Autosplit) apply(ctx context.Context, d autosplit.Decision) {
	var change Change
	switch d.Action {
	case autosplit.Split:
		change = autoSplit(d.Cell, d.Pins, a.rec.Clone())
	case autosplit.Merge:
		change = autoMerge(d.Cell, a.rec.Clone())
	default:
		return
	}
	before, after, err := a.cfg.Ring.ChangeSettings(ctx, change)
	outcome := OutcomeApplied
	var ce *ChangeError
	switch {
	case errors.As(err, &ce):
		outcome = OutcomeRefused
	case err != nil:
		outcome = OutcomeFailed
	}
	a.decisions.WithLabelValues(string(d.Action), outcome).Inc()
	attrs := []any{"action", d.Action, "cell", d.Cell.String(), "load", round1(d.Load), "reason", d.Reason, "outcome", outcome}
	if before != nil {
		attrs = append(attrs, "epoch_before", before.Epoch())
	}
	if err != nil {
		a.log.Warn("autosplit decision not applied", append(attrs, "err", err)...)
		return
	}
	attrs = append(attrs, "epoch", after.Epoch())
	if len(d.Pins) > 0 {
		attrs = append(attrs, "placement", placement(d.Pins))
	}
	a.log.Info("autosplit decision", attrs...)
	a.rec, a.dirty = a.rec.Applied(d).Reconcile(after.Doc()), true
	a.ownSplits.Set(float64(len(a.rec.Splits)))
	a.save(ctx)
}

// save writes the record when it changed; a failure is retried at the
// next step (until then a new writer would see the unsaved splits as the
// operator's, and leave them).
func (a *Autosplit) save(ctx context.Context) {
	if !a.dirty {
		return
	}
	if err := a.cfg.Records.Save(ctx, a.rec); err != nil {
		a.log.Warn("autosplit record not saved; retrying", "err", err)
		return
	}
	a.dirty = false
}

// Metric returns the decisions counter of action and outcome (for tests
// and status pages).
func (a *Autosplit) Metric(action autosplit.Action, outcome string) prometheus.Counter {
	return a.decisions.WithLabelValues(string(action), outcome)
}

// Record returns the controller's current record (for status and tests;
// not safe to call while Run runs).
func (a *Autosplit) Record() autosplit.Record { return a.rec.Clone() }

// placement describes a split's child placement: "m1=2,m2=3,m3=2".
func placement(pins map[shardmap.Cell]string) string {
	count := map[string]int{}
	for _, id := range pins {
		count[id]++
	}
	out := ""
	for _, id := range slices.Sorted(maps.Keys(count)) {
		if out != "" {
			out += ","
		}
		out += fmt.Sprintf("%s=%d", id, count[id])
	}
	return out
}

func round1(v float64) float64 { return float64(int64(v*10+0.5)) / 10 }

// autoSplit is Split(cell) plus the planner's placement of the children,
// refused when an operator pinned cell since the decision (rec: the
// controller's own pins). A child whose member is gone or drained is left
// to the ring.
func autoSplit(cell shardmap.Cell, pins map[shardmap.Cell]string, rec autosplit.Record) Change {
	return func(s *Settings, m *shardmap.Map) error {
		if id, ok := s.Pins[cell]; ok && rec.Pins[cell] != id {
			return precondition("cell", "shard %s is pinned to %q by an operator: automatic splits leave it", cell, id)
		}
		if err := Split(cell)(s, m); err != nil {
			return err
		}
		for _, c := range slices.Sorted(maps.Keys(pins)) {
			id := pins[c]
			if shardmap.Resolution(c) != shardmap.Resolution(cell)+1 || shardmap.Parent(c, shardmap.Resolution(cell)) != cell {
				return invalid("cell", "%s is not a child of %s", c, cell)
			}
			if _, ok := m.Member(id); !ok || slices.Contains(s.Drained, id) {
				continue
			}
			if s.Pins == nil {
				s.Pins = map[shardmap.Cell]string{}
			}
			s.Pins[c] = id
		}
		return nil
	}
}

// autoMerge is Merge(cell), refused when cell is not the controller's
// split or an operator pinned or split something below it since the
// decision.
func autoMerge(cell shardmap.Cell, rec autosplit.Record) Change {
	return func(s *Settings, m *shardmap.Map) error {
		if !slices.Contains(rec.Splits, cell) {
			return precondition("cell", "%s was not split automatically: automatic merges leave it", cell)
		}
		r := shardmap.Resolution(cell)
		for _, c := range s.Splits {
			if shardmap.Resolution(c) > r && shardmap.Parent(c, r) == cell && !slices.Contains(rec.Splits, c) {
				return precondition("cell", "%s below %s was split by an operator: automatic merges leave it", c, cell)
			}
		}
		for c, id := range s.Pins {
			if shardmap.Resolution(c) > r && shardmap.Parent(c, r) == cell && rec.Pins[c] != id {
				return precondition("cell", "%s below %s is pinned to %q by an operator: automatic merges leave it", c, cell, id)
			}
		}
		return Merge(cell)(s, m)
	}
}

// MemoryRecords keeps the autosplit record in memory: `geomatch dev`,
// whose ring lives as long as the process. Safe for concurrent use.
type MemoryRecords struct {
	mu  sync.Mutex
	rec autosplit.Record
}

// NewMemoryRecords returns an empty in-memory record store.
func NewMemoryRecords() *MemoryRecords { return &MemoryRecords{} }

// Load implements AutosplitRecords.
func (r *MemoryRecords) Load(context.Context) (autosplit.Record, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.rec.Clone(), nil
}

// Save implements AutosplitRecords.
func (r *MemoryRecords) Save(_ context.Context, rec autosplit.Record) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.rec = rec.Clone()
	return nil
}

// ConsulRecords keeps the autosplit record in Consul KV at
// AutosplitKey, beside the ring and its settings, so a new ring writer
// knows which splits it may merge.
type ConsulRecords struct {
	client *api.Client
	cfg    ConsulConfig
}

// NewConsulRecords returns the record store of the cluster cfg locates.
func NewConsulRecords(c *api.Client, cfg ConsulConfig) *ConsulRecords {
	cfg.fill()
	return &ConsulRecords{client: c, cfg: cfg}
}

// AutosplitKey is where the autosplit record lives in Consul KV.
func (c ConsulConfig) AutosplitKey() string { c.fill(); return c.Prefix + "/autosplit" }

// Load implements AutosplitRecords.
func (r *ConsulRecords) Load(ctx context.Context) (autosplit.Record, error) {
	ctx, cancel := context.WithTimeout(ctx, r.cfg.Timeout)
	defer cancel()
	pair, _, err := r.client.KV().Get(r.cfg.AutosplitKey(), (&api.QueryOptions{RequireConsistent: true}).WithContext(ctx))
	if err != nil {
		return autosplit.Record{}, fmt.Errorf("read %s: %w", r.cfg.AutosplitKey(), err)
	}
	if pair == nil {
		return autosplit.Record{}, nil
	}
	rec, err := autosplit.ParseRecord(pair.Value)
	if err != nil {
		return autosplit.Record{}, fmt.Errorf("%s: %w", r.cfg.AutosplitKey(), err)
	}
	return rec, nil
}

// Save implements AutosplitRecords.
func (r *ConsulRecords) Save(ctx context.Context, rec autosplit.Record) error {
	val, err := rec.Marshal()
	if err != nil {
		return fmt.Errorf("encode autosplit record: %w", err)
	}
	ctx, cancel := context.WithTimeout(ctx, r.cfg.Timeout)
	defer cancel()
	if _, err := r.client.KV().Put(&api.KVPair{Key: r.cfg.AutosplitKey(), Value: val}, (&api.WriteOptions{}).WithContext(ctx)); err != nil {
		return fmt.Errorf("write %s: %w", r.cfg.AutosplitKey(), err)
	}
	return nil
}

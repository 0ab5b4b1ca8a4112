package membership_test

import (
	"context"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/consul/api"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/uber/h3-go/v4"
	"go.uber.org/goleak"

	"github.com/geomatch/geomatch/internal/consultest"
	"github.com/geomatch/geomatch/membership"
	"github.com/geomatch/geomatch/shardmap"
	"github.com/geomatch/geomatch/shardmap/autosplit"
)

// hotShard is a resolution-7 shard in Manhattan.
var hotShard = shardmap.Cell(h3.LatLngToCell(h3.LatLng{Lat: 40.7580, Lng: -73.9855}, 7))

// fakeLoads is a load source the test sets.
type fakeLoads struct {
	mu      sync.Mutex
	loads   map[shardmap.Cell]float64
	missing []string
}

func (f *fakeLoads) set(l map[shardmap.Cell]float64) { f.mu.Lock(); f.loads = l; f.mu.Unlock() }

func (f *fakeLoads) get(_ context.Context, _ *shardmap.Map) ([]autosplit.Load, []string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []autosplit.Load
	for c, v := range f.loads {
		out = append(out, autosplit.Load{Cell: c, UpdatesPerS: v})
	}
	return out, slices.Clone(f.missing)
}

// stepClock is a clock the test advances.
type stepClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *stepClock) now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *stepClock) add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

func testPlanner() autosplit.Config {
	c := autosplit.DefaultConfig()
	c.SplitThreshold = 100
	c.SplitWindow = 2 * time.Second
	c.MergeWindow = 10 * time.Second
	c.ShardCooldown = 5 * time.Second
	c.ClusterInterval = time.Second
	return c
}

func newLocalRing(t *testing.T) *membership.Local {
	t.Helper()
	l, err := membership.NewLocal(shardmap.DefaultDoc([]shardmap.Member{{ID: "m1", Addr: "a1"}, {ID: "m2", Addr: "a2"}, {ID: "m3", Addr: "a3"}}))
	if err != nil {
		t.Fatal(err)
	}
	return l
}

// stepFor steps a for n seconds of the clock.
func stepFor(a *membership.Autosplit, clk *stepClock, n int) {
	for range n {
		clk.add(time.Second)
		a.Step(context.Background())
	}
}

// TestAutosplitSplitsAndMergesThroughTheSettings: the controller's
// decisions are ring-settings changes like an operator's (the ring's
// splits and pins), counted, logged, and recorded as its own.
func TestAutosplitSplitsAndMergesThroughTheSettings(t *testing.T) {
	ring := newLocalRing(t)
	loads := &fakeLoads{}
	clk := &stepClock{t: time.Unix(1_800_000_000, 0)}
	reg := prometheus.NewRegistry()
	records := membership.NewMemoryRecords()
	a, err := membership.NewAutosplit(membership.AutosplitConfig{
		Planner: testPlanner(), Source: ring, Ring: ring, Loads: loads.get, Records: records, Metrics: reg, Now: clk.now,
	}, nil)
	if err != nil {
		t.Fatal(err)
	}
	loads.set(map[shardmap.Cell]float64{hotShard: 1000})
	stepFor(a, clk, 5)
	m, _ := ring.Current()
	if m.Layout().IsShard(hotShard) || m.Epoch() != 2 {
		t.Fatalf("epoch %d, splits %v: want %s split at epoch 2", m.Epoch(), m.Layout().Splits(), hotShard)
	}
	children := hotShard.ImmediateChildren()
	for _, ch := range children {
		if _, pinned := m.Doc().Pins[ch]; !pinned {
			t.Errorf("child %s not placed (pins %v)", ch, m.Doc().Pins)
		}
	}
	if got := testutil.ToFloat64(a.Metric(autosplit.Split, membership.OutcomeApplied)); got != 1 {
		t.Errorf("applied splits counted %v, want 1", got)
	}
	if rec, _ := records.Load(context.Background()); !slices.Contains(rec.Splits, hotShard) || len(rec.Pins) != len(children) {
		t.Errorf("record %+v: want the split and its %d pins", rec, len(children))
	}

	// The children cool down: merged after the cooldown and the window.
	loads.set(nil)
	stepFor(a, clk, 30)
	m, _ = ring.Current()
	if !m.Layout().IsShard(hotShard) || len(m.Doc().Pins) != 0 {
		t.Fatalf("epoch %d, splits %v, pins %v: want %s merged, its pins gone", m.Epoch(), m.Layout().Splits(), m.Doc().Pins, hotShard)
	}
	if got := testutil.ToFloat64(a.Metric(autosplit.Merge, membership.OutcomeApplied)); got != 1 {
		t.Errorf("applied merges counted %v, want 1", got)
	}
	if rec, _ := records.Load(context.Background()); len(rec.Splits) != 0 || len(rec.Pins) != 0 {
		t.Errorf("record %+v after the merge, want empty", rec)
	}
}

// TestAutosplitLeavesTheOperatorsChanges: a pinned hot shard is not
// split, and a split the operator made is not merged however cold.
func TestAutosplitLeavesTheOperatorsChanges(t *testing.T) {
	ring := newLocalRing(t)
	other := shardmap.Cell(h3.LatLngToCell(h3.LatLng{Lat: 40.70, Lng: -74.01}, 7))
	ctx := context.Background()
	if _, _, err := ring.ChangeSettings(ctx, membership.Move(hotShard, "m2")); err != nil {
		t.Fatal(err)
	}
	if _, _, err := ring.ChangeSettings(ctx, membership.Split(other)); err != nil {
		t.Fatal(err)
	}
	loads := &fakeLoads{}
	loads.set(map[shardmap.Cell]float64{hotShard: 1e6})
	clk := &stepClock{t: time.Unix(1_800_000_000, 0)}
	a, err := membership.NewAutosplit(membership.AutosplitConfig{Planner: testPlanner(), Source: ring, Ring: ring, Loads: loads.get, Now: clk.now}, nil)
	if err != nil {
		t.Fatal(err)
	}
	before, _ := ring.Current()
	stepFor(a, clk, 60)
	after, _ := ring.Current()
	if after.Epoch() != before.Epoch() {
		t.Fatalf("the ring changed (epoch %d -> %d, splits %v, pins %v): the operator's pin and split must stay",
			before.Epoch(), after.Epoch(), after.Layout().Splits(), after.Doc().Pins)
	}
}

// TestAutosplitDecidesOnlyWhileLeading: a controller that does not hold
// the writer's lock decides nothing, and one that lost it starts its
// windows again when it leads again.
func TestAutosplitDecidesOnlyWhileLeading(t *testing.T) {
	ring := newLocalRing(t)
	loads := &fakeLoads{}
	loads.set(map[shardmap.Cell]float64{hotShard: 1000})
	clk := &stepClock{t: time.Unix(1_800_000_000, 0)}
	var leading bool
	a, err := membership.NewAutosplit(membership.AutosplitConfig{
		Planner: testPlanner(), Source: ring, Ring: ring, Loads: loads.get, Now: clk.now, Leading: func() bool { return leading },
	}, nil)
	if err != nil {
		t.Fatal(err)
	}
	stepFor(a, clk, 10)
	if m, _ := ring.Current(); m.Epoch() != 1 {
		t.Fatalf("a controller that does not lead changed the ring to epoch %d", m.Epoch())
	}
	leading = true
	stepFor(a, clk, 2) // the window is 2 s: the first sample starts it
	if m, _ := ring.Current(); m.Epoch() != 1 {
		t.Fatal("split before a whole window of its own")
	}
	stepFor(a, clk, 1)
	if m, _ := ring.Current(); m.Epoch() != 2 {
		t.Fatalf("epoch %d: want the split once leading for the window", m.Epoch())
	}
}

// TestAutosplitRunStops: Run returns when its context ends and leaves no
// goroutine behind; the kill switch makes it decide nothing.
func TestAutosplitRunStops(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	ring := newLocalRing(t)
	loads := &fakeLoads{}
	loads.set(map[shardmap.Cell]float64{hotShard: 1e6})
	cfg := testPlanner()
	cfg.Enabled = false
	cfg.SplitWindow = 0
	a, err := membership.NewAutosplit(membership.AutosplitConfig{Planner: cfg, Source: ring, Ring: ring, Loads: loads.get, Interval: 10 * time.Millisecond}, nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- a.Run(ctx) }()
	time.Sleep(100 * time.Millisecond) // ten polls
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if m, _ := ring.Current(); m.Epoch() != 1 {
		t.Fatalf("the kill switch is on, yet the ring moved to epoch %d", m.Epoch())
	}
}

func TestNewAutosplitRefusesBadConfig(t *testing.T) {
	ring := newLocalRing(t)
	loads := &fakeLoads{}
	bad := testPlanner()
	bad.SplitThreshold = -1
	for name, cfg := range map[string]membership.AutosplitConfig{
		"no source":     {Planner: testPlanner(), Ring: ring, Loads: loads.get},
		"no ring":       {Planner: testPlanner(), Source: ring, Loads: loads.get},
		"no loads":      {Planner: testPlanner(), Source: ring, Ring: ring},
		"bad interval":  {Planner: testPlanner(), Source: ring, Ring: ring, Loads: loads.get, Interval: -time.Second},
		"bad threshold": {Planner: bad, Source: ring, Ring: ring, Loads: loads.get},
	} {
		if _, err := membership.NewAutosplit(cfg, nil); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

// TestAutosplitOnConsul: on a Consul cluster the controller beside the
// elected ring writer splits through the settings in Consul, and keeps its
// record there for the next writer.
func TestAutosplitOnConsul(t *testing.T) {
	agent := consultest.Start(t)
	cfg := membership.ConsulConfig{Addr: agent.Addr, Prefix: "autosplit", Service: "autosplit-matcher"}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	w := startCandidate(t, agent.Addr, cfg, "m1", "127.0.0.1:7001")
	client, src := followRing(t, ctx, cfg)
	loads := &fakeLoads{}
	loads.set(map[shardmap.Cell]float64{hotShard: 1000})
	records := membership.NewConsulRecords(client, cfg)
	c := testPlanner()
	c.SplitWindow = 0
	a, err := membership.NewAutosplit(membership.AutosplitConfig{
		Planner: c, Source: src, Ring: src, Loads: loads.get, Records: records, Leading: w.writer.Leading, Interval: 50 * time.Millisecond,
	}, nil)
	if err != nil {
		t.Fatal(err)
	}
	rctx, stop := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { defer close(done); _ = a.Run(rctx) }()
	defer func() { stop(); <-done }()
	if !consultest.WaitFor(ctx, 20*time.Second, func() bool { m, _ := src.Current(); return !m.Layout().IsShard(hotShard) }) {
		t.Fatal("the hot shard was never split in the ring in Consul")
	}
	if !consultest.WaitFor(ctx, 10*time.Second, func() bool {
		rec, err := records.Load(ctx)
		return err == nil && slices.Contains(rec.Splits, hotShard)
	}) {
		t.Fatal("the autosplit record in Consul never listed the split")
	}
	s, _, _, err := membership.ReadSettings(ctx, client, cfg)
	if err != nil || !slices.Contains(s.Splits, hotShard) {
		t.Fatalf("settings %+v, %v: want the split in the operator's settings, as `geomatch admin split` makes it", s, err)
	}
	// A corrupt record is an error naming the key, not an empty record.
	if _, err := client.KV().Put(&api.KVPair{Key: cfg.AutosplitKey(), Value: []byte(`{"splits":["zz"]}`)}, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := records.Load(ctx); err == nil {
		t.Fatal("a corrupt record loaded")
	}
}

package autosplit

import (
	"fmt"
	"maps"
	"strings"
	"testing"
	"time"

	"github.com/geomatch/geomatch/shardmap"
)

// timed is a decision and when it was made.
type timed struct {
	at time.Duration // since t0
	d  Decision
}

func (x timed) String() string { return fmt.Sprintf("%v %s %s", x.at, x.d.Action, x.d.Cell) }

// feed steps p once a second over [from, to) (seconds since t0) with the
// loads load(t) returns, applying every decision to c.
func feed(t testing.TB, p *Planner, c *cluster, from, to int, load func(sec int, c *cluster) map[shardmap.Cell]float64, missing ...string) []timed {
	t.Helper()
	var out []timed
	for s := from; s < to; s++ {
		at := t0.Add(time.Duration(s) * time.Second)
		d, ok := p.Step(Sample{At: at, Loads: loads(load(s, c)), Missing: missing}, c.m, c.rec)
		if ok {
			c.apply(d)
			out = append(out, timed{time.Duration(s) * time.Second, d})
		}
	}
	return out
}

func mustPlanner(t testing.TB, cfg Config) *Planner {
	t.Helper()
	p, err := NewPlanner(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func describe(ds []timed) string {
	var parts []string
	for _, d := range ds {
		parts = append(parts, d.String())
	}
	return "[" + strings.Join(parts, "; ") + "]"
}

// TestRules checks each rule of the package doc on a scripted load.
func TestRules(t *testing.T) {
	hot := shardsNear(2)[0]
	other := shardsNear(2)[1]
	const sec = time.Second
	tests := []struct {
		name string
		cfg  func(*Config)
		doc  func(*shardmap.Doc)
		rec  func(*Record)
		load func(s int, c *cluster) map[shardmap.Cell]float64
		// missing is a member that never answers.
		missing string
		to      int
		want    []string // "<seconds> <action> <cell>" of each decision
	}{
		{
			name: "split after the load stays above the threshold for the split window",
			load: func(s int, c *cluster) map[shardmap.Cell]float64 {
				return map[shardmap.Cell]float64{hot: 500}
			},
			to:   30,
			want: []string{fmt.Sprintf("%v split %s", 10*sec, hot)},
		},
		{
			name: "a burst shorter than the split window does not split",
			load: func(s int, c *cluster) map[shardmap.Cell]float64 {
				if s%8 == 7 { // one sample in 8 under the threshold
					return map[shardmap.Cell]float64{hot: 50}
				}
				return map[shardmap.Cell]float64{hot: 500}
			},
			to: 60,
		},
		{
			name: "load exactly at the threshold is not above it",
			load: func(s int, c *cluster) map[shardmap.Cell]float64 { return map[shardmap.Cell]float64{hot: 100} },
			to:   30,
		},
		{
			name: "an operator's pinned shard is never split",
			doc:  func(d *shardmap.Doc) { d.Pins = map[shardmap.Cell]string{hot: "m2"} },
			load: func(s int, c *cluster) map[shardmap.Cell]float64 { return map[shardmap.Cell]float64{hot: 500} },
			to:   60,
		},
		{
			name: "the kill switch decides nothing",
			cfg:  func(c *Config) { c.Enabled = false },
			load: func(s int, c *cluster) map[shardmap.Cell]float64 { return map[shardmap.Cell]float64{hot: 500} },
			to:   60,
		},
		{
			name:    "a shard of a member that does not answer never splits",
			missing: "OWNER",
			load:    func(s int, c *cluster) map[shardmap.Cell]float64 { return map[shardmap.Cell]float64{hot: 500} },
			to:      60,
		},
		{
			name: "the hottest shard splits first and the cluster interval spaces decisions",
			load: func(s int, c *cluster) map[shardmap.Cell]float64 {
				return map[shardmap.Cell]float64{hot: 500, other: 400}
			},
			to: 20,
			want: []string{
				fmt.Sprintf("%v split %s", 10*sec, hot),
				fmt.Sprintf("%v split %s", 15*sec, other),
			},
		},
		{
			name: "children that stay hot split again after their own window",
			load: func(s int, c *cluster) map[shardmap.Cell]float64 {
				out := map[shardmap.Cell]float64{}
				for _, sh := range shardsUnder(c.m, hot) {
					out[sh] = 5000 // every shard below stays hot
				}
				return out
			},
			to:   50,
			want: []string{fmt.Sprintf("%v split %s", 10*sec, hot), fmt.Sprintf("%v split %s", 21*sec, children(hot)[0])}, // then one per 5 s: see TestDepth
		},
		{
			name: "merge after the children stay under the merge level for the merge window",
			load: func(s int, c *cluster) map[shardmap.Cell]float64 {
				if s < 20 {
					return map[shardmap.Cell]float64{hot: 500}
				}
				return spread(hot, 40) // 40 < 0.5 × 100
			},
			to: 120,
			want: []string{
				fmt.Sprintf("%v split %s", 10*sec, hot),
				fmt.Sprintf("%v merge %s", 100*sec, hot), // cool at 40 s, then the merge window
			},
		},
		{
			name: "hysteresis: children carrying the load that split them never merge",
			load: func(s int, c *cluster) map[shardmap.Cell]float64 {
				if !c.m.Layout().IsShard(hot) {
					return spread(hot, 101)
				}
				return map[shardmap.Cell]float64{hot: 101}
			},
			to:   600,
			want: []string{fmt.Sprintf("%v split %s", 10*sec, hot)},
		},
		{
			name: "an operator's split is never merged",
			doc:  func(d *shardmap.Doc) { d.Splits = []shardmap.Cell{hot} },
			load: func(s int, c *cluster) map[shardmap.Cell]float64 { return nil },
			to:   600,
		},
		{
			name: "an own split with an operator's pin below is not merged",
			doc: func(d *shardmap.Doc) {
				d.Splits = []shardmap.Cell{hot}
				d.Pins = map[shardmap.Cell]string{children(hot)[0]: "m3"}
			},
			rec:  func(r *Record) { r.Splits = []shardmap.Cell{hot} },
			load: func(s int, c *cluster) map[shardmap.Cell]float64 { return nil },
			to:   600,
		},
		{
			name: "an own split is merged with its own pins",
			doc: func(d *shardmap.Doc) {
				d.Splits = []shardmap.Cell{hot}
				d.Pins = map[shardmap.Cell]string{children(hot)[0]: "m3"}
			},
			rec: func(r *Record) {
				r.Splits = []shardmap.Cell{hot}
				r.Pins = map[shardmap.Cell]string{children(hot)[0]: "m3"}
			},
			load: func(s int, c *cluster) map[shardmap.Cell]float64 { return nil },
			to:   100,
			want: []string{fmt.Sprintf("%v merge %s", 60*sec, hot)},
		},
		{
			name: "merges go bottom up",
			doc: func(d *shardmap.Doc) {
				d.Splits = []shardmap.Cell{hot, children(hot)[2]}
			},
			rec:  func(r *Record) { r.Splits = []shardmap.Cell{hot, children(hot)[2]} },
			load: func(s int, c *cluster) map[shardmap.Cell]float64 { return nil },
			to:   200,
			want: []string{
				fmt.Sprintf("%v merge %s", 60*sec, children(hot)[2]),
				fmt.Sprintf("%v merge %s", 150*sec, hot), // its window starts once its children are shards and cool (90 s)
			},
		},
		{
			name: "a merged shard does not split again within the cooldown",
			cfg:  func(c *Config) { c.ShardCooldown = 100 * sec; c.SplitWindow = 0 },
			doc:  func(d *shardmap.Doc) { d.Splits = []shardmap.Cell{hot} },
			rec:  func(r *Record) { r.Splits = []shardmap.Cell{hot} },
			load: func(s int, c *cluster) map[shardmap.Cell]float64 {
				if s < 70 {
					return nil
				}
				return map[shardmap.Cell]float64{hot: 500}
			},
			to: 200,
			want: []string{
				fmt.Sprintf("%v merge %s", 60*sec, hot),
				fmt.Sprintf("%v split %s", 160*sec, hot),
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := fastConfig()
			if tt.cfg != nil {
				tt.cfg(&cfg)
			}
			d := testDoc()
			if tt.doc != nil {
				tt.doc(&d)
			}
			c := newCluster(t, d)
			if tt.rec != nil {
				tt.rec(&c.rec)
			}
			missing := tt.missing
			if missing == "OWNER" {
				o, _ := c.m.Owner(hot)
				missing = o.ID
			}
			var ms []string
			if missing != "" {
				ms = []string{missing}
			}
			got := feed(t, mustPlanner(t, cfg), c, 0, tt.to, tt.load, ms...)
			if len(got) < len(tt.want) {
				t.Fatalf("decisions %s, want at least %v", describe(got), tt.want)
			}
			if tt.name != "children that stay hot split again after their own window" && len(got) != len(tt.want) {
				t.Fatalf("decisions %s, want %v", describe(got), tt.want)
			}
			for i, w := range tt.want {
				if got[i].String() != w {
					t.Errorf("decision %d: %s, want %s (all: %s)", i, got[i], w, describe(got))
				}
			}
		})
	}
}

// shardsUnder lists the shards of m at or below cell c.
func shardsUnder(m *shardmap.Map, c shardmap.Cell) []shardmap.Cell {
	l := m.Layout()
	if l.IsShard(c) {
		return []shardmap.Cell{c}
	}
	if shardmap.Resolution(c) >= l.FineRes() {
		return nil
	}
	var out []shardmap.Cell
	for _, ch := range children(c) {
		out = append(out, shardsUnder(m, ch)...)
	}
	return out
}

// TestDepth: shards that stay hot are split down to the ring's split depth
// (or Config.MaxDepth) and no further.
func TestDepth(t *testing.T) {
	hot := shardsNear(1)[0]
	for _, maxDepth := range []int{0, 1} {
		t.Run(fmt.Sprintf("MaxDepth %d", maxDepth), func(t *testing.T) {
			cfg := fastConfig()
			cfg.MaxDepth = maxDepth
			cfg.ClusterInterval = 0
			c := newCluster(t, testDoc())
			got := feed(t, mustPlanner(t, cfg), c, 0, 200, func(s int, c *cluster) map[shardmap.Cell]float64 {
				out := map[shardmap.Cell]float64{}
				for _, sh := range shardsUnder(c.m, hot) {
					out[sh] = 5000
				}
				return out
			})
			want := 1 + 7 // the shard, then its 7 children
			finest := 8
			if maxDepth == 1 {
				want, finest = 1, 7
			}
			if len(got) != want {
				t.Fatalf("%d splits, want %d: %s", len(got), want, describe(got))
			}
			for _, d := range got {
				if d.d.Action != Split || shardmap.Resolution(d.d.Cell) > finest {
					t.Errorf("%s: want splits of cells of resolution <= %d", d, finest)
				}
			}
		})
	}
}

// TestQueriesWeigh: the load is updates/s + QueryWeight × queries/s.
func TestQueriesWeigh(t *testing.T) {
	cfg := fastConfig()
	cfg.QueryWeight = 10
	cfg.SplitWindow = 0
	hot := shardsNear(1)[0]
	c := newCluster(t, testDoc())
	p := mustPlanner(t, cfg)
	if _, ok := p.Step(Sample{At: t0, Loads: []Load{{Cell: hot, UpdatesPerS: 50, QueriesPerS: 5}}}, c.m, c.rec); ok {
		t.Fatal("50 + 10×5 = 100 is not above 100, yet it split")
	}
	d, ok := p.Step(Sample{At: t0.Add(time.Second), Loads: []Load{{Cell: hot, UpdatesPerS: 50, QueriesPerS: 6}}}, c.m, c.rec)
	if !ok || d.Load != 110 {
		t.Fatalf("50 + 10×6: decision %v %v, want a split at load 110", d, ok)
	}
}

// TestStaleAndDuplicateLoads: cells that are no shards are ignored; a
// shard reported twice counts at its highest.
func TestStaleAndDuplicateLoads(t *testing.T) {
	cfg := fastConfig()
	cfg.SplitWindow = 0
	hot := shardsNear(1)[0]
	d := testDoc()
	d.Splits = []shardmap.Cell{hot}
	c := newCluster(t, d)
	p := mustPlanner(t, cfg)
	if got, ok := p.Step(Sample{At: t0, Loads: []Load{{Cell: hot, UpdatesPerS: 1e6}}}, c.m, c.rec); ok {
		t.Fatalf("split a cell that is no shard: %v", got)
	}
	ch := children(hot)[0]
	got, ok := p.Step(Sample{At: t0.Add(time.Second), Loads: []Load{{Cell: ch, UpdatesPerS: 60}, {Cell: ch, UpdatesPerS: 150}}}, c.m, c.rec)
	if !ok || got.Cell != ch || got.Load != 150 {
		t.Fatalf("got %v %v, want a split of %s at 150", got, ok, ch)
	}
}

// TestResetForgetsWindows: a planner that was reset (a new ring writer)
// waits a whole window again.
func TestResetForgetsWindows(t *testing.T) {
	hot := shardsNear(1)[0]
	c := newCluster(t, testDoc())
	p := mustPlanner(t, fastConfig())
	load := func(int, *cluster) map[shardmap.Cell]float64 { return map[shardmap.Cell]float64{hot: 500} }
	if got := feed(t, p, c, 0, 9, load); len(got) != 0 {
		t.Fatalf("decided early: %s", describe(got))
	}
	p.Reset()
	got := feed(t, p, c, 9, 30, load)
	if len(got) != 1 || got[0].at != 19*time.Second {
		t.Fatalf("after a reset at 9 s: %s, want one split at 19 s", describe(got))
	}
}

func TestConfigValidate(t *testing.T) {
	if err := DefaultConfig().Validate(); err != nil {
		t.Fatalf("defaults: %v", err)
	}
	tests := []struct {
		field string
		edit  func(*Config)
	}{
		{"SplitThreshold", func(c *Config) { c.SplitThreshold = 0 }},
		{"QueryWeight", func(c *Config) { c.QueryWeight = -1 }},
		{"MergeFraction", func(c *Config) { c.MergeFraction = 1 }},
		{"SplitWindow", func(c *Config) { c.SplitWindow = -time.Second }},
		{"MergeWindow", func(c *Config) { c.MergeWindow = time.Second }},
		{"ShardCooldown", func(c *Config) { c.ShardCooldown = -1 }},
		{"ClusterInterval", func(c *Config) { c.ClusterInterval = -1 }},
		{"MaxDepth", func(c *Config) { c.MaxDepth = 4 }},
	}
	for _, tt := range tests {
		c := DefaultConfig()
		tt.edit(&c)
		err := c.Validate()
		if err == nil || !strings.Contains(err.Error(), tt.field+":") {
			t.Errorf("%s: error %v, want one naming the field", tt.field, err)
		}
		if _, err := NewPlanner(c); err == nil {
			t.Errorf("%s: NewPlanner accepted an invalid config", tt.field)
		}
	}
}

func TestPlace(t *testing.T) {
	shards := shardsNear(12)
	hot := shards[0]
	m := mustMap(t, testDoc())
	owner, _ := m.Owner(hot)
	t.Run("children go to the least loaded members", func(t *testing.T) {
		load := map[shardmap.Cell]float64{hot: 700}
		for _, c := range shards[1:] {
			if o, _ := m.Owner(c); o.ID != owner.ID {
				load[c] = 100 // the other members are busy
			}
		}
		pins := Place(m, hot, load, nil)
		if len(pins) != 7 {
			t.Fatalf("%d pins, want 7", len(pins))
		}
		per := map[string]float64{}
		for c, v := range load {
			if c != hot {
				o, _ := m.Owner(c)
				per[o.ID] += v
			}
		}
		for _, id := range pins {
			per[id] += 100
		}
		lo, hi := 1e18, 0.0
		for _, id := range m.ActiveIDs() {
			lo, hi = min(lo, per[id]), max(hi, per[id])
		}
		if hi-lo > 100 {
			t.Errorf("member loads after placement %v: spread %v, want within one child's share (100)", per, hi-lo)
		}
	})
	t.Run("ties go to the shard's owner", func(t *testing.T) {
		pins := Place(m, hot, map[shardmap.Cell]float64{hot: 0}, nil)
		for c, id := range pins {
			if c == children(hot)[0] && id != owner.ID {
				t.Errorf("first child to %s, want the owner %s on a tie", id, owner.ID)
			}
		}
	})
	t.Run("members that did not answer get nothing", func(t *testing.T) {
		pins := Place(m, hot, map[shardmap.Cell]float64{hot: 700}, []string{"m1", "m2"})
		for _, id := range pins {
			if id != "m3" {
				t.Fatalf("pins %v, want all on m3", pins)
			}
		}
	})
	t.Run("drained members get nothing", func(t *testing.T) {
		d := testDoc()
		d.Drained = []string{"m2"}
		pins := Place(mustMap(t, d), hot, map[shardmap.Cell]float64{hot: 700}, nil)
		for _, id := range pins {
			if id == "m2" {
				t.Fatalf("pins %v place on drained m2", pins)
			}
		}
	})
}

func TestRecord(t *testing.T) {
	hot := shardsNear(1)[0]
	ch := children(hot)
	d := testDoc()
	d.Splits = []shardmap.Cell{hot}
	d.Pins = map[shardmap.Cell]string{ch[0]: "m1", ch[1]: "m3"}
	r := Record{Splits: []shardmap.Cell{hot, ch[2]}, Pins: map[shardmap.Cell]string{ch[0]: "m1", ch[1]: "m2", ch[3]: "m2"}}
	got := r.Reconcile(d)
	want := Record{Splits: []shardmap.Cell{hot}, Pins: map[shardmap.Cell]string{ch[0]: "m1"}}
	if !got.Equal(want) {
		t.Errorf("Reconcile: %+v, want %+v (merged splits, re-pinned and removed pins go)", got, want)
	}
	b, err := got.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	back, err := ParseRecord(b)
	if err != nil || !back.Equal(got) {
		t.Fatalf("round trip %s: %+v, %v", b, back, err)
	}
	for _, bad := range []string{
		`{"splits":["zz"]}`, `{"splits":["0"]}`, `{"pins":{"872a1072bffffff":""}}`,
		`{"pins":{"1":"m1"}}`, `[`, `{"splits":5}`,
	} {
		if _, err := ParseRecord([]byte(bad)); err == nil {
			t.Errorf("ParseRecord(%s) accepted it", bad)
		}
	}
	if r, err := ParseRecord(nil); err != nil || len(r.Splits) != 0 {
		t.Errorf("ParseRecord(nil) = %+v, %v, want the empty record", r, err)
	}
	_ = maps.Clone(r.Pins)
}

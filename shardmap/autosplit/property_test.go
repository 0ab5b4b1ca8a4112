package autosplit

import (
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"github.com/geomatch/geomatch/shardmap"
)

// TestPropertiesUnderRandomLoad drives the planner with random load
// sequences (random walks with jumps, members that stop answering, an
// operator's pins and splits) and checks the rules that must hold whatever
// the load: no flapping, operators win, rate limits, valid rings.
func TestPropertiesUnderRandomLoad(t *testing.T) {
	runs := 10
	if testing.Short() {
		runs = 3
	}
	for seed := range uint64(runs) {
		rng := rand.New(rand.NewPCG(seed, 0xa5))
		cfg := fastConfig()
		cfg.SplitWindow = time.Duration(rng.IntN(15)) * time.Second
		cfg.MergeWindow = cfg.SplitWindow + time.Duration(rng.IntN(120))*time.Second
		cfg.ShardCooldown = time.Duration(rng.IntN(60)) * time.Second
		cfg.ClusterInterval = time.Duration(rng.IntN(10)) * time.Second
		cfg.MergeFraction = 0.1 + 0.8*rng.Float64()
		cfg.MaxDepth = rng.IntN(3)
		shards := shardsNear(6)
		d := testDoc()
		// The operator pinned one shard and split another, with a pin below.
		d.Pins = map[shardmap.Cell]string{shards[0]: "m2"}
		d.Splits = []shardmap.Cell{shards[1]}
		d.Pins[children(shards[1])[3]] = "m1"
		c := newCluster(t, d)
		p := mustPlanner(t, cfg)

		level := map[shardmap.Cell]float64{}
		var last time.Time
		changes := map[shardmap.Cell][]timed{}
		for s := range 1500 {
			at := t0.Add(time.Duration(s) * time.Second)
			// Every shard of the ring under the six cells walks at random,
			// with a jump now and then.
			loads := map[shardmap.Cell]float64{}
			for _, root := range shards {
				for _, sh := range shardsUnder(c.m, root) {
					v, ok := level[sh]
					if !ok || rng.IntN(200) == 0 {
						v = []float64{0, 20, 60, 99, 101, 400, 5000}[rng.IntN(7)]
					}
					v = max(0, v*(0.9+0.2*rng.Float64()))
					level[sh] = v
					loads[sh] = v
				}
			}
			var missing []string
			if rng.IntN(50) == 0 {
				missing = []string{[]string{"m1", "m2", "m3"}[rng.IntN(3)]}
			}
			before, rec := c.doc, c.rec
			dec, ok := p.Step(Sample{At: at, Loads: loadsOf(loads), Missing: missing}, c.m, rec)
			if !ok {
				continue
			}
			if !last.IsZero() && at.Sub(last) < cfg.ClusterInterval {
				t.Fatalf("seed %d: decisions %v apart, ClusterInterval %v", seed, at.Sub(last), cfg.ClusterInterval)
			}
			last = at
			switch dec.Action {
			case Split:
				if id, pinned := before.Pins[dec.Cell]; pinned && !rec.isOwnPin(dec.Cell, id) {
					t.Fatalf("seed %d: split %s, pinned by the operator", seed, dec.Cell)
				}
				l := c.m.Layout()
				if !l.IsShard(dec.Cell) || shardmap.Resolution(dec.Cell) >= p.maxRes(l) {
					t.Fatalf("seed %d: split %s: not a shard or too fine (max depth %d)", seed, dec.Cell, cfg.MaxDepth)
				}
				if len(dec.Pins) != len(dec.Cell.ImmediateChildren()) {
					t.Fatalf("seed %d: split %s places %d children", seed, dec.Cell, len(dec.Pins))
				}
			case Merge:
				if !slices.Contains(rec.Splits, dec.Cell) {
					t.Fatalf("seed %d: merged %s, which it did not split", seed, dec.Cell)
				}
				for _, ch := range dec.Cell.ImmediateChildren() {
					if id, pinned := before.Pins[ch]; pinned && !rec.isOwnPin(ch, id) {
						t.Fatalf("seed %d: merged %s over the operator's pin of %s", seed, dec.Cell, ch)
					}
				}
			}
			c.apply(dec) // fails the test if the ring is invalid
			changes[dec.Cell] = append(changes[dec.Cell], timed{at.Sub(t0), dec})
		}
		if !slices.Contains(c.doc.Splits, shards[1]) || c.doc.Pins[shards[0]] != "m2" {
			t.Fatalf("seed %d: the operator's split or pin is gone: %v %v", seed, c.doc.Splits, c.doc.Pins)
		}
		// No flapping: a split stays for at least the cooldown and the
		// merge window; a merged cell stays whole for the cooldown and a
		// split window; so any merge window holds at most two changes.
		for cell, cs := range changes {
			for i := 1; i < len(cs); i++ {
				gap := cs[i].at - cs[i-1].at
				switch {
				case cs[i-1].d.Action == Split && cs[i].d.Action == Merge:
					if gap < cfg.ShardCooldown+cfg.MergeWindow {
						t.Errorf("seed %d: %s split then merged %v later (cooldown %v + merge window %v)", seed, cell, gap, cfg.ShardCooldown, cfg.MergeWindow)
					}
				case cs[i-1].d.Action == Merge && cs[i].d.Action == Split:
					if gap < max(cfg.ShardCooldown, cfg.SplitWindow) {
						t.Errorf("seed %d: %s merged then split %v later", seed, cell, gap)
					}
				default:
					t.Errorf("seed %d: %s: %s twice in a row", seed, cell, cs[i].d.Action)
				}
			}
			for i := 2; i < len(cs); i++ {
				if cfg.MergeWindow > 0 && cs[i].at-cs[i-2].at < cfg.MergeWindow {
					t.Errorf("seed %d: %s changed 3 times within %v: %s", seed, cell, cs[i].at-cs[i-2].at, describe(cs))
				}
			}
		}
	}
}

func loadsOf(in map[shardmap.Cell]float64) []Load { return loads(in) }

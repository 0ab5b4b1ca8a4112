package autosplit

import (
	"maps"
	"slices"
	"testing"
	"time"

	"github.com/uber/h3-go/v4"

	"github.com/geomatch/geomatch/shardmap"
)

var t0 = time.Date(2026, 12, 7, 9, 0, 0, 0, time.UTC)

// shardsNear returns n distinct resolution-7 shards around New York.
func shardsNear(n int) []shardmap.Cell {
	c := h3.LatLngToCell(h3.LatLng{Lat: 40.7128, Lng: -74.0060}, 7)
	disk := c.GridDisk(3)
	slices.Sort(disk)
	return disk[:n]
}

// testDoc is a 3-member ring with the default layout (resolution 7, two
// levels of splits).
func testDoc() shardmap.Doc {
	return shardmap.DefaultDoc([]shardmap.Member{{ID: "m1", Addr: "a1"}, {ID: "m2", Addr: "a2"}, {ID: "m3", Addr: "a3"}})
}

func mustMap(t testing.TB, d shardmap.Doc) *shardmap.Map {
	t.Helper()
	m, err := shardmap.NewMap(d)
	if err != nil {
		t.Fatalf("ring: %v", err)
	}
	return m
}

// fastConfig is DefaultConfig with small numbers: threshold 100, split
// window 10 s, merge window 60 s, cooldown 30 s, one decision per 5 s.
func fastConfig() Config {
	c := DefaultConfig()
	c.SplitThreshold = 100
	c.QueryWeight = 0
	c.SplitWindow = 10 * time.Second
	c.MergeWindow = 60 * time.Second
	c.ShardCooldown = 30 * time.Second
	c.ClusterInterval = 5 * time.Second
	return c
}

// cluster is a ring the tests change by applying the planner's decisions,
// as the controller does.
type cluster struct {
	t   testing.TB
	doc shardmap.Doc
	m   *shardmap.Map
	rec Record
}

func newCluster(t testing.TB, d shardmap.Doc) *cluster {
	return &cluster{t: t, doc: d, m: mustMap(t, d)}
}

// apply changes the ring as membership.Split/Merge and the child pins do.
func (c *cluster) apply(d Decision) {
	c.t.Helper()
	doc := c.doc.Clone()
	switch d.Action {
	case Split:
		doc.Splits = append(doc.Splits, d.Cell)
		delete(doc.Pins, d.Cell)
		if doc.Pins == nil {
			doc.Pins = map[shardmap.Cell]string{}
		}
		maps.Copy(doc.Pins, d.Pins)
	case Merge:
		res := shardmap.Resolution(d.Cell)
		below := func(x shardmap.Cell) bool { return shardmap.Resolution(x) > res && shardmap.Parent(x, res) == d.Cell }
		doc.Splits = slices.DeleteFunc(doc.Splits, func(x shardmap.Cell) bool { return x == d.Cell || below(x) })
		maps.DeleteFunc(doc.Pins, func(x shardmap.Cell, _ string) bool { return below(x) })
	}
	doc.Epoch++
	c.doc = doc
	c.m = mustMap(c.t, doc)
	c.rec = c.rec.Applied(d).Reconcile(doc)
}

// loads is a sample's loads from a cell → load map (updates only).
func loads(in map[shardmap.Cell]float64) []Load {
	var out []Load
	for _, c := range slices.Sorted(maps.Keys(in)) {
		out = append(out, Load{Cell: c, UpdatesPerS: in[c]})
	}
	return out
}

func children(c shardmap.Cell) []shardmap.Cell {
	ch := c.ImmediateChildren()
	slices.Sort(ch)
	return ch
}

// spread gives each child of c an equal share of total.
func spread(c shardmap.Cell, total float64) map[shardmap.Cell]float64 {
	out := map[shardmap.Cell]float64{}
	ch := children(c)
	for _, x := range ch {
		out[x] = total / float64(len(ch))
	}
	return out
}

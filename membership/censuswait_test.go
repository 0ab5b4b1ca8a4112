package membership

import (
	"testing"
	"time"

	"github.com/geomatch/geomatch/shardmap"
)

// TestCensusWait: one row per rule of censusWait.
func TestCensusWait(t *testing.T) {
	const quiet = 10 * time.Second
	t0 := time.Unix(1000, 0)
	two := []shardmap.Member{{ID: "a", Addr: "a:1", Weight: 1}, {ID: "b", Addr: "b:1", Weight: 1}}
	base := shardmap.Doc{Epoch: 7, Members: two, Overrides: map[shardmap.Cell]string{0x852a1073fffffff: "a"}}
	rec := Record{Doc: base, SettingsIndex: 5, WrittenAt: t0}
	moved := base
	moved.Overrides = map[shardmap.Cell]string{0x852a1073fffffff: "b"}
	fewer := moved
	fewer.Members = two[:1]
	drained := moved
	drained.Drained = []string{"b"}
	for _, tc := range []struct {
		name     string
		doc      shardmap.Doc
		haveRing bool
		sIndex   uint64
		now      time.Time
		want     time.Duration
	}{
		{"only the census moved shards, just after a change: wait out the quiet", moved, true, 5, t0.Add(time.Second), 9 * time.Second},
		{"only the census, the quiet over: write", moved, true, 5, t0.Add(quiet), 0},
		{"a member left: write at once", fewer, true, 5, t0.Add(time.Second), 0},
		{"a drain: write at once", drained, true, 5, t0.Add(time.Second), 0},
		{"the settings changed: write at once", moved, true, 6, t0.Add(time.Second), 0},
		{"nothing moves: nothing to hold", base, true, 5, t0.Add(time.Second), 0},
		{"no ring yet: write", moved, false, 5, t0.Add(time.Second), 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := censusWait(tc.doc, rec, tc.haveRing, tc.sIndex, quiet, tc.now); got != tc.want {
				t.Fatalf("censusWait = %v, want %v", got, tc.want)
			}
		})
	}
}

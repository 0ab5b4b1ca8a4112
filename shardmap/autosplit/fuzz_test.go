package autosplit

import (
	"testing"
	"time"
)

// FuzzParseRecord: any input either is refused or parses into a record
// that round-trips through Marshal unchanged, within the limits.
func FuzzParseRecord(f *testing.F) {
	f.Add([]byte(`{"splits":["872a1072bffffff"],"pins":{"882a1072b1fffff":"m1"}}`))
	f.Add([]byte(`{}`))
	f.Add([]byte(`{"splits":["872a1072bffffff","872a1072bffffff"]}`))
	f.Add([]byte(`{"pins":{"882a1072b1fffff":""}}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		r, err := ParseRecord(data)
		if err != nil {
			return
		}
		if len(r.Splits) > MaxRecordSplits || len(r.Pins) > MaxRecordPins {
			t.Fatalf("over the limits: %d splits, %d pins", len(r.Splits), len(r.Pins))
		}
		b, err := r.Marshal()
		if err != nil {
			t.Fatalf("marshal a parsed record: %v", err)
		}
		back, err := ParseRecord(b)
		if err != nil || !back.Equal(r) {
			t.Fatalf("round trip of %s: %+v, %v", b, back, err)
		}
	})
}

// FuzzConfigValidate: a config Validate accepts makes a planner that
// steps without panicking.
func FuzzConfigValidate(f *testing.F) {
	f.Add(5000.0, 10.0, int64(10e9), 0.5, int64(300e9), int64(60e9), int64(10e9), 0)
	f.Add(0.0, -1.0, int64(-1), 1.0, int64(0), int64(-1), int64(-1), 4)
	f.Fuzz(func(t *testing.T, thr, qw float64, sw int64, mf float64, mw, cd, ci int64, depth int) {
		c := Config{Enabled: true, SplitThreshold: thr, QueryWeight: qw, SplitWindow: time.Duration(sw), MergeFraction: mf,
			MergeWindow: time.Duration(mw), ShardCooldown: time.Duration(cd), ClusterInterval: time.Duration(ci), MaxDepth: depth}
		p, err := NewPlanner(c)
		if err != nil {
			return
		}
		cl := newCluster(t, testDoc())
		hot := shardsNear(1)[0]
		for s := range 3 {
			p.Step(Sample{At: t0.Add(time.Duration(s) * time.Hour), Loads: []Load{{Cell: hot, UpdatesPerS: thr * 2}}}, cl.m, cl.rec)
		}
	})
}

package report

import (
	"bytes"
	"strings"
	"testing"
)

// syntheticNodeLoad is a run of 300 s: balanced, a hot spot on m1 from
// 60 s (formed at 70 s) split at 80 s (balanced from 90 s), dispersed at
// 180 s and merged back at 250 s.
func syntheticNodeLoad() *NodeLoad {
	n := &NodeLoad{QueryWeight: 10, Nodes: []string{"m1", "m2", "m3"}, HotFromS: 60, HotToS: 180, HotCell: "872a1072bffffff"}
	for t := 0.0; t <= 300; t++ {
		l := map[string]float64{"m1": 100, "m2": 100, "m3": 100}
		hot := 0.0
		switch {
		case t >= 70 && t < 90:
			hot = 150
			l["m1"] += hot
		case t >= 90 && t < 180:
			hot = 150
			l["m1"], l["m2"], l["m3"] = 150, 150, 150
		case t >= 60 && t < 70:
			hot = 50
			l["m1"] += hot
		}
		n.Samples = append(n.Samples, NodeLoadSample{T: t, Load: l, HotLoad: hot, MaxOverMean: MaxOverMean(l, n.Nodes)})
	}
	n.Changes = []RingChange{{T: 80, Action: "split", Cell: "872a1072bffffff"}, {T: 250, Action: "merge", Cell: "872a1072bffffff"}}
	n.Summarize()
	return n
}

func TestNodeLoadSummary(t *testing.T) {
	s := syntheticNodeLoad().Summary
	want := NodeLoadSummary{BeforeHot: 1, FormedS: 70, Hot: 1, BalancedAfterS: 19, AfterDispersal: 1, AfterMerge: 1, Splits: 1, Merges: 1, MaxChangesPerCell: 2}
	if s != want {
		t.Errorf("summary %+v,\nwant    %+v", s, want)
	}
	var b bytes.Buffer
	if err := WriteNodeLoad(&b, syntheticNodeLoad()); err != nil {
		t.Fatal(err)
	}
	for _, line := range []string{"hot spot formed at           70 s", "1 splits, 1 merges, at most 2 changes of one cell"} {
		if !strings.Contains(b.String(), line) {
			t.Errorf("summary lacks %q:\n%s", line, b.String())
		}
	}
	if err := WriteNodeLoad(&b, nil); err != nil {
		t.Errorf("nil: %v", err)
	}
}

func TestNodeLoadCharts(t *testing.T) {
	charts, err := nodeLoadCharts(&Result{NodeLoad: syntheticNodeLoad()})
	if err != nil || len(charts) != 2 {
		t.Fatalf("%d charts, %v", len(charts), err)
	}
	for _, want := range []string{"<svg", "Load per matcher", "matcher m2", "split", "merge", "hot spot"} {
		if !strings.Contains(charts[0], want) {
			t.Errorf("load chart lacks %q", want)
		}
	}
	if none, err := nodeLoadCharts(&Result{}); err != nil || len(none) != 0 {
		t.Errorf("without samples: %d charts, %v", len(none), err)
	}
	if got := MaxOverMean(map[string]float64{"a": 3}, []string{"a", "b", "c"}); got != 3 {
		t.Errorf("MaxOverMean counts absent nodes as 0: %v, want 3", got)
	}
}

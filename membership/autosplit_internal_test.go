package membership

import (
	"errors"
	"testing"

	"github.com/uber/h3-go/v4"

	"github.com/geomatch/geomatch/shardmap"
	"github.com/geomatch/geomatch/shardmap/autosplit"
)

// TestAutoChangesCheckTheOperatorAgain: the changes the controller applies
// check, against the settings they are applied to, that nothing of the
// operator's came in between the decision and the change.
func TestAutoChangesCheckTheOperatorAgain(t *testing.T) {
	cell := shardmap.Cell(h3.LatLngToCell(h3.LatLng{Lat: 40.7580, Lng: -73.9855}, 7))
	children := cell.ImmediateChildren()
	doc := shardmap.DefaultDoc([]shardmap.Member{{ID: "m1"}, {ID: "m2"}, {ID: "m3"}})
	m, err := shardmap.NewMap(doc)
	if err != nil {
		t.Fatal(err)
	}
	pins := map[shardmap.Cell]string{}
	for i, ch := range children {
		pins[ch] = []string{"m1", "m2", "m3"}[i%3]
	}

	s := SettingsOf(doc)
	s.Pins = map[shardmap.Cell]string{cell: "m2"}
	if err := autoSplit(cell, pins, autosplit.Record{})(&s, m); !errors.Is(err, ErrPrecondition) {
		t.Errorf("split of a shard the operator pinned: %v, want a precondition error", err)
	}

	s = SettingsOf(doc)
	s.Drained = []string{"m3"}
	if err := autoSplit(cell, pins, autosplit.Record{})(&s, m); err != nil {
		t.Fatal(err)
	}
	if len(s.Splits) != 1 || s.Splits[0] != cell {
		t.Fatalf("splits %v, want %s", s.Splits, cell)
	}
	for c, id := range s.Pins {
		if id == "m3" {
			t.Errorf("child %s pinned to drained m3", c)
		}
	}

	split := doc.Clone()
	split.Splits = []shardmap.Cell{cell}
	sm, err := shardmap.NewMap(split)
	if err != nil {
		t.Fatal(err)
	}
	own := autosplit.Record{Splits: []shardmap.Cell{cell}, Pins: map[shardmap.Cell]string{children[0]: "m1"}}
	for name, edit := range map[string]func(*Settings) autosplit.Record{
		"not its split":           func(s *Settings) autosplit.Record { return autosplit.Record{} },
		"an operator's pin below": func(s *Settings) autosplit.Record { s.Pins = map[shardmap.Cell]string{children[0]: "m2"}; return own },
		"an operator's split below": func(s *Settings) autosplit.Record {
			s.Splits = append(s.Splits, children[1])
			return own
		},
	} {
		s := SettingsOf(split)
		rec := edit(&s)
		if err := autoMerge(cell, rec)(&s, sm); !errors.Is(err, ErrPrecondition) {
			t.Errorf("merge with %s: %v, want a precondition error", name, err)
		}
	}
	s = SettingsOf(split)
	s.Pins = map[shardmap.Cell]string{children[0]: "m1"}
	if err := autoMerge(cell, own)(&s, sm); err != nil || len(s.Splits) != 0 || len(s.Pins) != 0 {
		t.Errorf("merge of its own split with its own pin: %v, splits %v, pins %v", err, s.Splits, s.Pins)
	}
}

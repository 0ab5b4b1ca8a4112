package membership_test

import (
	"errors"
	"maps"
	"slices"
	"strings"
	"testing"

	"github.com/geomatch/geomatch/membership"
	"github.com/geomatch/geomatch/shardmap"
)

// Cells of the admin tables: a resolution-7 shard in Manhattan, its
// children, a grandchild and a cell of a resolution the ring never uses.
var (
	shard     = shardmap.Cell(0x872a1072bffffff)
	other     = shardmap.Cell(0x872a10729ffffff)
	children  = shard.ImmediateChildren()
	grandkids = children[0].ImmediateChildren()
	coarse    = shardmap.Parent(shard, 4)
)

// adminRing is the ring the tables change: members a, b, c (c drained),
// other split, pins on shard (to a) and on a child of other (to b).
func adminRing(t *testing.T) (membership.Settings, *shardmap.Map) {
	t.Helper()
	d := shardmap.DefaultDoc([]shardmap.Member{{ID: "a", Addr: "a:1"}, {ID: "b", Addr: "b:1"}, {ID: "c", Addr: "c:1"}})
	d.Splits = []shardmap.Cell{other}
	kid := other.ImmediateChildren()[2]
	d.Pins = map[shardmap.Cell]string{shard: "a", kid: "b"}
	d.Drained = []string{"c"}
	m, err := shardmap.NewMap(d)
	if err != nil {
		t.Fatal(err)
	}
	return membership.SettingsOf(d), m
}

func TestChangesTable(t *testing.T) {
	otherKid := other.ImmediateChildren()[2]
	cases := []struct {
		name   string
		change membership.Change
		// want checks the settings after a change that must succeed.
		want func(t *testing.T, s membership.Settings)
		// field and kind of a refused change; words its message contains.
		field string
		kind  error
		words []string
	}{
		{name: "move pins the shard", change: membership.Move(shard, "b"),
			want: func(t *testing.T, s membership.Settings) { wantPin(t, s, shard, "b") }},
		{name: "move a child of a split shard", change: membership.Move(otherKid, "a"),
			want: func(t *testing.T, s membership.Settings) { wantPin(t, s, otherKid, "a") }},
		{name: "move to an unknown node is invalid", change: membership.Move(shard, "zz"), field: "node_id", kind: membership.ErrInvalid, words: []string{`"zz"`, "not a member"}},
		{name: "move to no node is invalid", change: membership.Move(shard, ""), field: "node_id", kind: membership.ErrInvalid, words: []string{"empty"}},
		{name: "move to a drained node fails its precondition", change: membership.Move(shard, "c"), field: "node_id", kind: membership.ErrPrecondition, words: []string{"drained"}},
		{name: "move of a split cell is invalid", change: membership.Move(other, "a"), field: "cell", kind: membership.ErrInvalid, words: []string{"is split"}},
		{name: "move of a cell inside a shard names the shard", change: membership.Move(children[0], "a"), field: "cell", kind: membership.ErrInvalid, words: []string{"lies in shard " + shard.String()}},
		{name: "move of a coarse cell is invalid", change: membership.Move(coarse, "a"), field: "cell", kind: membership.ErrInvalid, words: []string{"not a shard", "resolution 4"}},
		{name: "move of garbage is invalid", change: membership.Move(12345, "a"), field: "cell", kind: membership.ErrInvalid, words: []string{"not an H3 cell"}},

		{name: "unpin removes the pin", change: membership.Unpin(shard),
			want: func(t *testing.T, s membership.Settings) { wantPin(t, s, shard, "") }},
		{name: "unpin of a child shard", change: membership.Unpin(otherKid), want: func(t *testing.T, s membership.Settings) { wantPin(t, s, otherKid, "") }},
		{name: "unpin of a cell that is not a shard is invalid", change: membership.Unpin(grandkids[0]), field: "cell", kind: membership.ErrInvalid, words: []string{"lies in shard " + shard.String()}},
		{name: "unpin of a shard that is not pinned fails its precondition", change: membership.Unpin(other.ImmediateChildren()[0]), field: "cell", kind: membership.ErrPrecondition, words: []string{"not pinned"}},

		{name: "drain drains and drops the node's pins", change: membership.Drain("a"),
			want: func(t *testing.T, s membership.Settings) {
				if !slices.Contains(s.Drained, "a") {
					t.Fatalf("drained %v", s.Drained)
				}
				wantPin(t, s, shard, "")
				wantPin(t, s, otherKid, "b")
			}},
		{name: "drain of an unknown node is invalid", change: membership.Drain("zz"), field: "node_id", kind: membership.ErrInvalid},
		{name: "drain of a drained node fails its precondition", change: membership.Drain("c"), field: "node_id", kind: membership.ErrPrecondition, words: []string{"already drained"}},
		{name: "drain of the last active node fails its precondition", change: chain(membership.Drain("a"), membership.Drain("b")), field: "node_id", kind: membership.ErrPrecondition, words: []string{"last active node"}},

		{name: "undrain", change: membership.Undrain("c"),
			want: func(t *testing.T, s membership.Settings) {
				if len(s.Drained) != 0 {
					t.Fatalf("drained %v", s.Drained)
				}
			}},
		{name: "undrain of an active node fails its precondition", change: membership.Undrain("a"), field: "node_id", kind: membership.ErrPrecondition, words: []string{"not drained"}},
		{name: "undrain of an unknown node is invalid", change: membership.Undrain("zz"), field: "node_id", kind: membership.ErrInvalid},

		{name: "split adds the split and drops the shard's pin", change: membership.Split(shard),
			want: func(t *testing.T, s membership.Settings) {
				if !slices.Contains(s.Splits, shard) {
					t.Fatalf("splits %v", s.Splits)
				}
				wantPin(t, s, shard, "")
			}},
		{name: "split twice down to the finest resolution", change: chain(membership.Split(shard), membership.Split(children[0])),
			want: func(t *testing.T, s membership.Settings) {
				if !slices.Contains(s.Splits, children[0]) {
					t.Fatalf("splits %v", s.Splits)
				}
			}},
		{name: "split below the finest resolution fails its precondition", change: chain(membership.Split(shard), membership.Split(children[0]), membership.Split(grandkids[0])),
			field: "cell", kind: membership.ErrPrecondition, words: []string{"finest"}},
		{name: "split of a split cell is invalid", change: membership.Split(other), field: "cell", kind: membership.ErrInvalid, words: []string{"is split"}},

		{name: "merge undoes the split and drops the children's pins", change: membership.Merge(other),
			want: func(t *testing.T, s membership.Settings) {
				if len(s.Splits) != 0 {
					t.Fatalf("splits %v", s.Splits)
				}
				wantPin(t, s, otherKid, "")
				wantPin(t, s, shard, "a")
			}},
		{name: "merge undoes the splits below too", change: chain(membership.Split(shard), membership.Split(children[0]), membership.Merge(shard)),
			want: func(t *testing.T, s membership.Settings) {
				if !slices.Equal(s.Splits, []shardmap.Cell{other}) {
					t.Fatalf("splits %v", s.Splits)
				}
			}},
		{name: "merge of a shard never split fails its precondition", change: membership.Merge(shard), field: "cell", kind: membership.ErrPrecondition, words: []string{"never split"}},
		{name: "merge of a child shard points at its parent", change: membership.Merge(otherKid), field: "cell", kind: membership.ErrPrecondition, words: []string{"merge its parent " + other.String()}},
		{name: "merge of a cell that is neither split nor a shard is invalid", change: membership.Merge(coarse), field: "cell", kind: membership.ErrInvalid},
		{name: "merge of garbage is invalid", change: membership.Merge(1), field: "cell", kind: membership.ErrInvalid, words: []string{"not an H3 cell"}},

		{name: "apply pins", change: membership.ApplyPins([]shardmap.Move{{Cell: shard, From: "a", To: "b"}, {Cell: otherKid, From: "b", To: "a"}}),
			want: func(t *testing.T, s membership.Settings) {
				wantPin(t, s, shard, "b")
				wantPin(t, s, otherKid, "a")
			}},
		{name: "apply pins of a cell no longer a shard fails its precondition", change: membership.ApplyPins([]shardmap.Move{{Cell: shard, To: "b"}, {Cell: other, To: "a"}}), field: "moves", kind: membership.ErrPrecondition, words: []string{"move 1", "plan again"}},
		{name: "apply pins to a drained node fails its precondition", change: membership.ApplyPins([]shardmap.Move{{Cell: shard, To: "c"}}), field: "moves", kind: membership.ErrPrecondition, words: []string{"drained"}},
		{name: "apply pins to a node gone fails its precondition", change: membership.ApplyPins([]shardmap.Move{{Cell: shard, To: "zz"}}), field: "moves", kind: membership.ErrPrecondition},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s, m := adminRing(t)
			err := tc.change(&s, m)
			if tc.want != nil {
				if err != nil {
					t.Fatalf("refused: %v", err)
				}
				tc.want(t, s)
				// The settings still compose a valid ring.
				if _, err := membership.Compose(s, m.Members(), nil, m.Epoch()+1); err != nil {
					t.Fatalf("settings after the change compose no ring: %v", err)
				}
				return
			}
			var ce *membership.ChangeError
			if !errors.As(err, &ce) {
				t.Fatalf("error %v (%T), want a *ChangeError; settings %+v", err, err, s)
			}
			if ce.Field != tc.field || !errors.Is(err, tc.kind) {
				t.Fatalf("error %v: field %q kind %v, want %q %v", err, ce.Field, ce.Kind, tc.field, tc.kind)
			}
			if !strings.HasPrefix(err.Error(), tc.field+": ") {
				t.Fatalf("error %q does not start with its field", err)
			}
			for _, w := range tc.words {
				if !strings.Contains(err.Error(), w) {
					t.Fatalf("error %q does not mention %q", err, w)
				}
			}
		})
	}
}

// chain applies changes in turn to the same settings, each against the
// ring the ones before made, as separate admin calls would.
func chain(changes ...membership.Change) membership.Change {
	return func(s *membership.Settings, m *shardmap.Map) error {
		for _, c := range changes {
			if err := c(s, m); err != nil {
				return err
			}
			d, err := membership.Compose(*s, m.Members(), nil, m.Epoch()+1)
			if err != nil {
				return err
			}
			if m, err = shardmap.NewMap(d); err != nil {
				return err
			}
		}
		return nil
	}
}

func wantPin(t *testing.T, s membership.Settings, c shardmap.Cell, node string) {
	t.Helper()
	if got := s.Pins[c]; got != node {
		t.Fatalf("pin of %s is %q, want %q (pins %v)", c, got, node, s.Pins)
	}
}

func TestParseCell(t *testing.T) {
	for _, ok := range []string{"872a1072bffffff", "0x872a1072bffffff", "872A1072BFFFFFF"} {
		if c, err := membership.ParseCell(ok); err != nil || c != shard {
			t.Errorf("ParseCell(%q) = %v, %v", ok, c, err)
		}
	}
	for _, bad := range []string{"", "zz", "872a1072bffffff0", "1", "-1", " 872a1072bffffff", strings.Repeat("f", 100)} {
		_, err := membership.ParseCell(bad)
		var ce *membership.ChangeError
		if !errors.As(err, &ce) || ce.Field != "cell" || !errors.Is(err, membership.ErrInvalid) {
			t.Errorf("ParseCell(%q): %v, want an invalid cell", bad, err)
		}
	}
}

func TestSettingsOfComposesTheSameRing(t *testing.T) {
	_, m := adminRing(t)
	d := m.Doc()
	back, err := membership.Compose(membership.SettingsOf(d), d.Members, nil, d.Epoch)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(back.Members, d.Members) || !slices.Equal(back.Splits, d.Splits) || !maps.Equal(back.Pins, d.Pins) ||
		!slices.Equal(back.Drained, d.Drained) || back.ShardRes != d.ShardRes || back.VNodes != d.VNodes || back.MaxSplitDepth != d.MaxSplitDepth {
		t.Fatalf("SettingsOf then Compose: %+v, want %+v", back, d)
	}
}

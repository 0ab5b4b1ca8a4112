package membership

import (
	"errors"
	"fmt"
	"maps"
	"slices"

	"github.com/geomatch/geomatch/shardmap"
)

// Change is an operator's change of the ring settings, checked against
// the ring it is made on (the ring the caller routes by). It changes s in
// place, or returns an error and the caller discards s: a *ChangeError when
// an argument is wrong or the ring does not allow the change. Changes are
// pure; a settings store (Local, Consul) applies them and publishes the
// ring that results.
type Change func(s *Settings, m *shardmap.Map) error

// Kinds of ChangeError, for errors.Is.
var (
	// ErrInvalid: an argument is wrong whatever the ring's state (a cell
	// that is no H3 cell or no shard of the ring, an unknown node).
	ErrInvalid = errors.New("invalid argument")
	// ErrPrecondition: the argument is fine, but the ring's state does not
	// allow the change (moving a shard to a drained node, draining the last
	// active node, merging a shard that was never split, unpinning a shard
	// that is not pinned).
	ErrPrecondition = errors.New("failed precondition")
)

// ChangeError says why a Change was refused: which argument (Field, named
// as in the admin API: "cell", "node_id", "moves") and whether it is
// invalid or the ring's state is in the way (Kind).
type ChangeError struct {
	Field string
	// Kind is ErrInvalid or ErrPrecondition.
	Kind error
	Msg  string
}

func (e *ChangeError) Error() string { return e.Field + ": " + e.Msg }

// Unwrap returns Kind.
func (e *ChangeError) Unwrap() error { return e.Kind }

func invalid(field, format string, args ...any) error {
	return &ChangeError{Field: field, Kind: ErrInvalid, Msg: fmt.Sprintf(format, args...)}
}

func precondition(field, format string, args ...any) error {
	return &ChangeError{Field: field, Kind: ErrPrecondition, Msg: fmt.Sprintf(format, args...)}
}

// checkCell refuses a cell that is no valid H3 cell index.
func checkCell(c shardmap.Cell) error {
	if !c.IsValid() {
		return invalid("cell", "%s is not an H3 cell index (hex, e.g. 872a1072bffffff)", c)
	}
	return nil
}

// checkShard refuses a cell that is no shard of m.
func checkShard(m *shardmap.Map, c shardmap.Cell) error {
	if err := checkCell(c); err != nil {
		return err
	}
	l := m.Layout()
	if l.IsShard(c) {
		return nil
	}
	if slices.Contains(l.Splits(), c) {
		return invalid("cell", "%s is split at epoch %d: its 7 children are shards (merge it to make it one shard again)", c, m.Epoch())
	}
	r := shardmap.Resolution(c)
	if r > l.Res() && r <= l.FineRes() {
		// Inside the map's resolutions: say which shard holds it.
		for p := r - 1; p >= l.Res(); p-- {
			if anc := shardmap.Parent(c, p); l.IsShard(anc) {
				return invalid("cell", "%s is not a shard of the ring at epoch %d: it lies in shard %s", c, m.Epoch(), anc)
			}
		}
	}
	return invalid("cell", "%s (resolution %d) is not a shard of the ring at epoch %d (shard resolution %d, %d split cells): see ListShards or `geomatch admin shards`",
		c, r, m.Epoch(), l.Res(), len(l.Splits()))
}

// checkMember refuses a node that is not a member of m.
func checkMember(m *shardmap.Map, node string) error {
	if node == "" {
		return invalid("node_id", "empty: a ring member's id is required")
	}
	if _, ok := m.Member(node); !ok {
		return invalid("node_id", "%q is not a member of the ring at epoch %d", node, m.Epoch())
	}
	return nil
}

// Move pins shard cell to node: node owns it whatever the ring says until
// the pin is removed, node is drained or leaves. node must be a member
// that is not drained.
func Move(cell shardmap.Cell, node string) Change {
	return func(s *Settings, m *shardmap.Map) error {
		if err := checkShard(m, cell); err != nil {
			return err
		}
		if err := checkMember(m, node); err != nil {
			return err
		}
		if slices.Contains(s.Drained, node) {
			return precondition("node_id", "%q is drained: undrain it first", node)
		}
		if s.Pins == nil {
			s.Pins = map[shardmap.Cell]string{}
		}
		s.Pins[cell] = node
		return nil
	}
}

// Unpin removes the pin of cell: the ring places the shard again.
func Unpin(cell shardmap.Cell) Change {
	return func(s *Settings, m *shardmap.Map) error {
		if err := checkCell(cell); err != nil {
			return err
		}
		if _, ok := s.Pins[cell]; !ok {
			if err := checkShard(m, cell); err != nil {
				return err
			}
			return precondition("cell", "shard %s is not pinned", cell)
		}
		delete(s.Pins, cell)
		return nil
	}
}

// Drain takes every shard off node, its pins included; node stays a
// member. The last active node cannot be drained.
func Drain(node string) Change {
	return func(s *Settings, m *shardmap.Map) error {
		if err := checkMember(m, node); err != nil {
			return err
		}
		if slices.Contains(s.Drained, node) {
			return precondition("node_id", "%q is already drained", node)
		}
		active := 0
		for _, mem := range m.Members() {
			if !slices.Contains(s.Drained, mem.ID) {
				active++
			}
		}
		if active <= 1 {
			return precondition("node_id", "%q is the last active node: nothing could take its shards", node)
		}
		s.Drained = append(s.Drained, node)
		maps.DeleteFunc(s.Pins, func(_ shardmap.Cell, id string) bool { return id == node }) // they would keep shards on it
		return nil
	}
}

// Undrain gives a drained node shards again.
func Undrain(node string) Change {
	return func(s *Settings, m *shardmap.Map) error {
		if node == "" {
			return invalid("node_id", "empty: a ring member's id is required")
		}
		if !slices.Contains(s.Drained, node) {
			if err := checkMember(m, node); err != nil {
				return err
			}
			return precondition("node_id", "%q is not drained", node)
		}
		s.Drained = slices.DeleteFunc(s.Drained, func(id string) bool { return id == node })
		return nil
	}
}

// Split replaces shard cell by its 7 children, placed independently. The
// shard's pin, if any, goes: splitting is for spreading a hot spot.
func Split(cell shardmap.Cell) Change {
	return func(s *Settings, m *shardmap.Map) error {
		if err := checkShard(m, cell); err != nil {
			return err
		}
		l := m.Layout()
		if r := shardmap.Resolution(cell); r >= l.FineRes() {
			return precondition("cell", "shard %s is at resolution %d, the finest the ring allows (shard resolution %d, max split depth %d)",
				cell, r, l.Res(), l.MaxSplitDepth())
		}
		s.Splits = append(s.Splits, cell)
		delete(s.Pins, cell)
		return nil
	}
}

// Merge undoes the split of cell and of every split cell below it: cell is
// one shard again. Pins of the merged shards go.
func Merge(cell shardmap.Cell) Change {
	return func(s *Settings, m *shardmap.Map) error {
		if err := checkCell(cell); err != nil {
			return err
		}
		r := shardmap.Resolution(cell)
		if !slices.Contains(s.Splits, cell) {
			l := m.Layout()
			if !l.IsShard(cell) {
				return invalid("cell", "%s is neither a split cell nor a shard of the ring at epoch %d: see GetRing's splits or `geomatch admin ring`", cell, m.Epoch())
			}
			if r > l.Res() {
				return precondition("cell", "shard %s was never split; to merge it with its siblings, merge its parent %s", cell, shardmap.Parent(cell, r-1))
			}
			return precondition("cell", "shard %s was never split", cell)
		}
		below := func(c shardmap.Cell) bool { return shardmap.Resolution(c) > r && shardmap.Parent(c, r) == cell }
		s.Splits = slices.DeleteFunc(s.Splits, func(c shardmap.Cell) bool { return c == cell || below(c) })
		maps.DeleteFunc(s.Pins, func(c shardmap.Cell, _ string) bool { return below(c) }) // no longer shards
		return nil
	}
}

// ApplyPins pins every planned move's shard to its new node (a rebalance
// plan made at m, or just before). A move whose shard is no longer a shard,
// or whose node is gone or drained, refuses the whole change: plan again.
func ApplyPins(moves []shardmap.Move) Change {
	return func(s *Settings, m *shardmap.Map) error {
		for i, mv := range moves {
			if !m.Layout().IsShard(mv.Cell) {
				return precondition("moves", "move %d: %s is no longer a shard of the ring (epoch %d): plan again", i, mv.Cell, m.Epoch())
			}
			if _, ok := m.Member(mv.To); !ok {
				return precondition("moves", "move %d: %q is no longer a ring member (epoch %d): plan again", i, mv.To, m.Epoch())
			}
			if slices.Contains(s.Drained, mv.To) {
				return precondition("moves", "move %d: %q is drained: plan again", i, mv.To)
			}
			if s.Pins == nil {
				s.Pins = map[shardmap.Cell]string{}
			}
			s.Pins[mv.Cell] = mv.To
		}
		return nil
	}
}

// ParseCell parses a cell argument: an H3 cell index in hex. A malformed
// one is a *ChangeError of field "cell".
func ParseCell(s string) (shardmap.Cell, error) {
	if s == "" {
		return 0, invalid("cell", "empty: an H3 cell index in hex is required (e.g. 872a1072bffffff)")
	}
	if len(s) > 18 { // "0x" and 16 hex digits
		return 0, invalid("cell", "%d bytes: not an H3 cell index (hex, e.g. 872a1072bffffff)", len(s))
	}
	var c shardmap.Cell
	if c.UnmarshalText([]byte(s)) != nil || !c.IsValid() {
		return 0, invalid("cell", "%q is not an H3 cell index (hex, e.g. 872a1072bffffff)", s)
	}
	return c, nil
}

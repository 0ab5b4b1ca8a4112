package autosplit

import (
	"encoding/json"
	"fmt"
	"maps"
	"slices"

	"github.com/geomatch/geomatch/shardmap"
)

// Limits of a Record, so a corrupt one cannot make the controller hold
// millions of cells.
const (
	// MaxRecordSplits bounds Record.Splits.
	MaxRecordSplits = 10000
	// MaxRecordPins bounds Record.Pins (7 per split).
	MaxRecordPins = 7 * MaxRecordSplits
	// maxRecordBytes bounds the JSON ParseRecord reads.
	maxRecordBytes = 4 << 20
)

// Record tells the planner's own work from the operator's: the cells it
// split and the pins it placed their children with. It is kept beside the
// ring (Consul KV, or memory in `geomatch dev`), not in the ring document,
// so the document and the admin API stay as they are; a split or pin
// missing from the record is the operator's and is never undone. The
// controller writes the record after the ring change it describes, so a
// crash in between leaves a split the planner will treat as the
// operator's (never merged automatically), never the reverse.
type Record struct {
	// Splits are the cells split automatically.
	Splits []shardmap.Cell `json:"splits,omitempty"`
	// Pins are the child placements of those splits, cell to member id.
	Pins map[shardmap.Cell]string `json:"pins,omitempty"`
}

// Clone returns a deep copy of r.
func (r Record) Clone() Record {
	r.Splits = slices.Clone(r.Splits)
	r.Pins = maps.Clone(r.Pins)
	return r
}

// Reconcile returns r without what the ring d no longer has: splits that
// were merged (by anybody) and pins that were removed or changed (an
// operator who re-pins a child takes it over). Pure.
func (r Record) Reconcile(d shardmap.Doc) Record {
	out := Record{}
	for _, c := range r.Splits {
		if slices.Contains(d.Splits, c) && !slices.Contains(out.Splits, c) {
			out.Splits = append(out.Splits, c)
		}
	}
	slices.Sort(out.Splits)
	for c, id := range r.Pins {
		if d.Pins[c] == id {
			if out.Pins == nil {
				out.Pins = map[shardmap.Cell]string{}
			}
			out.Pins[c] = id
		}
	}
	return out
}

// Equal reports whether r and o hold the same splits and pins.
func (r Record) Equal(o Record) bool {
	a, b := slices.Clone(r.Splits), slices.Clone(o.Splits)
	slices.Sort(a)
	slices.Sort(b)
	return slices.Equal(a, b) && maps.Equal(r.Pins, o.Pins)
}

// isSplit reports whether c is one of r's splits.
func (r Record) isSplit(c shardmap.Cell) bool { return slices.Contains(r.Splits, c) }

// isOwnPin reports whether the pin of c to id in the ring is r's.
func (r Record) isOwnPin(c shardmap.Cell, id string) bool {
	own, ok := r.Pins[c]
	return ok && own == id
}

// apply returns r after decision d was applied to the ring.
func (r Record) apply(d Decision) Record {
	r = r.Clone()
	switch d.Action {
	case Split:
		if !r.isSplit(d.Cell) {
			r.Splits = append(r.Splits, d.Cell)
			slices.Sort(r.Splits)
		}
		delete(r.Pins, d.Cell)
		for c, id := range d.Pins {
			if r.Pins == nil {
				r.Pins = map[shardmap.Cell]string{}
			}
			r.Pins[c] = id
		}
	case Merge:
		res := shardmap.Resolution(d.Cell)
		below := func(c shardmap.Cell) bool {
			return shardmap.Resolution(c) > res && shardmap.Parent(c, res) == d.Cell
		}
		r.Splits = slices.DeleteFunc(r.Splits, func(c shardmap.Cell) bool { return c == d.Cell || below(c) })
		maps.DeleteFunc(r.Pins, func(c shardmap.Cell, _ string) bool { return below(c) })
	}
	return r
}

// Applied returns r once decision d has been applied to the ring: a split
// adds its cell and its children's pins, a merge removes the cell and
// everything below it.
func (r Record) Applied(d Decision) Record { return r.apply(d) }

// ParseRecord decodes and checks a record as Marshal writes it: every cell
// a valid H3 cell, every member id non-empty and at most
// shardmap.MaxMemberIDLen bytes, within MaxRecordSplits and MaxRecordPins.
// Empty input is the empty record.
func ParseRecord(data []byte) (Record, error) {
	var r Record
	if len(data) == 0 {
		return r, nil
	}
	if len(data) > maxRecordBytes {
		return Record{}, fmt.Errorf("autosplit record: %d bytes, at most %d", len(data), maxRecordBytes)
	}
	if err := json.Unmarshal(data, &r); err != nil {
		return Record{}, fmt.Errorf("autosplit record: %w", err)
	}
	if len(r.Splits) > MaxRecordSplits {
		return Record{}, fmt.Errorf("autosplit record: splits: %d cells, at most %d", len(r.Splits), MaxRecordSplits)
	}
	if len(r.Pins) > MaxRecordPins {
		return Record{}, fmt.Errorf("autosplit record: pins: %d cells, at most %d", len(r.Pins), MaxRecordPins)
	}
	for _, c := range r.Splits {
		if !c.IsValid() {
			return Record{}, fmt.Errorf("autosplit record: splits: %s is not an H3 cell", c)
		}
	}
	for _, c := range slices.Sorted(maps.Keys(r.Pins)) {
		id := r.Pins[c]
		switch {
		case !c.IsValid():
			return Record{}, fmt.Errorf("autosplit record: pins: %s is not an H3 cell", c)
		case id == "" || len(id) > shardmap.MaxMemberIDLen:
			return Record{}, fmt.Errorf("autosplit record: pins: %s: member id of %d bytes, want 1..%d", c, len(id), shardmap.MaxMemberIDLen)
		}
	}
	slices.Sort(r.Splits)
	r.Splits = slices.Compact(r.Splits)
	return r, nil
}

// Marshal encodes r as JSON, splits sorted.
func (r Record) Marshal() ([]byte, error) {
	r = r.Clone()
	slices.Sort(r.Splits)
	return json.Marshal(r)
}

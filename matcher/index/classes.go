package index

import (
	"maps"
	"slices"
	"strings"
)

// MaxVehicleClasses bounds the distinct vehicle classes one index interns
// (the empty class included). Real fleets have a handful; the bound keeps a
// misbehaving client from growing the table without limit.
const MaxVehicleClasses = 1024

// classTable interns vehicle classes so each driver stores a 2-byte index
// instead of a 16-byte string header. It is copy-on-write: the writer
// publishes a new table for each new class (rare), readers load the current
// one atomically and never lock.
type classTable struct {
	names []string          // index → class; names[0] == ""
	ids   map[string]uint16 // class → index
}

func newClassTable() *classTable {
	return &classTable{names: []string{""}, ids: map[string]uint16{"": 0}}
}

// className returns the class of index id. A reader that read id from a driver
// under a shard lock may hold an older table than the one id came from; it
// reloads then (the shard lock orders the publication before the read).
func (ix *Index) className(t **classTable, id uint16) string {
	if int(id) >= len((*t).names) {
		*t = ix.classes.Load()
	}
	return (*t).names[id]
}

// internClass returns the index of class, adding it if new. It reports false
// when the table is full. Writer only.
func (ix *Index) internClass(class string) (uint16, bool) {
	t := ix.classes.Load()
	if id, ok := t.ids[class]; ok {
		return id, true
	}
	if len(t.names) >= MaxVehicleClasses {
		return 0, false
	}
	id := uint16(len(t.names))
	nt := &classTable{
		names: append(slices.Clip(t.names), strings.Clone(class)),
		ids:   maps.Clone(t.ids),
	}
	nt.ids[nt.names[id]] = id
	ix.classes.Store(nt)
	return id, true
}

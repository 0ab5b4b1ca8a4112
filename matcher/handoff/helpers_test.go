package handoff_test

import (
	"maps"
	"slices"
	"testing"
	"time"

	"github.com/uber/h3-go/v4"

	"github.com/geomatch/geomatch/internal/geo"
	"github.com/geomatch/geomatch/matcher/index"
	"github.com/geomatch/geomatch/shardmap"
)

// The tests' geography: shards at resolution 7 around Times Square, split
// at most once (fine cells, and the children of a split shard, at 8).
const (
	shardRes = 7
	fineRes  = 8
)

var (
	// area are the shards the tests place drivers in: a disk of 19 cells.
	area = h3.LatLngToCell(h3.LatLng{Lat: 40.7580, Lng: -73.9855}, shardRes).GridDisk(2)
	// cA..cD are four shards of area the table tests pin.
	cA, cB, cC, cD = area[0], area[1], area[2], area[3]
	// t0 is the tests' clock origin.
	t0 = time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)
)

// kids returns the children of shard c (the shards that replace it when it
// is split).
func kids(c h3.Cell) []h3.Cell { return c.Children(fineRes) }

// center returns the center of cell c: a position whose fine cell is c's
// center child (or c, at the fine resolution), so its shard is c (or the
// split child of c it falls in).
func center(c h3.Cell) geo.LatLng {
	ll := c.LatLng()
	return geo.LatLng{Lat: ll.Lat, Lng: ll.Lng}
}

// ring describes a ring document for the tests: members a, b and c unless
// listed, pins by cell, splits and drained members.
type ring struct {
	epoch   uint64
	members []string
	pins    map[h3.Cell]string
	splits  []h3.Cell
	drained []string
}

// build returns the ring's map or fails the test.
func (r ring) build(t testing.TB) *shardmap.Map {
	t.Helper()
	ids := r.members
	if ids == nil {
		ids = []string{"a", "b", "c"}
	}
	d := shardmap.Doc{Epoch: r.epoch, ShardRes: shardRes, MaxSplitDepth: fineRes - shardRes, VNodes: 8,
		Splits: r.splits, Pins: r.pins, Drained: r.drained}
	for _, id := range ids {
		d.Members = append(d.Members, shardmap.Member{ID: id, Addr: id + ":7000"})
	}
	m, err := shardmap.NewMap(d)
	if err != nil {
		t.Fatalf("ring %+v: %v", r, err)
	}
	return m
}

// pin returns a pin map: pairs of cell and member id.
func pin(pairs ...any) map[h3.Cell]string {
	m := map[h3.Cell]string{}
	for i := 0; i < len(pairs); i += 2 {
		m[pairs[i].(h3.Cell)] = pairs[i+1].(string)
	}
	return m
}

// pinKids pins every child of c that m does not pin yet to id, and
// returns m.
func pinKids(m map[h3.Cell]string, c h3.Cell, id string) map[h3.Cell]string {
	for _, k := range kids(c) {
		if _, ok := m[k]; !ok {
			m[k] = id
		}
	}
	return m
}

// drv returns driver id at the center of cell c with timestamp ts,
// indexed under shard (c when 0).
func drv(id string, c h3.Cell, ts int64) index.Driver {
	return index.Driver{ID: id, Pos: center(c), TimestampMs: ts, Shard: c, VehicleClass: "car", Status: index.StatusAvailable}
}

// ids returns the ids of updates, in order.
func ids(ups []index.Update) []string {
	out := make([]string, len(ups))
	for i, u := range ups {
		out[i] = u.ID
	}
	return out
}

// driverIDs returns the ids of drivers, in order.
func driverIDs(ds []index.Driver) []string {
	out := make([]string, len(ds))
	for i, d := range ds {
		out[i] = d.ID
	}
	return out
}

// sortedCells returns the keys of a cell set, sorted.
func sortedCells(m map[h3.Cell]bool) []h3.Cell { return slices.Sorted(maps.Keys(m)) }

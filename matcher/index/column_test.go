package index

import (
	"testing"
	"time"

	"github.com/geomatch/geomatch/internal/geo"
)

// TestNewSlotIsInNoShard: a slot the writer has just allocated, and already
// put in the directory, is in no shard until it is inserted. Shard number 0
// is a real shard, so a fresh page's zero value would send Get to read
// shard 0's points for a driver that is not there (the race detector
// caught this in TestConcurrentApplyNearbyExpire).
func TestNewSlotIsInNoShard(t *testing.T) {
	tab := slotTable{free: -1}
	for s := range int32(2*pageSize + 3) {
		got := tab.alloc(1 << 20)
		if got != s {
			t.Fatalf("alloc = %d, want %d", got, s)
		}
		if sh := tab.hot.at(got).shard; sh != -1 {
			t.Fatalf("slot %d: shard %d after alloc, want -1", got, sh)
		}
		tab.hot.at(got).shard = 0 // as an insert would
	}
	tab.release(5)
	tab.hot.at(5).shard = -1 // as a removal does before release
	if got := tab.alloc(1 << 20); got != 5 || tab.hot.at(got).shard != -1 {
		t.Fatalf("reused slot %d in shard %d, want 5 in -1", got, tab.hot.at(got).shard)
	}
}

// TestGetDuringFirstInsert: Get of a driver whose first update is being
// applied returns either nothing or the driver as inserted, never a point
// of another driver of shard 0.
func TestGetDuringFirstInsert(t *testing.T) {
	ix, _ := newTestIndex(t, time.Minute, 10)
	p := geo.LatLng{Lat: 40.7, Lng: -74.0}
	first := Update{ID: "a", Pos: p, TimestampMs: 1, Shard: cellOf(p, 7)}
	ix.Apply([]Update{first}, make([]Result, 1))
	// Slot 1 is fresh: its page was grown with slot 0. Allocate it the way
	// Apply does up to the directory and check what Get sees before insert.
	ix.mu.Lock()
	s := ix.slots.alloc(ix.cfg.MaxDrivers)
	ix.slots.hot.at(s).idOff = ix.ids.add("b")
	ix.dirMu.Lock()
	ix.dir.put(s)
	ix.dirMu.Unlock()
	ix.mu.Unlock()
	if d, ok := ix.Get("b"); ok {
		t.Fatalf("Get(b) before its insert = %+v, want not found", d)
	}
}

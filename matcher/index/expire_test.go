package index

import (
	"strconv"
	"testing"
	"time"

	"github.com/geomatch/geomatch/internal/geo"
)

// TestExpireRemovesExactlySilentDrivers: a driver expires when its last
// update was received more than TTL ago, whatever its client timestamp; the
// others stay.
func TestExpireRemovesExactlySilentDrivers(t *testing.T) {
	ix, clk := newTestIndex(t, 30*time.Second, 0)
	shard := cellOf(timesSquare, 7)
	put := func(id string, ts int64) {
		t.Helper()
		if r := apply1(ix, Update{ID: id, Pos: timesSquare, TimestampMs: ts, Shard: shard}); r.Outcome != OutcomeApplied {
			t.Fatalf("%s: %v", id, r.Outcome)
		}
	}
	put("silent", 1)
	put("talker", 1)
	clk.Advance(10 * time.Second)
	put("late", 1)
	clk.Advance(15 * time.Second)
	put("talker", 2) // received at 25s
	clk.Advance(5 * time.Second)
	// now 30s: "silent" was received exactly TTL ago: not more.
	if n := ix.Expire(); n != 0 {
		t.Fatalf("Expire at exactly TTL = %d, want 0", n)
	}
	clk.Advance(time.Millisecond)
	if n := ix.Expire(); n != 1 {
		t.Fatalf("Expire = %d, want 1", n)
	}
	for id, want := range map[string]bool{"silent": false, "talker": true, "late": true} {
		if _, ok := ix.Get(id); ok != want {
			t.Errorf("%s live = %v, want %v", id, ok, want)
		}
	}
	// A duplicate is ignored and does not keep a driver alive.
	if r := apply1(ix, Update{ID: "late", Pos: timesSquare, TimestampMs: 1, Shard: shard}); r.Outcome != OutcomeDuplicate {
		t.Fatalf("duplicate: %v", r.Outcome)
	}
	clk.Advance(10 * time.Second) // 40s: "late" (10s) is silent for 30s+
	if n := ix.Expire(); n != 1 {
		t.Fatalf("second Expire = %d, want 1", n)
	}
	if _, ok := ix.Get("late"); ok {
		t.Error("late survived")
	}
	if ix.Len() != 1 || ix.Tombstones() != 2 {
		t.Fatalf("Len=%d Tombstones=%d, want 1 and 2", ix.Len(), ix.Tombstones())
	}
	// Tombstones go TTL after they were made.
	clk.Advance(25 * time.Second) // 65s: silent's tombstone (30s) is 35s old, late's (40s) 25s.
	ix.Expire()                   // also expires talker (25s)
	if ix.Tombstones() != 2 || ix.Len() != 0 {
		t.Fatalf("Tombstones=%d Len=%d, want 2 and 0", ix.Tombstones(), ix.Len())
	}
	if r := apply1(ix, Update{ID: "silent", Pos: timesSquare, TimestampMs: 1, Shard: shard}); r.Outcome != OutcomeApplied || !r.Claimed {
		t.Fatalf("silent after its tombstone expired: %+v, want applied as new", r)
	}
	if r := apply1(ix, Update{ID: "late", Pos: timesSquare, TimestampMs: 1, Shard: shard}); r.Outcome != OutcomeDuplicate {
		t.Fatalf("late while tombstoned: %v, want duplicate", r.Outcome)
	}
}

// TestExpireWorkIsProportionalToExpired counts the list elements Expire
// looks at: with nothing to expire it looks at the front of each list only.
func TestExpireWorkIsProportionalToExpired(t *testing.T) {
	ix, clk := newTestIndex(t, 30*time.Second, 0)
	const n = 10_000
	updates := make([]Update, n)
	for i := range updates {
		p := geo.LatLng{Lat: 40.6 + float64(i%100)*0.003, Lng: -74 + float64(i/100)*0.003}
		updates[i] = Update{ID: "d" + strconv.Itoa(i), Pos: p, TimestampMs: 1, Shard: cellOf(p, 7)}
	}
	ix.Apply(updates[:n/2], make([]Result, n))
	clk.Advance(20 * time.Second)
	ix.Apply(updates[n/2:], make([]Result, n))
	ix.Remove("d0") // one tombstone

	steps := func() int {
		ix.mu.Lock()
		defer ix.mu.Unlock()
		s := ix.expireSteps
		ix.expireSteps = 0
		return s
	}
	steps()
	if got := ix.Expire(); got != 0 {
		t.Fatalf("Expire = %d, want 0", got)
	}
	if s := steps(); s != 2 {
		t.Fatalf("Expire with nothing expired looked at %d elements, want 2 (one per list)", s)
	}
	clk.Advance(15 * time.Second) // the first half is 35s old
	if got := ix.Expire(); got != n/2-1 {
		t.Fatalf("Expire = %d, want %d", got, n/2-1)
	}
	// Each expired driver is looked at once, each tombstone check once, plus
	// the fronts that stop each step.
	if s := steps(); s > 2*(n/2)+2*(n/2/expireBatch+1) {
		t.Fatalf("Expire of %d drivers looked at %d elements", n/2-1, s)
	}
	if ix.Len() != n/2 {
		t.Fatalf("Len = %d, want %d", ix.Len(), n/2)
	}
}

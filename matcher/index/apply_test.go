package index

import (
	"math"
	"strconv"
	"testing"
	"time"

	"github.com/uber/h3-go/v4"

	"github.com/geomatch/geomatch/internal/geo"
)

var (
	timesSquare = geo.LatLng{Lat: 40.758, Lng: -73.9855}
	brooklyn    = geo.LatLng{Lat: 40.6782, Lng: -73.9442}
)

func TestNewValidatesConfig(t *testing.T) {
	if _, err := New(Config{TTL: -time.Second}); err == nil {
		t.Error("New with a negative TTL: want an error")
	}
	if _, err := New(Config{MaxDrivers: -1}); err == nil {
		t.Error("New with a negative MaxDrivers: want an error")
	}
	ix, err := New(Config{})
	if err != nil {
		t.Fatalf("New(Config{}): %v", err)
	}
	if c := ix.Config(); c.TTL != DefaultTTL || c.MaxDrivers != DefaultMaxDrivers || c.Now == nil {
		t.Errorf("zero config did not take the defaults: %+v", c)
	}
}

// TestUpdatesAreOrderedByTimestamp: older updates are ignored as stale, equal
// ones are duplicates, newer ones are applied.
func TestUpdatesAreOrderedByTimestamp(t *testing.T) {
	shard := cellOf(timesSquare, 7)
	moved := geo.LatLng{Lat: timesSquare.Lat + 0.001, Lng: timesSquare.Lng}
	tests := []struct {
		name    string
		ts      int64
		pos     geo.LatLng
		want    Outcome
		wantPos geo.LatLng
		wantTS  int64
	}{
		{"older is stale", 999, moved, OutcomeStale, timesSquare, 1000},
		{"equal is a duplicate", 1000, moved, OutcomeDuplicate, timesSquare, 1000},
		{"newer is applied", 1001, moved, OutcomeApplied, moved, 1001},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ix, _ := newTestIndex(t, 0, 0)
			if r := apply1(ix, Update{ID: "d1", Pos: timesSquare, TimestampMs: 1000, Shard: shard}); r != (Result{Outcome: OutcomeApplied, Claimed: true}) {
				t.Fatalf("first update: %+v", r)
			}
			r := apply1(ix, Update{ID: "d1", Pos: tt.pos, TimestampMs: tt.ts, Shard: shard})
			if r.Outcome != tt.want || r.Claimed || r.MovedFrom != 0 {
				t.Fatalf("second update: %+v, want outcome %v", r, tt.want)
			}
			d, ok := ix.Get("d1")
			if !ok || d.Pos != tt.wantPos || d.TimestampMs != tt.wantTS {
				t.Fatalf("Get = %+v, %v; want pos %v ts %d", d, ok, tt.wantPos, tt.wantTS)
			}
			got := ix.Nearby(tt.wantPos, 0, 1, []h3.Cell{shard}, Filter{}, nil)
			if len(got) != 1 || got[0].Driver.ID != "d1" {
				t.Fatalf("Nearby at the stored position = %+v", got)
			}
		})
	}
}

func TestBatchIsAppliedInOrder(t *testing.T) {
	ix, _ := newTestIndex(t, 0, 0)
	shard := cellOf(timesSquare, 7)
	batch := []Update{
		{ID: "a", Pos: timesSquare, TimestampMs: 10, Shard: shard},
		{ID: "a", Pos: timesSquare, TimestampMs: 10, Shard: shard},
		{ID: "a", Pos: timesSquare, TimestampMs: 9, Shard: shard},
		{ID: "a", Pos: timesSquare, TimestampMs: 11, Shard: shard},
		{ID: "b", Pos: timesSquare, TimestampMs: 1, Shard: shard},
	}
	res := make([]Result, len(batch)+3) // longer is fine
	ix.Apply(batch, res)
	want := []Outcome{OutcomeApplied, OutcomeDuplicate, OutcomeStale, OutcomeApplied, OutcomeApplied}
	for i, w := range want {
		if res[i].Outcome != w {
			t.Errorf("update %d: %v, want %v", i, res[i].Outcome, w)
		}
	}
	if !res[0].Claimed || res[3].Claimed || !res[4].Claimed {
		t.Errorf("claimed flags: %+v", res[:5])
	}
	if ix.Len() != 2 {
		t.Errorf("Len = %d, want 2", ix.Len())
	}
}

// TestHandedOverCopyIsClaimedByTheDriversUpdate: a position applied from a
// handoff is held unconfirmed; the driver's own next update reports Claimed
// (so the caller evicts copies elsewhere), in the same shard or another,
// and confirms it; a further handed-over update does not.
func TestHandedOverCopyIsClaimedByTheDriversUpdate(t *testing.T) {
	shard, other := cellOf(timesSquare, 7), cellOf(brooklyn, 7)
	tests := []struct {
		name        string
		first, next Update
		want        Result
		wantHanded  bool
	}{
		{"own update confirms in the same shard",
			Update{ID: "d", Pos: timesSquare, TimestampMs: 10, Shard: shard, HandedOver: true},
			Update{ID: "d", Pos: timesSquare, TimestampMs: 11, Shard: shard},
			Result{Outcome: OutcomeApplied, Claimed: true}, false},
		{"own update confirms in another shard",
			Update{ID: "d", Pos: timesSquare, TimestampMs: 10, Shard: shard, HandedOver: true},
			Update{ID: "d", Pos: brooklyn, TimestampMs: 11, Shard: other},
			Result{Outcome: OutcomeApplied, Claimed: true, MovedFrom: shard}, false},
		{"handed over again stays unconfirmed",
			Update{ID: "d", Pos: timesSquare, TimestampMs: 10, Shard: shard, HandedOver: true},
			Update{ID: "d", Pos: brooklyn, TimestampMs: 11, Shard: other, HandedOver: true},
			Result{Outcome: OutcomeApplied, MovedFrom: shard}, true},
		{"a confirmed driver is not claimed again",
			Update{ID: "d", Pos: timesSquare, TimestampMs: 10, Shard: shard},
			Update{ID: "d", Pos: timesSquare, TimestampMs: 11, Shard: shard},
			Result{Outcome: OutcomeApplied}, false},
		{"a handed-over copy over a confirmed one",
			Update{ID: "d", Pos: timesSquare, TimestampMs: 10, Shard: shard},
			Update{ID: "d", Pos: timesSquare, TimestampMs: 11, Shard: shard, HandedOver: true},
			Result{Outcome: OutcomeApplied}, true},
		{"own update of the copy's own timestamp confirms it (its node died before answering)",
			Update{ID: "d", Pos: timesSquare, TimestampMs: 10, Shard: shard, HandedOver: true},
			Update{ID: "d", Pos: timesSquare, TimestampMs: 10, Shard: shard},
			Result{Outcome: OutcomeApplied, Claimed: true}, false},
		{"an equal timestamp of a confirmed driver is a duplicate",
			Update{ID: "d", Pos: timesSquare, TimestampMs: 10, Shard: shard},
			Update{ID: "d", Pos: timesSquare, TimestampMs: 10, Shard: shard},
			Result{Outcome: OutcomeDuplicate}, false},
		{"a stale own update confirms nothing",
			Update{ID: "d", Pos: timesSquare, TimestampMs: 10, Shard: shard, HandedOver: true},
			Update{ID: "d", Pos: timesSquare, TimestampMs: 9, Shard: shard},
			Result{Outcome: OutcomeStale}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ix, _ := newTestIndex(t, 0, 0)
			if r := apply1(ix, tt.first); r != (Result{Outcome: OutcomeApplied, Claimed: true}) {
				t.Fatalf("first update: %+v", r)
			}
			if d, _ := ix.Get("d"); d.HandedOver != tt.first.HandedOver {
				t.Fatalf("after the first update HandedOver = %v", d.HandedOver)
			}
			r := apply1(ix, tt.next)
			wantPrev := Prev{}
			if r.Outcome == OutcomeApplied {
				wantPrev = Prev{Live: true, Pos: tt.first.Pos, TimestampMs: tt.first.TimestampMs, Status: StatusAvailable, HandedOver: tt.first.HandedOver}
			}
			if r.Prev != wantPrev {
				t.Errorf("second update: Prev = %+v, want the first update's state", r.Prev)
			}
			r.Prev = Prev{}
			if r != tt.want {
				t.Fatalf("second update: %+v, want %+v", r, tt.want)
			}
			if d, _ := ix.Get("d"); d.HandedOver != tt.wantHanded {
				t.Errorf("HandedOver = %v, want %v", d.HandedOver, tt.wantHanded)
			}
		})
	}
}

func TestApplyPanicsOnShortResults(t *testing.T) {
	ix, _ := newTestIndex(t, 0, 0)
	defer func() {
		if recover() == nil {
			t.Fatal("want a panic")
		}
	}()
	ix.Apply(make([]Update, 2), make([]Result, 1))
}

// TestUnspecifiedKeepsStatusAndClass: Unspecified status and an empty class
// keep the current values; a new driver starts available with no class.
func TestUnspecifiedKeepsStatusAndClass(t *testing.T) {
	ix, _ := newTestIndex(t, 0, 0)
	shard := cellOf(timesSquare, 7)
	steps := []struct {
		u          Update
		wantStatus Status
		wantClass  string
	}{
		{Update{ID: "d", TimestampMs: 1}, StatusAvailable, ""},
		{Update{ID: "d", TimestampMs: 2, VehicleClass: "xl"}, StatusAvailable, "xl"},
		{Update{ID: "d", TimestampMs: 3, Status: StatusReserved}, StatusReserved, "xl"},
		{Update{ID: "d", TimestampMs: 4}, StatusReserved, "xl"},
		{Update{ID: "d", TimestampMs: 5, Status: StatusOffline, VehicleClass: "black"}, StatusOffline, "black"},
		{Update{ID: "d", TimestampMs: 6, Status: StatusOnTrip}, StatusOnTrip, "black"},
	}
	for i, st := range steps {
		st.u.Pos, st.u.Shard = timesSquare, shard
		if r := apply1(ix, st.u); r.Outcome != OutcomeApplied {
			t.Fatalf("step %d: %v", i, r.Outcome)
		}
		d, _ := ix.Get("d")
		if d.Status != st.wantStatus || d.VehicleClass != st.wantClass {
			t.Fatalf("step %d: status %v class %q, want %v %q", i, d.Status, d.VehicleClass, st.wantStatus, st.wantClass)
		}
	}
}

// TestTombstonesKeepLateUpdatesStale: after Evict, Remove or Expire a late
// older update stays ignored; a newer one is applied and claims the driver.
func TestTombstonesKeepLateUpdatesStale(t *testing.T) {
	shard := cellOf(timesSquare, 7)
	tests := []struct {
		name      string
		remove    func(ix *Index, clk *fakeClock) bool
		staleTS   int64 // a late update that must stay ignored
		staleWant Outcome
		freshTS   int64 // the first timestamp applied again
	}{
		{"remove", func(ix *Index, _ *fakeClock) bool { return ix.Remove("d") }, 99, OutcomeStale, 101},
		{"remove then equal timestamp", func(ix *Index, _ *fakeClock) bool { return ix.Remove("d") }, 100, OutcomeDuplicate, 101},
		{"evict", func(ix *Index, _ *fakeClock) bool { return ix.Evict("d", 200) }, 150, OutcomeStale, 200},
		{"evict raises the tombstone", func(ix *Index, _ *fakeClock) bool { return ix.Evict("d", 200) }, 198, OutcomeStale, 200},
		{"expire", func(ix *Index, clk *fakeClock) bool {
			clk.Advance(31 * time.Second)
			return ix.Expire() == 1
		}, 99, OutcomeStale, 101},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ix, clk := newTestIndex(t, 30*time.Second, 0)
			apply1(ix, Update{ID: "d", Pos: timesSquare, TimestampMs: 100, Status: StatusOnTrip, VehicleClass: "xl", Shard: shard})
			if !tt.remove(ix, clk) {
				t.Fatal("removal reported nothing removed")
			}
			if _, ok := ix.Get("d"); ok || ix.Len() != 0 || ix.Tombstones() != 1 {
				t.Fatalf("after removal: found=%v Len=%d Tombstones=%d", ok, ix.Len(), ix.Tombstones())
			}
			if got := ix.Nearby(timesSquare, 1000, 10, []h3.Cell{shard}, Filter{}, nil); len(got) != 0 {
				t.Fatalf("removed driver still found: %+v", got)
			}
			if r := apply1(ix, Update{ID: "d", Pos: timesSquare, TimestampMs: tt.staleTS, Shard: shard}); r.Outcome != tt.staleWant {
				t.Fatalf("late update at %d: %v, want %v", tt.staleTS, r.Outcome, tt.staleWant)
			}
			if r := apply1(ix, Update{ID: "d", Pos: brooklyn, TimestampMs: tt.freshTS, Shard: cellOf(brooklyn, 7)}); r != (Result{Outcome: OutcomeApplied, Claimed: true}) {
				t.Fatalf("newer update at %d: %+v, want applied and claimed", tt.freshTS, r)
			}
			d, ok := ix.Get("d")
			want := Driver{ID: "d", Pos: brooklyn, TimestampMs: tt.freshTS, Status: StatusAvailable, Shard: cellOf(brooklyn, 7)}
			if !ok || d != want {
				t.Fatalf("revived driver = %+v, want %+v (a returning driver starts afresh)", d, want)
			}
			if ix.Tombstones() != 0 || ix.Len() != 1 {
				t.Fatalf("Tombstones=%d Len=%d after revival", ix.Tombstones(), ix.Len())
			}
		})
	}
}

func TestEvictKeepsNewerDrivers(t *testing.T) {
	ix, _ := newTestIndex(t, 0, 0)
	shard := cellOf(timesSquare, 7)
	apply1(ix, Update{ID: "d", Pos: timesSquare, TimestampMs: 100, Shard: shard})
	for _, older := range []int64{50, 100} {
		if ix.Evict("d", older) {
			t.Errorf("Evict(d, %d) removed a driver at 100", older)
		}
	}
	if ix.Evict("unknown", 1e12) || ix.Remove("unknown") {
		t.Error("removing an unknown driver reported success")
	}
	if ix.Tombstones() != 0 {
		t.Errorf("an unknown id left a tombstone")
	}
	if _, ok := ix.Get("d"); !ok {
		t.Error("driver gone")
	}
	if !ix.Remove("d") || ix.Remove("d") {
		t.Error("Remove twice: want true then false")
	}
}

// TestMoveBetweenShards: a driver whose shard changes is found only in the
// new shard, and the result names the old one.
func TestMoveBetweenShards(t *testing.T) {
	ix, _ := newTestIndex(t, 0, 0)
	from, to := cellOf(timesSquare, 7), cellOf(brooklyn, 7)
	apply1(ix, Update{ID: "d", Pos: timesSquare, TimestampMs: 1, Shard: from})
	apply1(ix, Update{ID: "other", Pos: timesSquare, TimestampMs: 1, Shard: from})
	r := apply1(ix, Update{ID: "d", Pos: brooklyn, TimestampMs: 2, Shard: to})
	if r.Prev != (Prev{Live: true, Pos: timesSquare, TimestampMs: 1, Status: StatusAvailable}) {
		t.Errorf("move: Prev = %+v, want the position in Times Square", r.Prev)
	}
	r.Prev = Prev{}
	if r != (Result{Outcome: OutcomeApplied, MovedFrom: from}) {
		t.Fatalf("move: %+v, want applied, MovedFrom %v", r, from)
	}
	if got := ix.Nearby(timesSquare, 50_000, 10, []h3.Cell{from}, Filter{}, nil); len(got) != 1 || got[0].Driver.ID != "other" {
		t.Fatalf("old shard answers %+v, want only other", got)
	}
	got := ix.Nearby(timesSquare, 50_000, 10, []h3.Cell{to}, Filter{}, nil)
	if len(got) != 1 || got[0].Driver.ID != "d" || got[0].Driver.Shard != to || got[0].Driver.Pos != brooklyn {
		t.Fatalf("new shard answers %+v", got)
	}
	if d := ix.ShardDrivers(from); len(d) != 1 || d[0].ID != "other" {
		t.Fatalf("ShardDrivers(old) = %+v", d)
	}
	// Moving back and forth within one batch ends where the last update says.
	res := make([]Result, 2)
	ix.Apply([]Update{
		{ID: "d", Pos: timesSquare, TimestampMs: 3, Shard: from},
		{ID: "d", Pos: brooklyn, TimestampMs: 4, Shard: to},
	}, res)
	if res[0].MovedFrom != to || res[1].MovedFrom != from {
		t.Fatalf("round trip: %+v", res)
	}
	if st := ix.Shards(); len(st) != 2 || st[0].Drivers != 1 || st[1].Drivers != 1 {
		t.Fatalf("Shards = %+v", st)
	}
	// The last driver leaving a shard retires it.
	apply1(ix, Update{ID: "other", Pos: brooklyn, TimestampMs: 2, Shard: to})
	if st := ix.Shards(); len(st) != 1 || st[0] != (ShardStat{Shard: to, Drivers: 2}) {
		t.Fatalf("Shards = %+v", st)
	}
}

// TestMaxDrivers: live drivers and tombstones share the bound; a new driver
// recycles the oldest tombstone, and is refused only when all are live.
func TestMaxDrivers(t *testing.T) {
	ix, _ := newTestIndex(t, 0, 3)
	shard := cellOf(timesSquare, 7)
	for i := range 3 {
		if r := apply1(ix, Update{ID: "d" + strconv.Itoa(i), Pos: timesSquare, TimestampMs: 1, Shard: shard}); r.Outcome != OutcomeApplied {
			t.Fatalf("driver %d: %v", i, r.Outcome)
		}
	}
	if r := apply1(ix, Update{ID: "d3", Pos: timesSquare, TimestampMs: 1, Shard: shard}); r.Outcome != OutcomeFull {
		t.Fatalf("fourth driver: %v, want full", r.Outcome)
	}
	if r := apply1(ix, Update{ID: "d0", Pos: brooklyn, TimestampMs: 2, Shard: shard}); r.Outcome != OutcomeApplied {
		t.Fatalf("known driver at the bound: %v, want applied", r.Outcome)
	}
	ix.Remove("d1")
	if r := apply1(ix, Update{ID: "d1", Pos: timesSquare, TimestampMs: 2, Shard: shard}); r.Outcome != OutcomeApplied {
		t.Fatalf("revival at the bound: %v, want applied", r.Outcome)
	}
	ix.Remove("d2")
	if r := apply1(ix, Update{ID: "d3", Pos: timesSquare, TimestampMs: 1, Shard: shard}); r.Outcome != OutcomeApplied {
		t.Fatalf("new driver with a tombstone to recycle: %v, want applied", r.Outcome)
	}
	if ix.Len() != 3 || ix.Tombstones() != 0 {
		t.Fatalf("Len=%d Tombstones=%d", ix.Len(), ix.Tombstones())
	}
}

func TestVehicleClassBound(t *testing.T) {
	ix, _ := newTestIndex(t, 0, 0)
	shard := cellOf(timesSquare, 7)
	for i := 1; i < MaxVehicleClasses; i++ {
		if r := apply1(ix, Update{ID: "d", Pos: timesSquare, TimestampMs: int64(i), VehicleClass: "c" + strconv.Itoa(i), Shard: shard}); r.Outcome != OutcomeApplied {
			t.Fatalf("class %d: %v", i, r.Outcome)
		}
	}
	if r := apply1(ix, Update{ID: "d", Pos: timesSquare, TimestampMs: 1e6, VehicleClass: "one-too-many", Shard: shard}); r.Outcome != OutcomeFull {
		t.Fatalf("class beyond the bound: %v, want full", r.Outcome)
	}
	if r := apply1(ix, Update{ID: "d", Pos: timesSquare, TimestampMs: 1e6, VehicleClass: "c1", Shard: shard}); r.Outcome != OutcomeApplied {
		t.Fatalf("known class: %v", r.Outcome)
	}
}

func TestInvalidUpdatesChangeNothing(t *testing.T) {
	ix, _ := newTestIndex(t, 0, 0)
	shard := cellOf(timesSquare, 7)
	bad := []Update{
		{ID: "", Pos: timesSquare, TimestampMs: 1, Shard: shard},
		{ID: "d", Pos: geo.LatLng{Lat: math.NaN(), Lng: 0}, TimestampMs: 1, Shard: shard},
		{ID: "d", Pos: geo.LatLng{Lat: 0, Lng: math.Inf(1)}, TimestampMs: 1, Shard: shard},
		{ID: "d", Pos: geo.LatLng{Lat: 91, Lng: 0}, TimestampMs: 1, Shard: shard},
		{ID: "d", Pos: timesSquare, TimestampMs: 1, Status: StatusOffline + 1, Shard: shard},
		{ID: "d", Pos: timesSquare, TimestampMs: 1},
	}
	for i, u := range bad {
		if r := apply1(ix, u); r.Outcome != OutcomeInvalid {
			t.Errorf("update %d: %v, want invalid", i, r.Outcome)
		}
	}
	if ix.Len() != 0 || len(ix.Shards()) != 0 {
		t.Fatalf("invalid updates changed the index")
	}
}

func TestDropShard(t *testing.T) {
	ix, _ := newTestIndex(t, 0, 0)
	a, b := cellOf(timesSquare, 7), cellOf(brooklyn, 7)
	for i := range 5 {
		apply1(ix, Update{ID: "a" + strconv.Itoa(i), Pos: timesSquare, TimestampMs: 10, Shard: a})
	}
	apply1(ix, Update{ID: "b0", Pos: brooklyn, TimestampMs: 10, Shard: b})
	if n := ix.DropShard(a); n != 5 {
		t.Fatalf("DropShard = %d, want 5", n)
	}
	if n := ix.DropShard(a); n != 0 {
		t.Fatalf("second DropShard = %d, want 0", n)
	}
	if ix.Len() != 1 || ix.Tombstones() != 0 {
		t.Fatalf("Len=%d Tombstones=%d", ix.Len(), ix.Tombstones())
	}
	if _, ok := ix.Get("a0"); ok {
		t.Fatal("dropped driver still found")
	}
	if got := ix.Nearby(timesSquare, 1e5, 10, []h3.Cell{a, b}, Filter{}, nil); len(got) != 1 || got[0].Driver.ID != "b0" {
		t.Fatalf("Nearby = %+v", got)
	}
	// A handoff back at the same timestamps applies: no tombstones.
	if r := apply1(ix, Update{ID: "a0", Pos: timesSquare, TimestampMs: 10, Shard: a}); r != (Result{Outcome: OutcomeApplied, Claimed: true}) {
		t.Fatalf("handoff back: %+v", r)
	}
}

func TestShardsAndShardDrivers(t *testing.T) {
	ix, _ := newTestIndex(t, 0, 0)
	a, b := cellOf(timesSquare, 7), cellOf(brooklyn, 7)
	for i := range 3 {
		apply1(ix, Update{ID: "b" + strconv.Itoa(2-i), Pos: brooklyn, TimestampMs: 1, Status: StatusReserved, VehicleClass: "xl", Shard: b})
	}
	apply1(ix, Update{ID: "a", Pos: timesSquare, TimestampMs: 1, Shard: a})
	if st := ix.Shards(); len(st) != 2 || st[0] != (ShardStat{b, 3}) || st[1] != (ShardStat{a, 1}) {
		t.Fatalf("Shards = %+v", st)
	}
	got := ix.ShardDrivers(b)
	if len(got) != 3 {
		t.Fatalf("ShardDrivers = %+v", got)
	}
	for i, d := range got {
		want := Driver{ID: "b" + strconv.Itoa(i), Pos: brooklyn, TimestampMs: 1, Status: StatusReserved, VehicleClass: "xl", Shard: b}
		if d != want {
			t.Errorf("driver %d = %+v, want %+v", i, d, want)
		}
	}
	if ix.ShardDrivers(h3.Cell(12345)) != nil {
		t.Error("unknown shard: want nil")
	}
}

func TestStringers(t *testing.T) {
	for s, want := range map[Status]string{StatusUnspecified: "unspecified", StatusAvailable: "available", StatusReserved: "reserved", StatusOnTrip: "on_trip", StatusOffline: "offline", 9: "Status(9)"} {
		if s.String() != want {
			t.Errorf("%d.String() = %q, want %q", s, s.String(), want)
		}
	}
	for o, want := range map[Outcome]string{OutcomeApplied: "applied", OutcomeDuplicate: "duplicate", OutcomeStale: "stale", OutcomeFull: "full", OutcomeInvalid: "invalid", 0: "Outcome(0)"} {
		if o.String() != want {
			t.Errorf("%d.String() = %q, want %q", o, o.String(), want)
		}
	}
}

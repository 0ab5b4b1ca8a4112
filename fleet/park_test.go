package fleet

import (
	"context"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/geomatch/geomatch/driver"
	"github.com/geomatch/geomatch/internal/geo"
	matcherv1 "github.com/geomatch/geomatch/proto/geomatch/matcher/v1"
	"github.com/geomatch/geomatch/shardmap"
)

// positionOwnedBy returns a position near Times Square whose shard member
// id owns on src's ring.
func positionOwnedBy(t *testing.T, m *shardmap.Map, id string) geo.LatLng {
	t.Helper()
	for i := range 2000 {
		p := geo.LatLng{Lat: times.Lat + float64(i%45)*0.01, Lng: times.Lng + float64(i/45)*0.01}
		if _, _, o, ok := m.Locate(p); ok && o.ID == id {
			return p
		}
	}
	t.Fatalf("no position owned by %s", id)
	return geo.LatLng{}
}

// TestUpdatesForADeadOwnerWaitForTheFailover is the no-rejected-update
// rule: updates whose owner cannot be reached wait in the client until
// the ring moves the owner's shards, then reach the new owner; none is
// refused.
func TestUpdatesForADeadOwnerWaitForTheFailover(t *testing.T) {
	live := &fakeMatcher{id: "m1", epoch: 1, outcome: func(uint64) matcherv1.Outcome { return matcherv1.Outcome_OUTCOME_APPLIED }}
	src := twoMembers(t, serveFake(t, live), deadAddr(t))
	c := runClient(t, Config{}, src)
	m, _ := src.Current()
	pos := positionOwnedBy(t, m, "m2")

	const n = 50
	r := newResults(n)
	for i := range n {
		c.Send(context.Background(), Update{DriverID: "d" + string(rune('a'+i%26)) + string(rune('a'+i/26)), Pos: pos, TimestampMs: 1}, r, int32(i), time.Now().Add(5*time.Second))
	}
	time.Sleep(300 * time.Millisecond) // the failover detector's delay
	removeMember(t, src, "m2")
	for i, res := range r.wait(t) {
		if res.Outcome != driver.Applied {
			t.Fatalf("update %d: %v %q, want applied by the new owner", i, res.Outcome, res.Msg)
		}
	}
	if st := c.ParkStats(); st.Parked == 0 || st.Held != 0 || st.FullRefused+st.DeadlineRefused != 0 {
		t.Fatalf("park stats %+v: want updates parked, none held or refused", st)
	}
}

// TestParkedUpdatesAreRefusedAtTheirDeadlineOrWhenTheLotIsFull: the lot
// is bounded in time (each update's deadline) and in count (ParkMax); a
// refusal says why and when to retry.
func TestParkedUpdatesAreRefusedAtTheirDeadlineOrWhenTheLotIsFull(t *testing.T) {
	src := oneMember(t, deadAddr(t))
	c := runClient(t, Config{ParkMax: 3}, src)
	const n = 10
	r := newResults(n)
	for i := range n {
		c.Send(context.Background(), Update{DriverID: "d" + string(rune('a'+i)), Pos: times, TimestampMs: 1}, r, int32(i), time.Now().Add(time.Second))
	}
	full, late := 0, 0
	for i, res := range r.wait(t) {
		switch {
		case res.Outcome != driver.Unavailable:
			t.Fatalf("update %d: %v, want unavailable", i, res.Outcome)
		case strings.Contains(res.Msg, "retry after"):
			full++
		case strings.Contains(res.Msg, "deadline passed"):
			late++
		default:
			t.Fatalf("update %d: reason %q says neither", i, res.Msg)
		}
		if !strings.Contains(res.Msg, "m1") {
			t.Fatalf("update %d: reason %q does not name the matcher", i, res.Msg)
		}
	}
	st := c.ParkStats()
	if full == 0 || late == 0 || st.FullRefused != uint64(full) || st.DeadlineRefused != uint64(late) || st.Held != 0 {
		t.Fatalf("%d refused as full, %d at their deadline; stats %+v", full, late, st)
	}
}

// TestReachableToleratesAFailoverButNotAnOutage: a member that owns shards
// and cannot be reached makes Reachable false once the grace has passed,
// naming it; a live one never does; removing the dead member from the
// ring makes the client reachable again.
func TestReachableToleratesAFailoverButNotAnOutage(t *testing.T) {
	live := &fakeMatcher{id: "m1", epoch: 1, outcome: func(uint64) matcherv1.Outcome { return matcherv1.Outcome_OUTCOME_APPLIED }}
	src := twoMembers(t, serveFake(t, live), deadAddr(t))
	c := runClient(t, Config{UnreachableGrace: 300 * time.Millisecond}, src)
	deadline := time.Now().Add(10 * time.Second)
	for {
		ok, why := c.Reachable()
		if !ok {
			if !strings.Contains(why, "m2") || strings.Contains(why, "m1") {
				t.Fatalf("reason %q: want m2 only", why)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("a dead member never made the client unreachable")
		}
		time.Sleep(50 * time.Millisecond)
	}
	removeMember(t, src, "m2")
	if ok, why := c.Reachable(); !ok {
		t.Fatalf("after the failover: unreachable: %s", why)
	}
}

// TestParkedUpdateSupersededByANewerOneIsNotDelivered: a driver whose
// update waits for a dead owner and who then reports from a live owner's
// shard is not sent its older position after the failover (that would
// leave a stale copy of the driver on the new owner): the parked update
// ends superseded, an accepted outcome like a duplicate's.
func TestParkedUpdateSupersededByANewerOneIsNotDelivered(t *testing.T) {
	live := &fakeMatcher{id: "m1", epoch: 1, outcome: func(uint64) matcherv1.Outcome { return matcherv1.Outcome_OUTCOME_APPLIED }}
	src := twoMembers(t, serveFake(t, live), deadAddr(t))
	c := runClient(t, Config{}, src)
	m, _ := src.Current()
	r := newResults(2)
	c.Send(context.Background(), Update{DriverID: "d1", Pos: positionOwnedBy(t, m, "m2"), TimestampMs: 1}, r, 0, time.Now().Add(5*time.Second))
	waitFor(t, func() bool { return c.ParkStats().Held == 1 })
	c.Send(context.Background(), Update{DriverID: "d1", Pos: positionOwnedBy(t, m, "m1"), TimestampMs: 2}, r, 1, time.Now().Add(5*time.Second))
	removeMember(t, src, "m2")
	got := r.wait(t)
	if got[0].Outcome != driver.Duplicate || got[1].Outcome != driver.Applied {
		t.Fatalf("outcomes: parked %v %q, newer %v; want duplicate (superseded), applied", got[0].Outcome, got[0].Msg, got[1].Outcome)
	}
}

// waitFor polls cond until it holds, for at most 10 s.
func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition never held")
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestSupersededUpdateIsAnsweredAfterTheNewerOne: an update superseded
// while it waited is not acknowledged before the newer update of its
// driver is. Acknowledged earlier, it would acknowledge a position no
// node shows while searches still show the one before it (a stale answer
// in a chaos run's history): both wait for the dead owner's failover, and
// the older is answered (as a duplicate) only once the newer is applied.
func TestSupersededUpdateIsAnsweredAfterTheNewerOne(t *testing.T) {
	live := &fakeMatcher{id: "m1", epoch: 1, outcome: func(uint64) matcherv1.Outcome { return matcherv1.Outcome_OUTCOME_APPLIED }}
	src := twoMembers(t, serveFake(t, live), deadAddr(t))
	c := runClient(t, Config{}, src)
	m, _ := src.Current()
	pos := positionOwnedBy(t, m, "m2")
	r := &orderedResults{results: newResults(2)}
	c.Send(context.Background(), Update{DriverID: "d1", Pos: pos, TimestampMs: 1}, r, 0, time.Now().Add(8*time.Second))
	waitFor(t, func() bool { return c.ParkStats().Held == 1 })
	c.Send(context.Background(), Update{DriverID: "d1", Pos: pos, TimestampMs: 2}, r, 1, time.Now().Add(8*time.Second))
	time.Sleep(4 * parkRetry) // the lot is retried: the older update is found superseded
	if n := r.count(); n != 0 {
		t.Fatalf("%d updates answered while their owner is unreachable: %v", n, r.order)
	}
	removeMember(t, src, "m2")
	got := r.wait(t)
	if got[0].Outcome != driver.Duplicate || got[1].Outcome != driver.Applied {
		t.Fatalf("outcomes: older %v %q, newer %v %q; want duplicate (superseded), applied", got[0].Outcome, got[0].Msg, got[1].Outcome, got[1].Msg)
	}
	if !slices.Equal(r.order, []int32{1, 0}) {
		t.Fatalf("answered in the order %v, want the newer (1) first", r.order)
	}
}

// TestSupersededUpdateSharesTheNewerOnesRefusal: when the newer update is
// refused (its deadline passed waiting for an owner that never came back),
// the superseded one is refused with it, saying why.
func TestSupersededUpdateSharesTheNewerOnesRefusal(t *testing.T) {
	src := oneMember(t, deadAddr(t))
	c := runClient(t, Config{}, src)
	r := newResults(2)
	c.Send(context.Background(), Update{DriverID: "d1", Pos: times, TimestampMs: 1}, r, 0, time.Now().Add(5*time.Second))
	waitFor(t, func() bool { return c.ParkStats().Held == 1 })
	c.Send(context.Background(), Update{DriverID: "d1", Pos: times, TimestampMs: 2}, r, 1, time.Now().Add(500*time.Millisecond))
	got := r.wait(t)
	if got[1].Outcome != driver.Unavailable || got[0].Outcome != driver.Unavailable || !strings.Contains(got[0].Msg, "superseded") {
		t.Fatalf("outcomes: older %v %q, newer %v %q; want both unavailable, the older saying it was superseded", got[0].Outcome, got[0].Msg, got[1].Outcome, got[1].Msg)
	}
}

// orderedResults records the order in which updates are answered.
type orderedResults struct {
	*results
	omu   sync.Mutex
	order []int32
}

func (r *orderedResults) Done(idx int32, res Result) {
	r.omu.Lock()
	r.order = append(r.order, idx)
	r.omu.Unlock()
	r.results.Done(idx, res)
}

func (r *orderedResults) count() int {
	r.omu.Lock()
	defer r.omu.Unlock()
	return len(r.order)
}

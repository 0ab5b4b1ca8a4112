package router

import (
	"context"
	"testing"
	"time"

	"github.com/geomatch/geomatch/driver"
	"github.com/geomatch/geomatch/fleet"
	geomatchv1 "github.com/geomatch/geomatch/proto/geomatch/v1"
)

// ackSink returns a sink with acks whose timer never fires on its own in
// the test (the test calls ackDue itself).
func ackSink(t *testing.T) (*streamSink, *driverSession) {
	t.Helper()
	_, end := context.WithCancelCause(context.Background())
	sess := newDriverSession(end, 0)
	sk := newStreamSink(sess, true)
	sk.acks.delay = time.Hour
	t.Cleanup(sk.stop)
	return sk, sess
}

func queued(sess *driverSession) []*geomatchv1.DriverEvent {
	var out []*geomatchv1.DriverEvent
	for {
		select {
		case ev := <-sess.events:
			out = append(out, ev)
		default:
			return out
		}
	}
}

// TestAckCoversOnlyCompletedPrefix: an ack never claims an update that is
// still on its way: through stops below the oldest pending timestamp.
func TestAckCoversOnlyCompletedPrefix(t *testing.T) {
	sk, sess := ackSink(t)
	for i := int32(1); i <= 3; i++ {
		sk.pending[i] = pendingUpdate{u: &geomatchv1.LocationUpdate{TimestampMs: int64(100 * i)}}
	}
	sk.Done(1, fleet.Result{Outcome: driver.Applied})
	sk.Done(3, fleet.Result{Outcome: driver.Applied}) // 2 (ts 200) still pending
	sk.ackDue()
	evs := queued(sess)
	if len(evs) != 1 || evs[0].GetUpdatesAck().GetThroughTimestampMs() != 199 || evs[0].GetUpdatesAck().GetApplied() != 2 {
		t.Fatalf("events %v; want one ack through 199 with 2 applied", evs)
	}
	sk.Done(2, fleet.Result{Outcome: driver.Stale, Msg: "stale"})
	sk.ackDue()
	evs = queued(sess)
	if len(evs) != 2 || evs[0].GetRejected().GetTimestampMs() != 200 || evs[1].GetUpdatesAck().GetThroughTimestampMs() != 300 || evs[1].GetUpdatesAck().GetApplied() != 2 {
		t.Fatalf("events %v; want the rejection of 200, then an ack through 300 with 2 applied", evs)
	}
	sk.ackDue()
	if evs := queued(sess); len(evs) != 0 {
		t.Fatalf("an ack with nothing new: %v", evs)
	}
}

// TestAckEveryN: a burst of completions gets an ack every ackEvery updates
// without waiting for the timer.
func TestAckEveryN(t *testing.T) {
	sk, sess := ackSink(t)
	for i := int32(1); i <= 2*ackEvery; i++ {
		sk.pending[i] = pendingUpdate{u: &geomatchv1.LocationUpdate{TimestampMs: int64(i)}}
		sk.Done(i, fleet.Result{Outcome: driver.Applied})
	}
	evs := queued(sess)
	if len(evs) != 2 || evs[1].GetUpdatesAck().GetApplied() != 2*ackEvery || evs[1].GetUpdatesAck().GetThroughTimestampMs() != 2*ackEvery {
		t.Fatalf("events %v; want two acks, the last through %d", evs, 2*ackEvery)
	}
}

// TestAckWaitsForRoom: an ack that finds the queue short of room is kept
// for later, never ends the stream, and the next ack covers it.
func TestAckWaitsForRoom(t *testing.T) {
	sk, sess := ackSink(t)
	for range eventQueueLen - criticalReserve {
		sess.events <- &geomatchv1.DriverEvent{}
	}
	sk.pending[1] = pendingUpdate{u: &geomatchv1.LocationUpdate{TimestampMs: 7}}
	sk.Done(1, fleet.Result{Outcome: driver.Applied})
	sk.ackDue()
	if n := len(queued(sess)); n != eventQueueLen-criticalReserve {
		t.Fatalf("%d events queued; want the ack held back", n)
	}
	sk.ackDue()
	evs := queued(sess)
	if len(evs) != 1 || evs[0].GetUpdatesAck().GetThroughTimestampMs() != 7 {
		t.Fatalf("events %v; want the held-back ack", evs)
	}
}

// TestAckAllocations: an update's completion allocates nothing for the
// acks; only the ack itself, once per ackEvery updates, does.
func TestAckAllocations(t *testing.T) {
	sk, sess := ackSink(t)
	u := &geomatchv1.LocationUpdate{TimestampMs: 1}
	i := int32(0)
	allocs := testing.AllocsPerRun(10*ackEvery, func() {
		i++
		u.TimestampMs++
		sk.pending[i] = pendingUpdate{u: u}
		sk.Done(i, fleet.Result{Outcome: driver.Applied})
		if len(sess.events) > 0 {
			<-sess.events
		}
	})
	// The ack event is three objects, every ackEvery updates; the map
	// insert amortizes to zero.
	if allocs > 0.1 {
		t.Fatalf("%.2f allocations per update; want none but the coalesced ack", allocs)
	}
}

// An update the stream sent in order whose outcome is STALE was overtaken
// by a later update of the same stream (applied first elsewhere): it is
// superseded, not refused. One the app sent older than an earlier one
// stays STALE.
func TestStaleOfAnOvertakenUpdateIsSuperseded(t *testing.T) {
	sk, sess := ackSink(t)
	sk.pending[1] = pendingUpdate{u: &geomatchv1.LocationUpdate{DriverId: "d1", TimestampMs: 100}, inOrder: true}
	sk.pending[2] = pendingUpdate{u: &geomatchv1.LocationUpdate{DriverId: "d1", TimestampMs: 50}, inOrder: false}
	sk.Done(1, fleet.Result{Outcome: driver.Stale})
	for _, ev := range queued(sess) {
		if ev.GetRejected() != nil {
			t.Fatalf("overtaken update reported %v, want it superseded (no rejection)", ev)
		}
	}
	sk.Done(2, fleet.Result{Outcome: driver.Stale})
	var stale int
	evs := queued(sess)
	for _, ev := range evs {
		if ev.GetRejected().GetReason() == geomatchv1.RejectReason_REJECT_REASON_STALE {
			stale++
		}
	}
	if stale != 1 {
		t.Fatalf("%d STALE rejections, want 1 (the update sent out of order): %v", stale, evs)
	}
}

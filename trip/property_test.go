package trip

import (
	"math"
	"math/rand/v2"
	"reflect"
	"slices"
	"strconv"
	"testing"
	"time"
)

// allowed is the transition relation of the table: allowed[from][kind]
// holds the states a step of that kind may reach from from.
var allowed = func() map[State]map[EventKind]map[State]bool {
	m := map[State]map[EventKind]map[State]bool{}
	for _, row := range transitionTable {
		if row.to == refused {
			continue
		}
		k := tableEvents[row.event].Kind
		if m[row.from] == nil {
			m[row.from] = map[EventKind]map[State]bool{}
		}
		if m[row.from][k] == nil {
			m[row.from][k] = map[State]bool{}
		}
		m[row.from][k][row.to] = true
	}
	return m
}()

// chooser picks an int in [0, n): from math/rand in the property test, from
// the fuzzer's bytes in FuzzStep.
type chooser func(n int) int

// eventGen makes events for a trip: mostly plausible ones (the trip's own
// driver and offer, a clock moving forward), with wrong drivers and offers,
// unknown kinds, backward and zero times and bad offers mixed in.
type eventGen struct {
	pick  chooser
	clock time.Time
}

// genKinds weighs the kinds the generator picks: the lifecycle's steps
// often, the ends (cancel, give up) and unknown kinds rarely, so that runs
// get far into the lifecycle.
var genKinds = []EventKind{
	EventOffer, EventOffer, EventOffer, EventOffer, EventAccept, EventAccept, EventAccept, EventAccept,
	EventDecline, EventDecline, EventOfferExpired, EventOfferExpired,
	EventPickUp, EventPickUp, EventPickUp, EventComplete, EventComplete, EventComplete,
	EventCancel, EventGiveUp, 0, EventGiveUp + 1,
}

// next returns an event for t.
func (g *eventGen) next(t Trip) Event {
	p := g.pick
	switch p(20) {
	case 0: // backwards
		g.clock = g.clock.Add(-time.Duration(p(5)) * time.Second)
	default:
		g.clock = g.clock.Add(time.Duration(p(10)) * time.Second)
	}
	e := Event{Kind: genKinds[p(len(genKinds))], At: g.clock}
	if p(20) == 0 {
		e.At = time.Time{}
	}
	switch {
	case t.Driver != "" && p(3) > 0:
		e.Driver = t.Driver
	case p(10) == 0:
		e.Driver = ""
	default:
		e.Driver = "d" + strconv.Itoa(p(12))
	}
	switch {
	case t.OfferID != "" && p(3) > 0:
		e.OfferID = t.OfferID
	case p(10) == 0:
		e.OfferID = ""
	default:
		e.OfferID = "o" + strconv.Itoa(p(6))
	}
	e.ExpiresAt = g.clock.Add(time.Duration(p(30)) * time.Second)
	switch p(20) {
	case 0:
		e.ExpiresAt = time.Time{}
	case 1:
		e.PickupDistanceM = -1
	case 2:
		e.PickupDistanceM = math.NaN()
	default:
		e.PickupDistanceM = float64(p(5000))
	}
	e.ByDriver = p(2) == 0
	if p(2) == 0 {
		e.Reason = "r" + strconv.Itoa(p(3))
	}
	return e
}

// checkStep checks one step of a run against the machine's rules: a
// refusal is a TransitionError with the trip unchanged; a success is a
// transition of the table from a non-final state, keeps every invariant,
// counts attempts at offers only, only appends to Tried, never offers a
// tried driver, and moves UpdatedAt forwards only.
func checkStep(tb testing.TB, before Trip, e Event, after Trip, err error) {
	tb.Helper()
	if err != nil {
		wantRefused(tb, before, e, after, err)
		return
	}
	if before.State.Final() || !before.State.valid() {
		tb.Fatalf("%v accepted in state %v", e.Kind, before.State)
	}
	if !allowed[before.State][e.Kind][after.State] {
		tb.Fatalf("%v moved %v to %v: not a transition of the table", e.Kind, before.State, after.State)
	}
	if err := after.Validate(); err != nil {
		tb.Fatalf("%v from %v: %v", e.Kind, before.State, err)
	}
	switch after.State {
	case StateOffered:
		if after.OfferID == "" || after.Driver == "" || after.HeldDriver() != after.Driver {
			tb.Fatalf("offered without an offer: %+v", after)
		}
	case StateAssigned, StatePickedUp:
		if after.Driver == "" || after.OfferID != "" || after.HeldDriver() != after.Driver {
			tb.Fatalf("%v without a driver: %+v", after.State, after)
		}
	case StateCompleted:
		if after.Driver == "" {
			tb.Fatalf("completed without a driver")
		}
	}
	if after.ID != before.ID || after.RiderID != before.RiderID || after.Pickup != before.Pickup ||
		!after.CreatedAt.Equal(before.CreatedAt) {
		tb.Fatalf("step changed the request: %+v -> %+v", before, after)
	}
	wantUpdated := before.UpdatedAt
	if e.At.After(wantUpdated) {
		wantUpdated = e.At
	}
	if !after.UpdatedAt.Equal(wantUpdated) {
		tb.Fatalf("UpdatedAt %v after %v at %v, want %v", after.UpdatedAt, before.UpdatedAt, e.At, wantUpdated)
	}
	wantAttempts := before.Attempts
	if e.Kind == EventOffer {
		wantAttempts++
		if slices.Contains(before.Tried, e.Driver) {
			tb.Fatalf("driver %s offered twice", e.Driver)
		}
	}
	if after.Attempts != wantAttempts {
		tb.Fatalf("%v: attempts %d -> %d", e.Kind, before.Attempts, after.Attempts)
	}
	n := len(before.Tried)
	if len(after.Tried) < n || !slices.Equal(after.Tried[:n], before.Tried) || len(after.Tried) > n+1 {
		tb.Fatalf("tried %v -> %v: not an append", before.Tried, after.Tried)
	}
	if len(after.Tried) == n+1 && after.Tried[n] != before.Driver {
		tb.Fatalf("tried gained %s, the offered driver was %s", after.Tried[n], before.Driver)
	}
	if r := ReleasedDriver(before, after); r != "" && r != before.HeldDriver() {
		tb.Fatalf("released %s, held %s", r, before.HeldDriver())
	}
}

// runSequence steps a new trip through count events from g, checking
// every step and that the receiver is never modified, and returns the last
// trip.
func runSequence(tb testing.TB, g *eventGen, count int) Trip {
	tb.Helper()
	t := newTrip()
	for range count {
		e := g.next(t)
		snapshot := t.Clone()
		next, err := t.Step(e)
		if !reflect.DeepEqual(t, snapshot) {
			tb.Fatalf("Step modified its receiver")
		}
		checkStep(tb, t, e, next, err)
		t = next
	}
	return t
}

// TestRandomSequencesKeepInvariants runs many random event sequences and
// checks every step; it also checks that they reach every state, so the
// run is not vacuous.
func TestRandomSequencesKeepInvariants(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	reached := map[State]int{}
	for range 3000 {
		g := &eventGen{pick: r.IntN, clock: t0}
		reached[runSequence(t, g, 1+r.IntN(60)).State]++
	}
	for s := StateRequested; s <= StateNoDriver; s++ {
		if reached[s] == 0 {
			t.Errorf("no sequence ended in %v", s)
		}
	}
	t.Logf("final states of 3000 sequences: %v", reached)
}

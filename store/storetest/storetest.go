// Package storetest is the conformance suite of store.Store: the rules of
// the contract written as tests, so every implementation (store.Memory,
// store.Redis, and any later one) is held to the same behaviour. An
// implementation's test calls Run with a constructor of fresh stores:
//
//	func TestMemoryConformance(t *testing.T) {
//		storetest.Run(t, func(t *testing.T) store.Store { return store.NewMemory() })
//	}
//
// Every subtest gets its own store. Times are passed as `now` arguments
// relative to the test's start, never slept for; leases meant to have
// lapsed lapsed hours ago, and live ones last an hour, so the reads that use
// the wall clock (Driver, Release, SetOffline, SetAvailable) agree with the
// `now` of the calls.
package storetest

import (
	"bytes"
	"cmp"
	"context"
	"errors"
	"fmt"
	"math"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/geomatch/geomatch/store"
)

// Run runs the whole suite against stores made by newStore, each subtest on
// a fresh one. newStore should register the store's cleanup (Close) with t;
// one subtest closes its store itself first, so Close must tolerate being
// called twice.
//
// Beyond the Store contract the suite holds implementations to three
// choices both stores make: a reserve by the trip that already holds a live
// lease conflicts like any other (the contract has no exception for it);
// UpdateTrip of a final trip conflicts; and ActiveTrips refuses a limit
// below 1. Calls with empty ids or a non-positive lease fail with an error
// that is not ErrConflict.
func Run(t *testing.T, newStore func(t *testing.T) store.Store) {
	t.Run("DriverRules", func(t *testing.T) { testDriverRules(t, newStore) })
	t.Run("OfferAndLease", func(t *testing.T) { testOfferAndLease(t, newStore) })
	t.Run("ReserveRace", func(t *testing.T) { testReserveRace(t, newStore) })
	t.Run("Trips", func(t *testing.T) { testTrips(t, newStore) })
	t.Run("CreateTripRace", func(t *testing.T) { testCreateTripRace(t, newStore) })
	t.Run("UpdateTripRace", func(t *testing.T) { testUpdateTripRace(t, newStore) })
	t.Run("ActiveTrips", func(t *testing.T) { testActiveTrips(t, newStore) })
	t.Run("Positions", func(t *testing.T) { testPositions(t, newStore) })
	t.Run("Events", func(t *testing.T) { testEvents(t, newStore) })
	t.Run("Fences", func(t *testing.T) { testFences(t, newStore) })
	t.Run("FenceStates", func(t *testing.T) { testFenceStates(t, newStore) })
}

// testTimeout bounds every subtest's calls, so a hung store fails instead of
// stalling the run.
const testTimeout = 20 * time.Second

// setup returns a fresh store, a bounded context and the base time (now,
// at millisecond precision, which both stores keep).
func setup(t *testing.T, newStore func(t *testing.T) store.Store) (store.Store, context.Context, time.Time) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), testTimeout)
	t.Cleanup(cancel)
	return newStore(t), ctx, time.Now().Truncate(time.Millisecond)
}

// Durations used by the driver rules.
const (
	live   = time.Hour      // a lease that outlives the test
	lapsed = -2 * time.Hour // reserve at base-2h for an hour: lapsed long ago
)

// expect is what a step must do.
type expect uint8

const (
	becomes   expect = iota + 1 // succeeds and changes: version +1
	keeps                       // succeeds without change: same version
	conflicts                   // ErrConflict: same version
)

// step is one call on driver "d1" and the outcome the contract requires.
type step struct {
	name   string
	call   func(ctx context.Context, s store.Store, base time.Time) (store.Driver, error)
	expect expect
	status store.DriverStatus
	trip   string
}

func (s step) becomes(st store.DriverStatus, trip string) step {
	s.expect, s.status, s.trip = becomes, st, trip
	return s
}

func (s step) keeps(st store.DriverStatus, trip string) step {
	s.expect, s.status, s.trip = keeps, st, trip
	return s
}

func (s step) conflicts() step {
	s.expect = conflicts
	return s
}

const driverID = "d1"

// reserve: Reserve for trip at base+at with lease.
func reserve(trip string, at, lease time.Duration) step {
	return step{name: fmt.Sprintf("Reserve(%s, at %v, lease %v)", trip, at, lease),
		call: func(ctx context.Context, s store.Store, base time.Time) (store.Driver, error) {
			return s.Reserve(ctx, driverID, trip, lease, base.Add(at))
		}}
}

// offer: SetOffer of trip with the lease extended to base+until.
func offer(trip string, until time.Duration) step {
	return step{name: fmt.Sprintf("SetOffer(%s, until %v)", trip, until),
		call: func(ctx context.Context, s store.Store, base time.Time) (store.Driver, error) {
			o := store.Offer{ID: "o-" + trip, TripID: trip, ExpiresAt: base.Add(until)}
			return s.SetOffer(ctx, driverID, o, base.Add(until))
		}}
}

func release(trip string) step {
	return step{name: fmt.Sprintf("Release(%s)", trip),
		call: func(ctx context.Context, s store.Store, _ time.Time) (store.Driver, error) {
			return s.Release(ctx, driverID, trip)
		}}
}

// startTrip: StartTrip for trip at base+at.
func startTrip(trip string, at time.Duration) step {
	return step{name: fmt.Sprintf("StartTrip(%s, at %v)", trip, at),
		call: func(ctx context.Context, s store.Store, base time.Time) (store.Driver, error) {
			return s.StartTrip(ctx, driverID, trip, base.Add(at))
		}}
}

func endTrip(trip string) step {
	return step{name: fmt.Sprintf("EndTrip(%s)", trip),
		call: func(ctx context.Context, s store.Store, _ time.Time) (store.Driver, error) {
			return s.EndTrip(ctx, driverID, trip)
		}}
}

func offline() step {
	return step{name: "SetOffline",
		call: func(ctx context.Context, s store.Store, _ time.Time) (store.Driver, error) {
			return s.SetOffline(ctx, driverID)
		}}
}

func available() step {
	return step{name: "SetAvailable",
		call: func(ctx context.Context, s store.Store, _ time.Time) (store.Driver, error) {
			return s.SetAvailable(ctx, driverID)
		}}
}

// read: Driver, which views the state at the wall clock.
func read() step {
	return step{name: "Driver",
		call: func(ctx context.Context, s store.Store, _ time.Time) (store.Driver, error) {
			return s.Driver(ctx, driverID)
		}}
}

const (
	avail    = store.StatusAvailable
	reserved = store.StatusReserved
	onTrip   = store.StatusOnTrip
	off      = store.StatusOffline
)

// driverRules is the driver state machine, one rule per case. Every step's
// version is checked too: +1 when it changes the driver, unchanged when it
// is refused or has nothing to change.
var driverRules = []struct {
	rule  string
	steps []step
}{
	{"a driver never seen is available at version 0", []step{
		read().keeps(avail, ""),
	}},

	// Reserve.
	{"reserve moves an available driver to reserved", []step{
		reserve("t1", 0, live).becomes(reserved, "t1"),
		read().keeps(reserved, "t1"),
	}},
	{"a second reserve by another trip conflicts", []step{
		reserve("t1", 0, live).becomes(reserved, "t1"),
		reserve("t2", 0, live).conflicts(),
		read().keeps(reserved, "t1"),
	}},
	{"a reserve by the holding trip while its lease is live conflicts too", []step{
		reserve("t1", 0, live).becomes(reserved, "t1"),
		reserve("t1", time.Minute, live).conflicts(),
	}},
	{"reserve succeeds once the lease lapsed", []step{
		reserve("t1", lapsed, time.Hour).becomes(reserved, "t1"),
		reserve("t2", 0, live).becomes(reserved, "t2"),
		read().keeps(reserved, "t2"),
	}},
	{"a lease is live up to and including its end", []step{
		reserve("t1", 0, time.Minute).becomes(reserved, "t1"),
		reserve("t2", time.Minute, live).conflicts(),
		reserve("t2", time.Minute+time.Millisecond, live).becomes(reserved, "t2"),
	}},
	{"a lapsed reservation reads as available", []step{
		reserve("t1", lapsed, time.Hour).becomes(reserved, "t1"),
		read().keeps(avail, ""),
	}},
	{"a driver on a trip cannot be reserved", []step{
		reserve("t1", 0, live).becomes(reserved, "t1"),
		startTrip("t1", 0).becomes(onTrip, "t1"),
		reserve("t2", 2*live, live).conflicts(),
	}},
	{"an offline driver cannot be reserved", []step{
		offline().becomes(off, ""),
		reserve("t1", 0, live).conflicts(),
		read().keeps(off, ""),
	}},

	// SetOffer.
	{"only the holding trip sets an offer", []step{
		reserve("t1", 0, live).becomes(reserved, "t1"),
		offer("t2", live).conflicts(),
		offer("t1", 2*live).becomes(reserved, "t1"),
	}},
	{"an offer to an available driver conflicts", []step{
		offer("t1", live).conflicts(),
		read().keeps(avail, ""),
	}},
	{"an offer after another trip took the lapsed driver conflicts", []step{
		reserve("t1", lapsed, time.Hour).becomes(reserved, "t1"),
		reserve("t2", 0, live).becomes(reserved, "t2"),
		offer("t1", live).conflicts(),
	}},

	// Release.
	{"release by another trip conflicts; by the holder returns to available", []step{
		reserve("t1", 0, live).becomes(reserved, "t1"),
		release("t2").conflicts(),
		release("t1").becomes(avail, ""),
		read().keeps(avail, ""),
	}},
	{"release of an available driver succeeds without change", []step{
		release("t1").keeps(avail, ""),
	}},
	{"release of the holder's own lapsed reservation returns to available", []step{
		reserve("t1", lapsed, time.Hour).becomes(reserved, "t1"),
		release("t1").becomes(avail, ""),
	}},
	{"release of someone else's lapsed reservation succeeds without change", []step{
		reserve("t1", lapsed, time.Hour).becomes(reserved, "t1"),
		release("t2").keeps(avail, ""),
	}},
	{"release after the lease lapsed and another trip took the driver conflicts", []step{
		reserve("t1", lapsed, time.Hour).becomes(reserved, "t1"),
		reserve("t2", 0, live).becomes(reserved, "t2"),
		release("t1").conflicts(),
		read().keeps(reserved, "t2"),
	}},
	{"release of a driver on a trip conflicts", []step{
		reserve("t1", 0, live).becomes(reserved, "t1"),
		startTrip("t1", 0).becomes(onTrip, "t1"),
		release("t1").conflicts(),
	}},
	{"release of an offline driver conflicts", []step{
		offline().becomes(off, ""),
		release("t1").conflicts(),
	}},

	// StartTrip.
	{"start with a live lease moves to on_trip", []step{
		reserve("t1", 0, live).becomes(reserved, "t1"),
		startTrip("t1", live/2).becomes(onTrip, "t1"),
		read().keeps(onTrip, "t1"),
	}},
	{"start at the last instant of the lease succeeds", []step{
		reserve("t1", 0, time.Minute).becomes(reserved, "t1"),
		startTrip("t1", time.Minute).becomes(onTrip, "t1"),
	}},
	{"start after the lease lapsed conflicts", []step{
		reserve("t1", 0, time.Minute).becomes(reserved, "t1"),
		startTrip("t1", time.Minute+time.Millisecond).conflicts(),
	}},
	{"start by another trip conflicts", []step{
		reserve("t1", 0, live).becomes(reserved, "t1"),
		startTrip("t2", 0).conflicts(),
	}},
	{"start of an available driver conflicts", []step{
		startTrip("t1", 0).conflicts(),
	}},
	{"start twice conflicts the second time", []step{
		reserve("t1", 0, live).becomes(reserved, "t1"),
		startTrip("t1", 0).becomes(onTrip, "t1"),
		startTrip("t1", 0).conflicts(),
	}},

	// EndTrip.
	{"end returns the driver to available", []step{
		reserve("t1", 0, live).becomes(reserved, "t1"),
		startTrip("t1", 0).becomes(onTrip, "t1"),
		endTrip("t1").becomes(avail, ""),
		reserve("t2", 0, live).becomes(reserved, "t2"),
	}},
	{"end by another trip conflicts", []step{
		reserve("t1", 0, live).becomes(reserved, "t1"),
		startTrip("t1", 0).becomes(onTrip, "t1"),
		endTrip("t2").conflicts(),
		read().keeps(onTrip, "t1"),
	}},
	{"end of a reserved driver conflicts", []step{
		reserve("t1", 0, live).becomes(reserved, "t1"),
		endTrip("t1").conflicts(),
	}},

	// SetOffline / SetAvailable.
	{"an available driver goes offline and comes back", []step{
		offline().becomes(off, ""),
		available().becomes(avail, ""),
	}},
	{"offline twice changes nothing the second time", []step{
		offline().becomes(off, ""),
		offline().keeps(off, ""),
	}},
	{"available for an available driver changes nothing", []step{
		available().keeps(avail, ""),
	}},
	{"a reserved driver can go neither offline nor available", []step{
		reserve("t1", 0, live).becomes(reserved, "t1"),
		offline().conflicts(),
		available().conflicts(),
		read().keeps(reserved, "t1"),
	}},
	{"a driver on a trip can go neither offline nor available", []step{
		reserve("t1", 0, live).becomes(reserved, "t1"),
		startTrip("t1", 0).becomes(onTrip, "t1"),
		offline().conflicts(),
		available().conflicts(),
	}},
	{"a driver whose reservation lapsed can go offline", []step{
		reserve("t1", lapsed, time.Hour).becomes(reserved, "t1"),
		offline().becomes(off, ""),
	}},
	{"available clears a lapsed reservation", []step{
		reserve("t1", lapsed, time.Hour).becomes(reserved, "t1"),
		available().becomes(avail, ""),
		startTrip("t1", lapsed).conflicts(),
	}},

	// A whole trip.
	{"versions increase through a whole trip", []step{
		reserve("t1", 0, time.Minute).becomes(reserved, "t1"),
		offer("t1", 2*time.Minute).becomes(reserved, "t1"),
		startTrip("t1", 90*time.Second).becomes(onTrip, "t1"),
		endTrip("t1").becomes(avail, ""),
		offline().becomes(off, ""),
		available().becomes(avail, ""),
		reserve("t2", 0, live).becomes(reserved, "t2"),
		release("t2").becomes(avail, ""),
	}},
}

func testDriverRules(t *testing.T, newStore func(t *testing.T) store.Store) {
	for _, rc := range driverRules {
		t.Run(rc.rule, func(t *testing.T) {
			s, ctx, base := setup(t, newStore)
			var ver uint64
			for i, st := range rc.steps {
				got, err := st.call(ctx, s, base)
				where := fmt.Sprintf("step %d %s", i+1, st.name)
				switch st.expect {
				case conflicts:
					if !errors.Is(err, store.ErrConflict) {
						t.Fatalf("%s: err = %v, want ErrConflict", where, err)
					}
				default:
					if err != nil {
						t.Fatalf("%s: %v", where, err)
					}
					if got.ID != driverID || got.Status != st.status || got.TripID != st.trip {
						t.Fatalf("%s = {%s %s trip %q}, want {%s %s trip %q}",
							where, got.ID, got.Status, got.TripID, driverID, st.status, st.trip)
					}
				}
				want := ver
				if st.expect == becomes {
					want++
				}
				now, err := s.Driver(ctx, driverID)
				if err != nil {
					t.Fatalf("%s: read back: %v", where, err)
				}
				if now.Version != want {
					t.Fatalf("%s: version %d, want %d", where, now.Version, want)
				}
				if st.expect != conflicts && got.Version != want {
					t.Fatalf("%s returned version %d, want %d", where, got.Version, want)
				}
				ver = want
			}
		})
	}
}

// testOfferAndLease checks the fields a reservation carries: the lease end,
// the offer (kept with the reservation for a reconnecting driver), and that
// they go when the reservation ends.
func testOfferAndLease(t *testing.T, newStore func(t *testing.T) store.Store) {
	t.Run("reserve sets the lease end", func(t *testing.T) {
		s, ctx, base := setup(t, newStore)
		d, err := s.Reserve(ctx, "d1", "t1", 30*time.Second, base)
		if err != nil {
			t.Fatal(err)
		}
		if !d.LeaseUntil.Equal(base.Add(30*time.Second)) || d.Offer != nil {
			t.Fatalf("after Reserve: lease %v offer %v, want lease %v and no offer", d.LeaseUntil, d.Offer, base.Add(30*time.Second))
		}
	})

	t.Run("the offer is kept with the reservation and extends the lease", func(t *testing.T) {
		s, ctx, base := setup(t, newStore)
		if _, err := s.Reserve(ctx, "d1", "t1", 30*time.Second, base); err != nil {
			t.Fatal(err)
		}
		o := store.Offer{
			ID: "o1", TripID: "t1", ExpiresAt: base.Add(40 * time.Second),
			PickupDistanceM: 412.25, Trip: []byte(`{"pickup":"here"}`),
		}
		until := base.Add(45 * time.Second)
		d, err := s.SetOffer(ctx, "d1", o, until)
		if err != nil {
			t.Fatal(err)
		}
		checkOffer(t, "SetOffer result", d, o, until)
		d, err = s.Driver(ctx, "d1")
		if err != nil {
			t.Fatal(err)
		}
		checkOffer(t, "Driver after SetOffer", d, o, until)
		// The extended lease is what StartTrip checks.
		if _, err := s.StartTrip(ctx, "d1", "t1", base.Add(44*time.Second)); err != nil {
			t.Fatalf("StartTrip within the extended lease: %v", err)
		}
		d, err = s.Driver(ctx, "d1")
		if err != nil {
			t.Fatal(err)
		}
		if d.Offer != nil || !d.LeaseUntil.IsZero() {
			t.Fatalf("on_trip driver keeps offer %v lease %v, want none", d.Offer, d.LeaseUntil)
		}
	})

	t.Run("release clears the offer and the lease", func(t *testing.T) {
		s, ctx, base := setup(t, newStore)
		if _, err := s.Reserve(ctx, "d1", "t1", live, base); err != nil {
			t.Fatal(err)
		}
		o := store.Offer{ID: "o1", TripID: "t1", ExpiresAt: base.Add(time.Minute)}
		if _, err := s.SetOffer(ctx, "d1", o, base.Add(live)); err != nil {
			t.Fatal(err)
		}
		if _, err := s.Release(ctx, "d1", "t1"); err != nil {
			t.Fatal(err)
		}
		d, err := s.Driver(ctx, "d1")
		if err != nil {
			t.Fatal(err)
		}
		if d.Status != store.StatusAvailable || d.TripID != "" || d.Offer != nil || !d.LeaseUntil.IsZero() {
			t.Fatalf("after Release: %+v, want available with no trip, offer or lease", d)
		}
	})

	t.Run("a conflict error names the holder", func(t *testing.T) {
		s, ctx, base := setup(t, newStore)
		if _, err := s.Reserve(ctx, "d1", "t1", live, base); err != nil {
			t.Fatal(err)
		}
		_, err := s.Reserve(ctx, "d1", "t2", live, base)
		if !errors.Is(err, store.ErrConflict) || !strings.Contains(err.Error(), "t1") {
			t.Fatalf("err = %v, want ErrConflict naming trip t1", err)
		}
	})

	t.Run("invalid arguments are refused without a change", func(t *testing.T) {
		s, ctx, base := setup(t, newStore)
		calls := map[string]func() error{
			"empty driver": func() error { _, err := s.Reserve(ctx, "", "t1", live, base); return err },
			"empty trip":   func() error { _, err := s.Reserve(ctx, "d1", "", live, base); return err },
			"zero lease":   func() error { _, err := s.Reserve(ctx, "d1", "t1", 0, base); return err },
			"offer w/o trip": func() error {
				_, err := s.SetOffer(ctx, "d1", store.Offer{ID: "o"}, base.Add(live))
				return err
			},
		}
		for name, call := range calls {
			if err := call(); err == nil || errors.Is(err, store.ErrConflict) {
				t.Errorf("%s: err = %v, want an argument error", name, err)
			}
		}
		if d, err := s.Driver(ctx, "d1"); err != nil || d.Version != 0 {
			t.Fatalf("driver after refused calls: %+v, %v; want version 0", d, err)
		}
	})
}

func checkOffer(t *testing.T, where string, d store.Driver, want store.Offer, until time.Time) {
	t.Helper()
	if d.Status != store.StatusReserved || d.TripID != want.TripID {
		t.Fatalf("%s: %s trip %q, want reserved by %s", where, d.Status, d.TripID, want.TripID)
	}
	if !d.LeaseUntil.Equal(until) {
		t.Fatalf("%s: lease until %v, want %v", where, d.LeaseUntil, until)
	}
	got := d.Offer
	if got == nil {
		t.Fatalf("%s: no offer", where)
	}
	if got.ID != want.ID || got.TripID != want.TripID || !got.ExpiresAt.Equal(want.ExpiresAt) ||
		got.PickupDistanceM != want.PickupDistanceM || !bytes.Equal(got.Trip, want.Trip) {
		t.Fatalf("%s: offer %+v, want %+v", where, *got, want)
	}
}

// testReserveRace is the fencing guarantee: however many matchers race to
// reserve one driver for different trips, exactly one wins.
func testReserveRace(t *testing.T, newStore func(t *testing.T) store.Store) {
	for _, tc := range []struct {
		name  string
		setup func(ctx context.Context, s store.Store, base time.Time) error
	}{
		{"from available", func(context.Context, store.Store, time.Time) error { return nil }},
		{"from a lapsed reservation", func(ctx context.Context, s store.Store, base time.Time) error {
			_, err := s.Reserve(ctx, "d1", "old", time.Hour, base.Add(lapsed))
			return err
		}},
	} {
		t.Run("50 trips race for one driver "+tc.name+": exactly one wins", func(t *testing.T) {
			s, ctx, base := setup(t, newStore)
			if err := tc.setup(ctx, s, base); err != nil {
				t.Fatal(err)
			}
			before, err := s.Driver(ctx, "d1")
			if err != nil {
				t.Fatal(err)
			}
			const n = 50
			var (
				wg      sync.WaitGroup
				mu      sync.Mutex
				winners []string
				errs    []error
			)
			start := make(chan struct{})
			for i := range n {
				wg.Go(func() {
					trip := fmt.Sprintf("t%02d", i)
					<-start
					_, err := s.Reserve(ctx, "d1", trip, live, base)
					mu.Lock()
					defer mu.Unlock()
					switch {
					case err == nil:
						winners = append(winners, trip)
					case !errors.Is(err, store.ErrConflict):
						errs = append(errs, err)
					}
				})
			}
			close(start)
			wg.Wait()
			if len(errs) > 0 {
				t.Fatalf("unexpected errors: %v", errs)
			}
			if len(winners) != 1 {
				t.Fatalf("winners %v, want exactly one", winners)
			}
			d, err := s.Driver(ctx, "d1")
			if err != nil {
				t.Fatal(err)
			}
			if d.Status != store.StatusReserved || d.TripID != winners[0] || d.Version != before.Version+1 {
				t.Fatalf("driver %+v, want reserved by %s at version %d", d, winners[0], before.Version+1)
			}
		})
	}
}

func testTrips(t *testing.T, newStore func(t *testing.T) store.Store) {
	t.Run("create stores the record at version 1", func(t *testing.T) {
		s, ctx, _ := setup(t, newStore)
		got, created, err := s.CreateTrip(ctx, store.TripRecord{ID: "t1", Version: 7, Data: []byte("first")})
		if err != nil || !created {
			t.Fatalf("CreateTrip: created %v, err %v; want created", created, err)
		}
		want := store.TripRecord{ID: "t1", Version: 1, Data: []byte("first")}
		checkTrip(t, "CreateTrip", got, want)
		got, err = s.Trip(ctx, "t1")
		if err != nil {
			t.Fatal(err)
		}
		checkTrip(t, "Trip", got, want)
	})

	t.Run("create twice returns the first record, not created", func(t *testing.T) {
		s, ctx, _ := setup(t, newStore)
		if _, _, err := s.CreateTrip(ctx, store.TripRecord{ID: "t1", Data: []byte("first")}); err != nil {
			t.Fatal(err)
		}
		got, created, err := s.CreateTrip(ctx, store.TripRecord{ID: "t1", Data: []byte("second")})
		if err != nil || created {
			t.Fatalf("second CreateTrip: created %v, err %v; want not created", created, err)
		}
		checkTrip(t, "second CreateTrip", got, store.TripRecord{ID: "t1", Version: 1, Data: []byte("first")})
	})

	t.Run("create after an update returns the current record", func(t *testing.T) {
		s, ctx, _ := setup(t, newStore)
		rec, _, err := s.CreateTrip(ctx, store.TripRecord{ID: "t1", Data: []byte("v1")})
		if err != nil {
			t.Fatal(err)
		}
		rec.Data = []byte("v2")
		if _, err := s.UpdateTrip(ctx, rec); err != nil {
			t.Fatal(err)
		}
		got, created, err := s.CreateTrip(ctx, store.TripRecord{ID: "t1", Data: []byte("again")})
		if err != nil || created {
			t.Fatalf("CreateTrip: created %v, err %v", created, err)
		}
		checkTrip(t, "CreateTrip", got, store.TripRecord{ID: "t1", Version: 2, Data: []byte("v2")})
	})

	t.Run("an unknown trip is not found", func(t *testing.T) {
		s, ctx, _ := setup(t, newStore)
		if _, err := s.Trip(ctx, "nope"); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("Trip: err = %v, want ErrNotFound", err)
		}
		if _, err := s.UpdateTrip(ctx, store.TripRecord{ID: "nope", Version: 1}); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("UpdateTrip: err = %v, want ErrNotFound", err)
		}
	})

	t.Run("update at the stored version replaces and bumps it", func(t *testing.T) {
		s, ctx, _ := setup(t, newStore)
		rec, _, err := s.CreateTrip(ctx, store.TripRecord{ID: "t1", Data: []byte("requested")})
		if err != nil {
			t.Fatal(err)
		}
		rec.Data = []byte("offered")
		got, err := s.UpdateTrip(ctx, rec)
		if err != nil {
			t.Fatal(err)
		}
		want := store.TripRecord{ID: "t1", Version: 2, Data: []byte("offered")}
		checkTrip(t, "UpdateTrip", got, want)
		stored, err := s.Trip(ctx, "t1")
		if err != nil {
			t.Fatal(err)
		}
		checkTrip(t, "Trip", stored, want)
	})

	t.Run("update at a stale version conflicts and changes nothing", func(t *testing.T) {
		s, ctx, _ := setup(t, newStore)
		rec, _, err := s.CreateTrip(ctx, store.TripRecord{ID: "t1", Data: []byte("requested")})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := s.UpdateTrip(ctx, store.TripRecord{ID: "t1", Version: 1, Data: []byte("offered")}); err != nil {
			t.Fatal(err)
		}
		rec.Data = []byte("stale")
		if _, err := s.UpdateTrip(ctx, rec); !errors.Is(err, store.ErrConflict) {
			t.Fatalf("stale UpdateTrip: err = %v, want ErrConflict", err)
		}
		stored, err := s.Trip(ctx, "t1")
		if err != nil {
			t.Fatal(err)
		}
		checkTrip(t, "Trip", stored, store.TripRecord{ID: "t1", Version: 2, Data: []byte("offered")})
	})

	t.Run("a final trip is not updated again", func(t *testing.T) {
		s, ctx, _ := setup(t, newStore)
		rec, _, err := s.CreateTrip(ctx, store.TripRecord{ID: "t1", Data: []byte("requested")})
		if err != nil {
			t.Fatal(err)
		}
		rec.Final, rec.Data = true, []byte("cancelled")
		if rec, err = s.UpdateTrip(ctx, rec); err != nil {
			t.Fatal(err)
		}
		rec.Final, rec.Data = false, []byte("revived")
		if _, err := s.UpdateTrip(ctx, rec); !errors.Is(err, store.ErrConflict) {
			t.Fatalf("UpdateTrip of a final trip: err = %v, want ErrConflict", err)
		}
		stored, err := s.Trip(ctx, "t1")
		if err != nil {
			t.Fatal(err)
		}
		checkTrip(t, "Trip", stored, store.TripRecord{ID: "t1", Version: 2, Final: true, Data: []byte("cancelled")})
	})

	t.Run("the store keeps its own copy of the data", func(t *testing.T) {
		s, ctx, _ := setup(t, newStore)
		data := []byte("requested")
		if _, _, err := s.CreateTrip(ctx, store.TripRecord{ID: "t1", Data: data}); err != nil {
			t.Fatal(err)
		}
		data[0] = 'X'
		got, err := s.Trip(ctx, "t1")
		if err != nil {
			t.Fatal(err)
		}
		got.Data[0] = 'Y'
		again, err := s.Trip(ctx, "t1")
		if err != nil {
			t.Fatal(err)
		}
		checkTrip(t, "Trip", again, store.TripRecord{ID: "t1", Version: 1, Data: []byte("requested")})
	})
}

func checkTrip(t *testing.T, where string, got, want store.TripRecord) {
	t.Helper()
	if got.ID != want.ID || got.Version != want.Version || got.Final != want.Final || !bytes.Equal(got.Data, want.Data) {
		t.Fatalf("%s = {%s v%d final %v %q}, want {%s v%d final %v %q}",
			where, got.ID, got.Version, got.Final, got.Data, want.ID, want.Version, want.Final, want.Data)
	}
}

// testCreateTripRace is the idempotency check under concurrency: retries of
// one ride request racing each other create the trip once.
func testCreateTripRace(t *testing.T, newStore func(t *testing.T) store.Store) {
	t.Run("20 concurrent creates of one id: exactly one created, all see its record", func(t *testing.T) {
		s, ctx, _ := setup(t, newStore)
		const n = 20
		type result struct {
			rec     store.TripRecord
			created bool
			err     error
		}
		results := make([]result, n)
		var wg sync.WaitGroup
		start := make(chan struct{})
		for i := range n {
			wg.Go(func() {
				<-start
				rec, created, err := s.CreateTrip(ctx, store.TripRecord{ID: "t1", Data: fmt.Appendf(nil, "attempt %d", i)})
				results[i] = result{rec, created, err}
			})
		}
		close(start)
		wg.Wait()
		var winner []byte
		for i, r := range results {
			if r.err != nil {
				t.Fatalf("create %d: %v", i, r.err)
			}
			if r.created {
				if winner != nil {
					t.Fatalf("create %d also created the trip", i)
				}
				winner = r.rec.Data
			}
		}
		if winner == nil {
			t.Fatal("no create created the trip")
		}
		for i, r := range results {
			checkTrip(t, fmt.Sprintf("create %d", i), r.rec, store.TripRecord{ID: "t1", Version: 1, Data: winner})
		}
	})
}

// testUpdateTripRace: writers that read the same version race; one wins.
func testUpdateTripRace(t *testing.T, newStore func(t *testing.T) store.Store) {
	t.Run("10 concurrent updates at one version: exactly one wins", func(t *testing.T) {
		s, ctx, _ := setup(t, newStore)
		rec, _, err := s.CreateTrip(ctx, store.TripRecord{ID: "t1", Data: []byte("requested")})
		if err != nil {
			t.Fatal(err)
		}
		const n = 10
		var (
			wg   sync.WaitGroup
			mu   sync.Mutex
			wins int
			errs []error
		)
		start := make(chan struct{})
		for i := range n {
			wg.Go(func() {
				<-start
				r := rec
				r.Data = fmt.Appendf(nil, "writer %d", i)
				_, err := s.UpdateTrip(ctx, r)
				mu.Lock()
				defer mu.Unlock()
				switch {
				case err == nil:
					wins++
				case !errors.Is(err, store.ErrConflict):
					errs = append(errs, err)
				}
			})
		}
		close(start)
		wg.Wait()
		if len(errs) > 0 || wins != 1 {
			t.Fatalf("%d winners, errors %v; want exactly one winner", wins, errs)
		}
		if got, err := s.Trip(ctx, "t1"); err != nil || got.Version != 2 {
			t.Fatalf("Trip = %+v, %v; want version 2", got, err)
		}
	})
}

func testActiveTrips(t *testing.T, newStore func(t *testing.T) store.Store) {
	t.Run("unfinished trips are active; final ones leave", func(t *testing.T) {
		s, ctx, _ := setup(t, newStore)
		for _, id := range []string{"t1", "t2", "t3", "t4"} {
			if _, _, err := s.CreateTrip(ctx, store.TripRecord{ID: id, Data: []byte(id)}); err != nil {
				t.Fatal(err)
			}
		}
		if _, _, err := s.CreateTrip(ctx, store.TripRecord{ID: "t5", Final: true}); err != nil {
			t.Fatal(err)
		}
		if _, err := s.UpdateTrip(ctx, store.TripRecord{ID: "t2", Version: 1, Final: true}); err != nil {
			t.Fatal(err)
		}
		if _, err := s.UpdateTrip(ctx, store.TripRecord{ID: "t3", Version: 1, Data: []byte("t3 offered")}); err != nil {
			t.Fatal(err)
		}
		got, err := s.ActiveTrips(ctx, 100)
		if err != nil {
			t.Fatal(err)
		}
		slices.SortFunc(got, func(a, b store.TripRecord) int { return cmp.Compare(a.ID, b.ID) })
		want := []store.TripRecord{
			{ID: "t1", Version: 1, Data: []byte("t1")},
			{ID: "t3", Version: 2, Data: []byte("t3 offered")},
			{ID: "t4", Version: 1, Data: []byte("t4")},
		}
		if len(got) != len(want) {
			t.Fatalf("ActiveTrips = %v, want %v", ids(got), ids(want))
		}
		for i := range want {
			checkTrip(t, "ActiveTrips", got[i], want[i])
		}
	})

	t.Run("at most limit trips are returned", func(t *testing.T) {
		s, ctx, _ := setup(t, newStore)
		all := map[string]bool{}
		for i := range 10 {
			id := fmt.Sprintf("t%d", i)
			all[id] = true
			if _, _, err := s.CreateTrip(ctx, store.TripRecord{ID: id}); err != nil {
				t.Fatal(err)
			}
		}
		got, err := s.ActiveTrips(ctx, 3)
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != 3 {
			t.Fatalf("ActiveTrips(3) returned %d trips", len(got))
		}
		for _, rec := range got {
			if !all[rec.ID] {
				t.Fatalf("ActiveTrips(3) returned unknown or repeated trip %s", rec.ID)
			}
			delete(all, rec.ID)
		}
	})

	t.Run("a non-positive limit is an error", func(t *testing.T) {
		s, ctx, _ := setup(t, newStore)
		if _, err := s.ActiveTrips(ctx, 0); err == nil {
			t.Fatal("ActiveTrips(0) succeeded")
		}
	})
}

func ids(recs []store.TripRecord) []string {
	out := make([]string, len(recs))
	for i, r := range recs {
		out[i] = r.ID
	}
	return out
}

func testPositions(t *testing.T, newStore func(t *testing.T) store.Store) {
	t.Run("positions read back at full precision", func(t *testing.T) {
		s, ctx, _ := setup(t, newStore)
		ps := []store.Position{
			{DriverID: "a", Lat: 52.520008123456789, Lng: 13.404954987654321, TimestampMs: 1_700_000_000_123},
			{DriverID: "b", Lat: -33.8688, Lng: 151.2093, TimestampMs: 1_700_000_000_456},
			{DriverID: "c", Lat: 1e-9, Lng: -0.1, TimestampMs: 1},
			{DriverID: "d", Lat: -90, Lng: math.Nextafter(180, 0), TimestampMs: math.MaxInt64 / 4096},
			{DriverID: "e", Lat: 40.7, Lng: -74, TimestampMs: 5, Status: 3, VehicleClass: "xl,pet-friendly"},
			{DriverID: "f", Lat: 40.7, Lng: -74, TimestampMs: 6, Status: 1},
		}
		if err := s.SavePositions(ctx, 7, ps); err != nil {
			t.Fatal(err)
		}
		checkPositions(t, ctx, s, 7, ps)
	})

	t.Run("a newer timestamp replaces, an older one is ignored", func(t *testing.T) {
		s, ctx, _ := setup(t, newStore)
		save := func(ps ...store.Position) {
			t.Helper()
			if err := s.SavePositions(ctx, 1, ps); err != nil {
				t.Fatal(err)
			}
		}
		save(store.Position{DriverID: "a", Lat: 1, Lng: 1, TimestampMs: 100})
		save(store.Position{DriverID: "a", Lat: 2, Lng: 2, TimestampMs: 50})
		checkPositions(t, ctx, s, 1, []store.Position{{DriverID: "a", Lat: 1, Lng: 1, TimestampMs: 100}})
		save(store.Position{DriverID: "a", Lat: 3, Lng: 3, TimestampMs: 200})
		checkPositions(t, ctx, s, 1, []store.Position{{DriverID: "a", Lat: 3, Lng: 3, TimestampMs: 200}})
		// Within one batch too, whatever the order.
		save(store.Position{DriverID: "a", Lat: 5, Lng: 5, TimestampMs: 400},
			store.Position{DriverID: "a", Lat: 4, Lng: 4, TimestampMs: 300})
		checkPositions(t, ctx, s, 1, []store.Position{{DriverID: "a", Lat: 5, Lng: 5, TimestampMs: 400}})
	})

	t.Run("delete forgets only the drivers named", func(t *testing.T) {
		s, ctx, _ := setup(t, newStore)
		ps := []store.Position{
			{DriverID: "a", Lat: 1, Lng: 1, TimestampMs: 1},
			{DriverID: "b", Lat: 2, Lng: 2, TimestampMs: 2},
			{DriverID: "c", Lat: 3, Lng: 3, TimestampMs: 3},
		}
		if err := s.SavePositions(ctx, 1, ps); err != nil {
			t.Fatal(err)
		}
		if err := s.DeletePositions(ctx, 1, []string{"a", "c", "unknown"}); err != nil {
			t.Fatal(err)
		}
		checkPositions(t, ctx, s, 1, ps[1:2])
		if err := s.DeletePositions(ctx, 1, nil); err != nil {
			t.Fatalf("DeletePositions with no ids: %v", err)
		}
		// A deleted driver starts afresh: an old timestamp is accepted.
		if err := s.SavePositions(ctx, 1, ps[:1]); err != nil {
			t.Fatal(err)
		}
		checkPositions(t, ctx, s, 1, ps[:2])
	})

	t.Run("shards with positions are listed", func(t *testing.T) {
		s, ctx, _ := setup(t, newStore)
		if got, err := s.PositionShards(ctx, 10); err != nil || len(got) != 0 {
			t.Fatalf("PositionShards of an empty store = %v, %v", got, err)
		}
		p := []store.Position{{DriverID: "a", Lat: 1, Lng: 1, TimestampMs: 1}}
		for _, shard := range []uint64{0x872a1072bffffff, 3, 0x85283473fffffff} {
			if err := s.SavePositions(ctx, shard, p); err != nil {
				t.Fatal(err)
			}
		}
		got, err := s.PositionShards(ctx, 10)
		if err != nil || !slices.Equal(got, []uint64{3, 0x85283473fffffff, 0x872a1072bffffff}) {
			t.Fatalf("PositionShards = %v, %v", got, err)
		}
		if got, err := s.PositionShards(ctx, 2); err != nil || len(got) > 2 {
			t.Fatalf("PositionShards(limit 2) = %v, %v", got, err)
		}
		if err := s.DeletePositions(ctx, 3, []string{"a"}); err != nil {
			t.Fatal(err)
		}
		if got, _ := s.PositionShards(ctx, 10); slices.Contains(got, 3) {
			t.Fatalf("PositionShards after the shard's last driver was deleted = %v", got)
		}
	})

	t.Run("positions are grouped by shard", func(t *testing.T) {
		s, ctx, _ := setup(t, newStore)
		inOne := []store.Position{{DriverID: "a", Lat: 1, Lng: 1, TimestampMs: 1}}
		inTwo := []store.Position{
			{DriverID: "a", Lat: 2, Lng: 2, TimestampMs: 1},
			{DriverID: "b", Lat: 2, Lng: 2, TimestampMs: 1},
		}
		const big = uint64(0x85283473fffffff) // an H3 cell id
		if err := s.SavePositions(ctx, 1, inOne); err != nil {
			t.Fatal(err)
		}
		if err := s.SavePositions(ctx, big, inTwo); err != nil {
			t.Fatal(err)
		}
		if err := s.SavePositions(ctx, 3, nil); err != nil {
			t.Fatalf("SavePositions with no positions: %v", err)
		}
		checkPositions(t, ctx, s, 1, inOne)
		checkPositions(t, ctx, s, big, inTwo)
		checkPositions(t, ctx, s, 3, nil)
		if err := s.DeletePositions(ctx, big, []string{"a"}); err != nil {
			t.Fatal(err)
		}
		checkPositions(t, ctx, s, 1, inOne)
	})
}

func checkPositions(t *testing.T, ctx context.Context, s store.Store, shard uint64, want []store.Position) {
	t.Helper()
	got, err := s.Positions(ctx, shard)
	if err != nil {
		t.Fatal(err)
	}
	byID := func(a, b store.Position) int { return cmp.Compare(a.DriverID, b.DriverID) }
	got = slices.Clone(got)
	want = slices.Clone(want)
	slices.SortFunc(got, byID)
	slices.SortFunc(want, byID)
	if !slices.Equal(got, want) {
		t.Fatalf("Positions(%d) = %v, want %v", shard, got, want)
	}
}

// eventWait bounds waiting for an event that must arrive.
const eventWait = 5 * time.Second

func testEvents(t *testing.T, newStore func(t *testing.T) store.Store) {
	t.Run("two subscribers both get an event", func(t *testing.T) {
		s, ctx, _ := setup(t, newStore)
		a, err := s.Subscribe(ctx)
		if err != nil {
			t.Fatal(err)
		}
		b, err := s.Subscribe(ctx)
		if err != nil {
			t.Fatal(err)
		}
		want := store.Event{Kind: store.EventOffer, DriverID: "d1", TripID: "t1", Data: []byte(`{"offer":1}`)}
		if err := s.Publish(ctx, want); err != nil {
			t.Fatal(err)
		}
		for name, ch := range map[string]<-chan store.Event{"first": a, "second": b} {
			got, ok := receive(ch, eventWait)
			if !ok {
				t.Fatalf("%s subscriber: no event within %v", name, eventWait)
			}
			if got.Kind != want.Kind || got.DriverID != want.DriverID || got.TripID != want.TripID || !bytes.Equal(got.Data, want.Data) {
				t.Fatalf("%s subscriber got %+v, want %+v", name, got, want)
			}
		}
	})

	t.Run("a cancelled subscription closes its channel", func(t *testing.T) {
		s, ctx, _ := setup(t, newStore)
		subCtx, cancel := context.WithCancel(ctx)
		ch, err := s.Subscribe(subCtx)
		if err != nil {
			t.Fatal(err)
		}
		other, err := s.Subscribe(ctx)
		if err != nil {
			t.Fatal(err)
		}
		cancel()
		waitClosed(t, ch)
		// The others keep working.
		if err := s.Publish(ctx, store.Event{Kind: store.EventTrip, TripID: "t1"}); err != nil {
			t.Fatal(err)
		}
		if _, ok := receive(other, eventWait); !ok {
			t.Fatal("remaining subscriber got nothing")
		}
	})

	t.Run("closing the store closes subscriptions", func(t *testing.T) {
		s, ctx, _ := setup(t, newStore)
		ch, err := s.Subscribe(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
		waitClosed(t, ch)
	})

	t.Run("a subscriber that does not read never blocks publishers", func(t *testing.T) {
		s, ctx, _ := setup(t, newStore)
		stuck, err := s.Subscribe(ctx)
		if err != nil {
			t.Fatal(err)
		}
		_ = stuck
		// More than any default buffer: publishers must not wait for it.
		const n = 1100
		for i := range n {
			if err := s.Publish(ctx, store.Event{Kind: store.EventTrip, TripID: fmt.Sprint(i)}); err != nil {
				t.Fatalf("publish %d: %v", i, err)
			}
		}
		// A subscriber that drains catches up with what comes next.
		fresh, err := s.Subscribe(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if err := s.Publish(ctx, store.Event{Kind: store.EventTrip, TripID: "marker"}); err != nil {
			t.Fatal(err)
		}
		for {
			e, ok := receive(fresh, eventWait)
			if !ok {
				t.Fatal("no marker event")
			}
			if e.TripID == "marker" {
				break
			}
		}
	})
}

// receive waits up to d for an event.
func receive(ch <-chan store.Event, d time.Duration) (store.Event, bool) {
	timer := time.NewTimer(d)
	defer timer.Stop()
	select {
	case e, ok := <-ch:
		return e, ok
	case <-timer.C:
		return store.Event{}, false
	}
}

// waitClosed drains ch until it is closed, failing after eventWait.
func waitClosed(t *testing.T, ch <-chan store.Event) {
	t.Helper()
	timer := time.NewTimer(eventWait)
	defer timer.Stop()
	for {
		select {
		case _, ok := <-ch:
			if !ok {
				return
			}
		case <-timer.C:
			t.Fatalf("channel not closed within %v", eventWait)
		}
	}
}

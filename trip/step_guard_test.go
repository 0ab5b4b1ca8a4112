package trip

import (
	"math"
	"reflect"
	"strings"
	"testing"
	"time"
)

// TestOfferGuards checks that an offer is refused without a driver, an
// offer id, an expiry after the event, or a usable pickup distance.
func TestOfferGuards(t *testing.T) {
	ok := offerEv("d1", "o1", 1)
	tests := []struct {
		name   string
		modify func(*Event)
		reason string // part of the refusal's reason
	}{
		{"no driver", func(e *Event) { e.Driver = "" }, "no driver"},
		{"no offer id", func(e *Event) { e.OfferID = "" }, "no offer id"},
		{"no expiry", func(e *Event) { e.ExpiresAt = time.Time{} }, "no expiry"},
		{"expires when made", func(e *Event) { e.ExpiresAt = e.At }, "not after"},
		{"expired before made", func(e *Event) { e.ExpiresAt = e.At.Add(-time.Second) }, "not after"},
		{"negative distance", func(e *Event) { e.PickupDistanceM = -1 }, "pickup distance"},
		{"NaN distance", func(e *Event) { e.PickupDistanceM = math.NaN() }, "pickup distance"},
		{"infinite distance", func(e *Event) { e.PickupDistanceM = math.Inf(1) }, "pickup distance"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := ok
			tt.modify(&e)
			before := newTrip()
			got, err := before.Step(e)
			wantRefused(t, before, e, got, err)
			if err != nil && !strings.Contains(err.Error(), tt.reason) {
				t.Errorf("error %q does not say %q", err, tt.reason)
			}
		})
	}
	// Zero At: no clock to compare the expiry with; a zero distance is a
	// driver standing at the pickup.
	e := ok
	e.At, e.PickupDistanceM = time.Time{}, 0
	got := mustStep(t, newTrip(), e)
	if got.State != StateOffered || !got.UpdatedAt.Equal(t0) {
		t.Errorf("offer with zero At: state %v, updated %v", got.State, got.UpdatedAt)
	}
}

// TestOfferRecordsTheOffer checks the fields an offer sets.
func TestOfferRecordsTheOffer(t *testing.T) {
	got := mustStep(t, newTrip(), offerEv("d1", "o1", 1))
	want := newTrip()
	want.State, want.Driver, want.OfferID = StateOffered, "d1", "o1"
	want.OfferExpiresAt, want.PickupDistanceM, want.Attempts, want.UpdatedAt = at(16), 420, 1, at(1)
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got  %+v\nwant %+v", got, want)
	}
	if got.HeldDriver() != "d1" {
		t.Errorf("HeldDriver %q, want d1", got.HeldDriver())
	}
}

// TestDeclineAndExpiryReturnTheTripToRequested checks that a declined or
// expired offer puts its driver in Tried, clears the offer, keeps the
// attempt counted, counts the outcome and releases the driver.
func TestDeclineAndExpiryReturnTheTripToRequested(t *testing.T) {
	for _, e := range []Event{declineEv("d1", "o1", 5), expiredEv("o1", 16)} {
		t.Run(e.Kind.String(), func(t *testing.T) {
			offered := tripIn(t, StateOffered)
			got := mustStep(t, offered, e)
			want := newTrip()
			want.Attempts, want.Tried, want.UpdatedAt = 1, []string{"d1"}, e.At
			if e.Kind == EventDecline {
				want.Declined = 1
			} else {
				want.Expired = 1
			}
			if !reflect.DeepEqual(got, want) {
				t.Errorf("got  %+v\nwant %+v", got, want)
			}
			if r := ReleasedDriver(offered, got); r != "d1" {
				t.Errorf("ReleasedDriver %q, want d1", r)
			}
		})
	}
}

// TestNoDriverIsOfferedTwice checks that a driver in Tried is refused and
// another driver is not.
func TestNoDriverIsOfferedTwice(t *testing.T) {
	tr := mustStep(t, newTrip(), offerEv("d1", "o1", 1), declineEv("d1", "o1", 2))
	e := offerEv("d1", "o2", 3)
	got, err := tr.Step(e)
	wantRefused(t, tr, e, got, err)
	tr = mustStep(t, tr, offerEv("d2", "o2", 3), expiredEv("o2", 20))
	for _, d := range []string{"d1", "d2"} {
		e := offerEv(d, "o3", 21)
		got, err := tr.Step(e)
		wantRefused(t, tr, e, got, err)
	}
	tr = mustStep(t, tr, offerEv("d3", "o3", 21))
	if !reflect.DeepEqual(tr.Tried, []string{"d1", "d2"}) || tr.Attempts != 3 {
		t.Errorf("tried %v after %d attempts", tr.Tried, tr.Attempts)
	}
}

// TestOffersStopAtMaxAttempts checks that the MaxAttempts+1st offer is
// refused and that the trip can still give up.
func TestOffersStopAtMaxAttempts(t *testing.T) {
	tr := newTrip()
	for i := range MaxAttempts {
		d, o := "d"+string(rune('a'+i)), "o"+string(rune('a'+i))
		tr = mustStep(t, tr, offerEv(d, o, 2*i+1), declineEv(d, o, 2*i+2))
	}
	if tr.Attempts != MaxAttempts || len(tr.Tried) != MaxAttempts {
		t.Fatalf("attempts %d, tried %v", tr.Attempts, tr.Tried)
	}
	e := offerEv("fresh", "o-last", 100)
	got, err := tr.Step(e)
	wantRefused(t, tr, e, got, err)
	if err != nil && !strings.Contains(err.Error(), "attempts") {
		t.Errorf("error %q does not mention attempts", err)
	}
	tr = mustStep(t, tr, giveUpEv(101))
	if tr.State != StateNoDriver || tr.Reason != "no candidates" {
		t.Errorf("state %v, reason %q", tr.State, tr.Reason)
	}
}

// TestAnswersMustMatchThePendingOffer checks that accept, decline and
// offer_expired name the pending offer and its driver.
func TestAnswersMustMatchThePendingOffer(t *testing.T) {
	tests := []struct {
		name string
		e    Event
		ok   bool
	}{
		{"accept from another driver", acceptEv("d2", "o1", 5), false},
		{"accept of another offer", acceptEv("d1", "o2", 5), false},
		{"accept without driver", acceptEv("", "o1", 5), false},
		{"accept without offer id", acceptEv("d1", "", 5), false},
		{"decline from another driver", declineEv("d2", "o1", 5), false},
		{"decline of another offer", declineEv("d1", "o2", 5), false},
		{"decline without driver", declineEv("", "o1", 5), false},
		{"expiry of another offer", expiredEv("o2", 16), false},
		{"expiry without offer id", expiredEv("", 16), false},
		{"expiry naming another driver", Event{Kind: EventOfferExpired, Driver: "d2", OfferID: "o1", At: at(16)}, false},
		{"expiry naming the driver", Event{Kind: EventOfferExpired, Driver: "d1", OfferID: "o1", At: at(16)}, true},
		{"expiry without driver", expiredEv("o1", 16), true},
		{"accept", acceptEv("d1", "o1", 5), true},
		{"decline", declineEv("d1", "o1", 5), true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := tripIn(t, StateOffered)
			got, err := before.Step(tt.e)
			if tt.ok {
				if err != nil {
					t.Fatalf("refused: %v", err)
				}
				return
			}
			wantRefused(t, before, tt.e, got, err)
		})
	}
}

// TestAcceptIsNotTimed checks that Step leaves the offer's deadline to the
// caller: an accept applied after OfferExpiresAt (the store granted it in
// time, the trip record is written later) still assigns the trip, and once
// an offer_expired has closed the offer, a late accept is refused.
func TestAcceptIsNotTimed(t *testing.T) {
	offered := tripIn(t, StateOffered) // expires at 16 s
	got := mustStep(t, offered, acceptEv("d1", "o1", 17))
	if got.State != StateAssigned {
		t.Errorf("state %v, want assigned", got.State)
	}
	expired := mustStep(t, offered, expiredEv("o1", 16))
	e := acceptEv("d1", "o1", 17)
	got, err := expired.Step(e)
	wantRefused(t, expired, e, got, err)
}

// TestStaleAnswersAfterANewOfferRefused checks that answers to an earlier
// offer cannot touch the offer made after it.
func TestStaleAnswersAfterANewOfferRefused(t *testing.T) {
	tr := mustStep(t, newTrip(),
		offerEv("d1", "o1", 1), expiredEv("o1", 16), offerEv("d2", "o2", 17))
	for _, e := range []Event{
		acceptEv("d1", "o1", 18), declineEv("d1", "o1", 18), expiredEv("o1", 18),
		acceptEv("d2", "o1", 18), acceptEv("d1", "o2", 18),
	} {
		got, err := tr.Step(e)
		wantRefused(t, tr, e, got, err)
	}
	tr = mustStep(t, tr, acceptEv("d2", "o2", 18))
	if tr.Driver != "d2" || !reflect.DeepEqual(tr.Tried, []string{"d1"}) {
		t.Errorf("driver %q, tried %v", tr.Driver, tr.Tried)
	}
}

// TestOnlyTheAssignedDriverDrives checks that pick_up, complete and a
// driver's cancel must come from the trip's driver.
func TestOnlyTheAssignedDriverDrives(t *testing.T) {
	cases := []struct {
		from State
		e    Event
	}{
		{StateAssigned, pickUpEv("d2", 10)},
		{StateAssigned, pickUpEv("", 10)},
		{StatePickedUp, completeEv("d2", 10)},
		{StatePickedUp, completeEv("", 10)},
		{StateAssigned, driverCancelEv("d2", 10)},
		{StatePickedUp, driverCancelEv("d2", 10)},
		{StatePickedUp, driverCancelEv("", 10)},
	}
	for _, c := range cases {
		before := tripIn(t, c.from)
		got, err := before.Step(c.e)
		wantRefused(t, before, c.e, got, err)
	}
}

// TestCancelRules checks who may cancel when: the rider until pickup, the
// driver from assignment until completion, never the merely offered driver.
func TestCancelRules(t *testing.T) {
	offered := tripIn(t, StateOffered)
	e := driverCancelEv("d1", 5)
	got, err := offered.Step(e)
	wantRefused(t, offered, e, got, err)
	if err != nil && !strings.Contains(err.Error(), "declines") {
		t.Errorf("error %q does not point the driver to decline", err)
	}

	picked := tripIn(t, StatePickedUp)
	e = riderCancelEv(5)
	got, err = picked.Step(e)
	wantRefused(t, picked, e, got, err)

	// A rider's cancel of an offered trip withdraws the offer.
	got = mustStep(t, offered, riderCancelEv(5))
	if got.Driver != "" || got.OfferID != "" || !reflect.DeepEqual(got.Tried, []string{"d1"}) {
		t.Errorf("cancelled offered trip keeps the offer: %+v", got)
	}
	// A cancelled assigned trip keeps its driver as a record, but holds none.
	got = mustStep(t, tripIn(t, StateAssigned), driverCancelEv("d1", 5))
	if got.Driver != "d1" || got.HeldDriver() != "" {
		t.Errorf("driver %q, held %q", got.Driver, got.HeldDriver())
	}
}

// TestReasons checks the Reason of ended trips: who cancelled, and why.
func TestReasons(t *testing.T) {
	tests := []struct {
		from State
		e    Event
		want string
	}{
		{StateRequested, riderCancelEv(5), "cancelled by rider: changed plans"},
		{StateRequested, Event{Kind: EventCancel}, "cancelled by rider"},
		{StateAssigned, driverCancelEv("d1", 5), "cancelled by driver: flat tyre"},
		{StateAssigned, Event{Kind: EventCancel, ByDriver: true, Driver: "d1"}, "cancelled by driver"},
		{StateRequested, giveUpEv(5), "no candidates"},
		{StateOffered, Event{Kind: EventGiveUp}, "no driver"},
	}
	for _, tt := range tests {
		got := mustStep(t, tripIn(t, tt.from), tt.e)
		if got.Reason != tt.want {
			t.Errorf("%v in %v: reason %q, want %q", tt.e.Kind, tt.from, got.Reason, tt.want)
		}
	}
}

// TestUpdatedAtNeverMovesBackwards checks that an event earlier than the
// last update, or without a time, leaves UpdatedAt where it is.
func TestUpdatedAtNeverMovesBackwards(t *testing.T) {
	tr := mustStep(t, newTrip(), offerEv("d1", "o1", 10))
	got := mustStep(t, tr, declineEv("d1", "o1", 4))
	if !got.UpdatedAt.Equal(at(10)) {
		t.Errorf("earlier event: UpdatedAt %v, want %v", got.UpdatedAt, at(10))
	}
	got = mustStep(t, tr, Event{Kind: EventDecline, Driver: "d1", OfferID: "o1"})
	if !got.UpdatedAt.Equal(at(10)) {
		t.Errorf("zero At: UpdatedAt %v, want %v", got.UpdatedAt, at(10))
	}
	if !got.CreatedAt.Equal(t0) {
		t.Errorf("CreatedAt moved to %v", got.CreatedAt)
	}
}

// TestStepSharesNoMemory checks value semantics: two steps from the same
// trip, whose Tried has spare capacity, do not see each other's appends, and
// changing a result's Tried does not change the receiver.
func TestStepSharesNoMemory(t *testing.T) {
	base := mustStep(t, newTrip(), offerEv("d1", "o1", 1), declineEv("d1", "o1", 2), offerEv("d2", "o2", 3))
	base.Tried = append(make([]string, 0, 8), base.Tried...)
	snapshot := base.Clone()

	a := mustStep(t, base, declineEv("d2", "o2", 4))
	b := mustStep(t, base, riderCancelEv(4))
	a.Tried[0] = "mutated"
	if !reflect.DeepEqual(base, snapshot) {
		t.Errorf("receiver changed: %+v", base)
	}
	if !reflect.DeepEqual(b.Tried, []string{"d1", "d2"}) {
		t.Errorf("sibling step changed: tried %v", b.Tried)
	}
	c := mustStep(t, base, acceptEv("d2", "o2", 4))
	c.Tried[0] = "mutated"
	if base.Tried[0] != "d1" {
		t.Errorf("a step that does not change Tried still shares it")
	}
}

// TestTransitionErrorMessage checks the error text callers log.
func TestTransitionErrorMessage(t *testing.T) {
	_, err := tripIn(t, StateOffered).Step(acceptEv("d2", "o1", 5))
	want := `invalid trip transition: accept in state offered: accept from driver "d2" but the offer is to d1`
	if err == nil || err.Error() != want {
		t.Errorf("got  %v\nwant %s", err, want)
	}
}

// TestHeldDriver checks which driver a trip holds in each state.
func TestHeldDriver(t *testing.T) {
	want := map[State]string{
		StateUnspecified: "", StateRequested: "", StateOffered: "d1", StateAssigned: "d1",
		StatePickedUp: "d1", StateCompleted: "", StateCancelled: "", StateNoDriver: "",
	}
	for s, w := range want {
		if got := tripIn(t, s).HeldDriver(); got != w {
			t.Errorf("%v: HeldDriver %q, want %q", s, got, w)
		}
	}
}

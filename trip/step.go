package trip

import (
	"math"
	"time"
)

// Step applies e to the trip. On success it returns the next trip; t itself
// is never modified and the result shares no memory with it (Tried is
// copied), so a caller may keep both, e.g. to write the next one with a
// compare-and-swap on the previous. On refusal it returns t unchanged and a
// *TransitionError (errors.Is(err, ErrTransition)), so `t, err = t.Step(e)`
// is safe either way.
//
// The transitions (anything else is refused, and final states refuse
// everything):
//
//	requested --offer-------------------> offered    (Attempts+1)
//	offered   --accept------------------> assigned
//	offered   --decline, offer_expired--> requested  (Driver moves to Tried)
//	requested, offered --give_up--------> no_driver
//	requested, offered, assigned --cancel (rider)--> cancelled
//	assigned, picked_up --cancel (driver)----------> cancelled
//	assigned  --pick_up-----------------> picked_up
//	picked_up --complete----------------> completed
//
// Cancelling: the rider may cancel until pickup; once in the car the trip
// ends only by completion or by the driver cancelling. The driver may cancel
// from acceptance until completion; a driver who is only offered the trip
// declines instead (a cancel from them is refused, so an offer can never
// cancel a rider's request).
//
// Guards: an offer needs a Driver, an OfferID, an ExpiresAt after At, and a
// finite PickupDistanceM >= 0; it is refused when Attempts has reached
// MaxAttempts or the driver is in Tried. Answers to an offer (accept,
// decline, offer_expired) must name the pending OfferID and its driver (for
// offer_expired the driver is optional). pick_up, complete and a driver's
// cancel must come from the trip's driver.
//
// Step does not time offers: an accept is valid until an offer_expired
// closes the offer, whatever its At. The deadline is the caller's to
// enforce where it is arbitrated (dispatch moves the driver reserved ->
// on_trip in the store only before OfferExpiresAt, then applies the accept,
// possibly a little later); a second clock check here could refuse an
// accept the store already granted.
//
// Releasing drivers: a trip holds a driver while offered (reserved) and
// while assigned or picked up (on trip); see HeldDriver. These transitions
// free the held driver, who must then be made available again by the
// caller (ReleasedDriver(before, after) names them):
//
//	offered  --decline, offer_expired, give_up, cancel--> (reservation released)
//	assigned, picked_up --cancel-----------------------> (driver released)
//	picked_up --complete-------------------------------> (driver released)
//
// UpdatedAt becomes e.At when it is later; it never moves backwards, so a
// caller whose clocks disagree slightly gets a monotone UpdatedAt anyway,
// and a zero At leaves it unchanged.
func (t Trip) Step(e Event) (Trip, error) {
	if !t.State.valid() {
		return t, refuse(t.State, e.Kind, "the trip has no valid state")
	}
	if t.State.Final() {
		return t, refuse(t.State, e.Kind, "the trip has ended; a final state accepts no events")
	}
	next := t.Clone()
	var err error
	switch e.Kind {
	case EventOffer:
		err = next.offer(e)
	case EventAccept:
		err = next.accept(e)
	case EventDecline, EventOfferExpired:
		err = next.endOffer(e)
	case EventPickUp:
		err = next.pickUp(e)
	case EventComplete:
		err = next.complete(e)
	case EventCancel:
		err = next.cancel(e)
	case EventGiveUp:
		err = next.giveUp(e)
	default:
		err = refuse(t.State, e.Kind, "unknown event kind")
	}
	if err != nil {
		return t, err
	}
	if e.At.After(next.UpdatedAt) {
		next.UpdatedAt = e.At
	}
	return next, nil
}

// offer makes the offer in e to a requested trip.
func (t *Trip) offer(e Event) error {
	switch {
	case t.State == StateOffered:
		return refuse(t.State, e.Kind, "offer %q to driver %s is pending", t.OfferID, t.Driver)
	case t.State != StateRequested:
		return refuse(t.State, e.Kind, "only a requested trip is offered")
	case e.Driver == "":
		return refuse(t.State, e.Kind, "offer names no driver")
	case e.OfferID == "":
		return refuse(t.State, e.Kind, "offer to driver %s has no offer id", e.Driver)
	case e.ExpiresAt.IsZero():
		return refuse(t.State, e.Kind, "offer to driver %s has no expiry", e.Driver)
	case !e.At.IsZero() && !e.ExpiresAt.After(e.At):
		return refuse(t.State, e.Kind, "offer to driver %s expires at %s, not after it is made at %s",
			e.Driver, e.ExpiresAt.Format(time.RFC3339Nano), e.At.Format(time.RFC3339Nano))
	case !validDistance(e.PickupDistanceM):
		return refuse(t.State, e.Kind, "offer to driver %s has pickup distance %v, not a finite number >= 0",
			e.Driver, e.PickupDistanceM)
	case t.Attempts >= MaxAttempts:
		return refuse(t.State, e.Kind, "all %d attempts are used", MaxAttempts)
	case t.tried(e.Driver):
		return refuse(t.State, e.Kind, "driver %s was already offered the trip", e.Driver)
	}
	t.State = StateOffered
	t.Driver = e.Driver
	t.OfferID = e.OfferID
	t.OfferExpiresAt = e.ExpiresAt
	t.PickupDistanceM = e.PickupDistanceM
	t.Attempts++
	return nil
}

// accept assigns the trip to the offered driver.
func (t *Trip) accept(e Event) error {
	if err := t.matchOffer(e, true); err != nil {
		return err
	}
	t.State = StateAssigned
	t.OfferID = ""
	t.OfferExpiresAt = time.Time{}
	return nil
}

// endOffer takes a declined or expired offer back: the trip is requested
// again and the driver joins Tried.
func (t *Trip) endOffer(e Event) error {
	if err := t.matchOffer(e, e.Kind == EventDecline); err != nil {
		return err
	}
	t.withdrawOffer()
	if e.Kind == EventDecline {
		t.Declined++
	} else {
		t.Expired++
	}
	t.State = StateRequested
	return nil
}

// pickUp marks the rider as picked up by the assigned driver.
func (t *Trip) pickUp(e Event) error {
	switch t.State {
	case StateAssigned:
	case StatePickedUp:
		return refuse(t.State, e.Kind, "the rider was already picked up")
	default:
		return refuse(t.State, e.Kind, "only an assigned trip is picked up")
	}
	if err := t.matchDriver(e); err != nil {
		return err
	}
	t.State = StatePickedUp
	return nil
}

// complete ends a trip whose rider was dropped off.
func (t *Trip) complete(e Event) error {
	switch t.State {
	case StatePickedUp:
	case StateAssigned:
		return refuse(t.State, e.Kind, "the rider was not picked up yet")
	default:
		return refuse(t.State, e.Kind, "only a picked-up trip is completed")
	}
	if err := t.matchDriver(e); err != nil {
		return err
	}
	t.State = StateCompleted
	return nil
}

// cancel ends the trip at the rider's or the driver's request.
func (t *Trip) cancel(e Event) error {
	who := "rider"
	if e.ByDriver {
		who = "driver"
		switch t.State {
		case StateAssigned, StatePickedUp:
		case StateOffered:
			return refuse(t.State, e.Kind, "the offered driver %s declines instead of cancelling", t.Driver)
		default:
			return refuse(t.State, e.Kind, "no driver is assigned to cancel the trip")
		}
		if err := t.matchDriver(e); err != nil {
			return err
		}
	} else if t.State == StatePickedUp {
		return refuse(t.State, e.Kind, "the rider cannot cancel after pickup")
	}
	if t.State == StateOffered {
		t.withdrawOffer()
	}
	t.State = StateCancelled
	t.Reason = "cancelled by " + who
	if e.Reason != "" {
		t.Reason += ": " + e.Reason
	}
	return nil
}

// giveUp ends a trip that found no driver.
func (t *Trip) giveUp(e Event) error {
	switch t.State {
	case StateRequested:
	case StateOffered:
		t.withdrawOffer()
	default:
		return refuse(t.State, e.Kind, "the trip has a driver")
	}
	t.State = StateNoDriver
	t.Reason = e.Reason
	if t.Reason == "" {
		t.Reason = "no driver"
	}
	return nil
}

// matchOffer checks that e answers the pending offer: same OfferID and,
// when needDriver or e names one, same driver.
func (t *Trip) matchOffer(e Event, needDriver bool) error {
	switch {
	case t.State == StateRequested:
		return refuse(t.State, e.Kind, "no offer is pending")
	case t.State != StateOffered:
		return refuse(t.State, e.Kind, "the offer was already accepted by driver %s", t.Driver)
	case e.OfferID != t.OfferID:
		return refuse(t.State, e.Kind, "%v of offer %q but the pending offer is %q", e.Kind, e.OfferID, t.OfferID)
	case (needDriver || e.Driver != "") && e.Driver != t.Driver:
		return refuse(t.State, e.Kind, "%v from driver %q but the offer is to %s", e.Kind, e.Driver, t.Driver)
	}
	return nil
}

// matchDriver checks that e comes from the trip's driver.
func (t *Trip) matchDriver(e Event) error {
	if e.Driver != t.Driver {
		return refuse(t.State, e.Kind, "%v by driver %q but the trip is assigned to %s", e.Kind, e.Driver, t.Driver)
	}
	return nil
}

// withdrawOffer ends the pending offer without an assignment: its driver
// joins Tried and the offer fields are cleared.
func (t *Trip) withdrawOffer() {
	t.Tried = append(t.Tried, t.Driver)
	t.Driver = ""
	t.OfferID = ""
	t.OfferExpiresAt = time.Time{}
	t.PickupDistanceM = 0
}

// validDistance reports whether d is a usable distance in meters.
func validDistance(d float64) bool {
	return d >= 0 && !math.IsInf(d, 1)
}

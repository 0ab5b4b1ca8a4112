// Package trip is the state machine of a ride request: the trip lifecycle
// the dispatch layer drives, from the request to completion, cancellation or
// giving up.
//
// It is pure, in the style of raft's Step: a Trip is a plain value, Step
// takes one Event (time included, read by the caller) and returns the next
// Trip or refuses with a *TransitionError; the package does no I/O, starts
// no goroutines and reads no clock. Dispatch decides what should happen
// (reserve the nearest driver, offer, time the offer out, try the next
// candidate, give up); this package decides whether it may happen, so a
// late accept, a duplicate decline or an answer from the wrong driver is
// refused here, in one place, whatever path delivered it.
//
// Trips are durable: the store keeps each as the record Marshal encodes
// (JSON with stable field names, see Unmarshal), written before the caller
// hears of a change. Value semantics fit that: a caller loads a trip, steps
// it, and writes the result conditionally on the loaded version; if the
// write loses a race it throws the result away and retries from the fresh
// record, and nothing in memory was changed on the way. Step never modifies
// its receiver and the trip it returns shares no memory with it.
//
// The states and the events that move between them:
//
//	    New
//	     |
//	     v
//	[requested] <------ decline, offer_expired -------+
//	 |  |  |                                          |
//	 |  |  +------------------ offer -------------> [offered]
//	 |  |                                            |  |  |
//	 |  +--- give_up ---> (no_driver) <-- give_up ---+  |  |
//	 |                                                  |  |
//	 +--- cancel ------> (cancelled) <---- cancel ------+  |
//	      (rider)          ^    ^          (rider)         |
//	                       |    |                        accept
//	                       |    |                          |
//	                       |    |                          v
//	                       |    +---- cancel (either) -- [assigned]
//	                       |                               |
//	                       |                            pick_up
//	                       |                               |
//	                       |                               v
//	                       +------ cancel (driver) ---- [picked_up]
//	                                                       |
//	                                                    complete
//	                                                       |
//	                                                       v
//	                                                  (completed)
//
// Final states are in parentheses and refuse every event. The rider may
// cancel until pickup; the driver may cancel once assigned, until
// completion (an offered driver declines instead). Each offer counts as an
// attempt; a declined or expired offer puts its driver in Tried, and no
// driver is offered the same trip twice. MaxAttempts bounds the offers.
//
// A trip holds its driver while offered (the driver is reserved) and while
// assigned or picked up; HeldDriver names them and ReleasedDriver tells the
// caller whose reservation to release after a step.
//
// Usage:
//
//	t := trip.New(id, requestID, riderID, "car", pickup, dropoff, now)
//	t, err := t.Step(trip.Event{Kind: trip.EventOffer, Driver: "d1",
//		OfferID: "o1", ExpiresAt: now.Add(15 * time.Second), PickupDistanceM: 420, At: now})
//	if errors.Is(err, trip.ErrTransition) {
//		// refused: t is unchanged
//	}
//	rec, err := t.Marshal() // store rec
package trip

// Package dispatch turns a ride request into exactly one assigned driver.
//
// Two halves share one protocol over the durable store:
//
//   - Ops are stateless operations any router (or matcher) can perform on a
//     trip: read it, cancel it, answer an offer, report pickup and drop-off.
//   - A Coordinator runs on the matcher that owns a ride's pickup shard. It
//     creates the trip idempotently (the trip id is derived from the
//     request id), searches candidates with an exact nearby search across
//     the cluster, reserves the best one atomically in the store, offers the
//     trip over the driver's stream (through the store's event bus), and on
//     decline or expiry releases the driver and tries the next candidate, up
//     to a limit, after which the trip ends as no_driver. In batch mode it
//     collects the requests of a pickup shard for a window and assigns them
//     together, minimising total pickup distance (package assign).
//
// Safety does not depend on who coordinates. The driver's store record is
// the arbiter of every offer: a reservation (available → reserved for one
// trip, with a lease) is one atomic compare-and-set, acceptance is another
// (reserved for this trip → on_trip), and release another (reserved for
// this trip → available). The trip record (package trip's state machine,
// versioned, compare-and-set) then follows what the driver record says: an
// expiry that finds the driver already on the trip assigns the trip instead
// of releasing it, an acceptance that finds the trip cancelled frees the
// driver. So two coordinators of one trip (during a ring change, or after a
// restart) and a driver answering through any router can race freely: no
// driver is ever held by two trips, and no assigned trip is lost. A
// coordinator that dies leaves nothing stuck: reservations lapse with their
// lease, and the active trips are resumed by the shard's next owner.
package dispatch

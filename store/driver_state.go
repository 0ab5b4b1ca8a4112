package store

import (
	"fmt"
	"time"
)

// driverState is a driver record as stored, before lease expiry is applied.
// The transitions below are the driver state machine; Memory runs them
// under its mutex and the Lua scripts of Redis (redis_scripts.go) mirror
// them line by line. The conformance suite (storetest) checks that the two
// agree.
type driverState struct {
	status  DriverStatus // never StatusUnknown: a new driver is available
	trip    string       // holder while reserved or on_trip
	leaseMs int64        // reservation lease, Unix ms; 0 when not reserved
	offer   *Offer       // pending offer while reserved
	ver     uint64
}

// outcome is what a transition did.
type outcome uint8

const (
	applied   outcome = iota // state changed, version bumped
	unchanged                // allowed, nothing to change
	refused                  // compare failed: ErrConflict
)

// newDriverState is the state of a driver the store has never seen.
func newDriverState() driverState { return driverState{status: StatusAvailable} }

// free reports whether the driver can be reserved at nowMs: available, or
// reserved with a lease that lapsed (lease < now).
func (s driverState) free(nowMs int64) bool {
	return s.status == StatusAvailable || s.lapsed(nowMs)
}

// lapsed reports whether s is a reservation whose lease passed before nowMs.
func (s driverState) lapsed(nowMs int64) bool {
	return s.status == StatusReserved && s.leaseMs < nowMs
}

// held reports whether a trip holds the driver at nowMs: a live reservation
// or a trip in progress.
func (s driverState) held(nowMs int64) bool {
	return s.status == StatusOnTrip || (s.status == StatusReserved && s.leaseMs >= nowMs)
}

// to returns s moved to status/trip/lease/offer with the version bumped.
func (s driverState) to(status DriverStatus, trip string, leaseMs int64, offer *Offer) (driverState, outcome) {
	return driverState{status: status, trip: trip, leaseMs: leaseMs, offer: offer, ver: s.ver + 1}, applied
}

func (s driverState) reserve(trip string, leaseMs, nowMs int64) (driverState, outcome) {
	if !s.free(nowMs) {
		return s, refused
	}
	return s.to(StatusReserved, trip, leaseMs, nil)
}

func (s driverState) setOffer(o *Offer, leaseMs int64) (driverState, outcome) {
	if s.status != StatusReserved || s.trip != o.TripID {
		return s, refused
	}
	return s.to(StatusReserved, s.trip, leaseMs, o)
}

func (s driverState) release(trip string, nowMs int64) (driverState, outcome) {
	switch {
	case s.status == StatusReserved && s.trip == trip:
		return s.to(StatusAvailable, "", 0, nil)
	case s.free(nowMs):
		return s, unchanged
	}
	return s, refused
}

func (s driverState) startTrip(trip string, nowMs int64) (driverState, outcome) {
	if s.status != StatusReserved || s.trip != trip || s.leaseMs < nowMs {
		return s, refused
	}
	return s.to(StatusOnTrip, trip, 0, nil)
}

func (s driverState) endTrip(trip string) (driverState, outcome) {
	if s.status != StatusOnTrip || s.trip != trip {
		return s, refused
	}
	return s.to(StatusAvailable, "", 0, nil)
}

func (s driverState) setOffline(nowMs int64) (driverState, outcome) {
	switch {
	case s.held(nowMs):
		return s, refused
	case s.status == StatusOffline:
		return s, unchanged
	}
	return s.to(StatusOffline, "", 0, nil)
}

func (s driverState) setAvailable(nowMs int64) (driverState, outcome) {
	switch {
	case s.held(nowMs):
		return s, refused
	case s.status == StatusAvailable:
		return s, unchanged
	}
	return s.to(StatusAvailable, "", 0, nil)
}

// view is the Driver callers see at now: a lapsed reservation reads as
// available with no trip, lease or offer (the stored fields stay until the
// next transition overwrites them).
func (s driverState) view(id string, now time.Time) Driver {
	if s.lapsed(now.UnixMilli()) {
		return Driver{ID: id, Status: StatusAvailable, Version: s.ver}
	}
	d := Driver{ID: id, Status: s.status, TripID: s.trip, Offer: s.offer.clone(), Version: s.ver}
	if s.leaseMs != 0 {
		d.LeaseUntil = time.UnixMilli(s.leaseMs)
	}
	return d
}

// describe says what the driver is doing at nowMs, for conflict errors.
func (s driverState) describe(nowMs int64) string {
	switch {
	case s.lapsed(nowMs):
		return fmt.Sprintf("available: the reservation by trip %s lapsed at %s (version %d)", s.trip, fmtMs(s.leaseMs), s.ver)
	case s.status == StatusReserved:
		return fmt.Sprintf("reserved by trip %s until %s (version %d)", s.trip, fmtMs(s.leaseMs), s.ver)
	case s.status == StatusOnTrip:
		return fmt.Sprintf("on_trip for trip %s (version %d)", s.trip, s.ver)
	}
	return fmt.Sprintf("%s (version %d)", s.status, s.ver)
}

// conflict wraps ErrConflict with the operation and the current state.
func conflict(op string, s driverState, nowMs int64) error {
	return fmt.Errorf("%s: driver is %s: %w", op, s.describe(nowMs), ErrConflict)
}

// fmtMs formats a Unix ms time for messages.
func fmtMs(ms int64) string {
	return time.UnixMilli(ms).UTC().Format("2006-01-02T15:04:05.000Z07:00")
}

// clone returns a deep copy of o (nil for nil).
func (o *Offer) clone() *Offer {
	if o == nil {
		return nil
	}
	c := *o
	c.Trip = cloneBytes(o.Trip)
	return &c
}

// cloneBytes copies b, keeping nil as nil.
func cloneBytes(b []byte) []byte {
	if b == nil {
		return nil
	}
	return append([]byte{}, b...)
}

// Operation names for errors; every driver transition error starts with one.
func opReserve(driverID, tripID string) string {
	return fmt.Sprintf("reserve driver %s for trip %s", driverID, tripID)
}
func opSetOffer(driverID, tripID string) string {
	return fmt.Sprintf("set offer of trip %s for driver %s", tripID, driverID)
}
func opRelease(driverID, tripID string) string {
	return fmt.Sprintf("release driver %s from trip %s", driverID, tripID)
}
func opStartTrip(driverID, tripID string) string {
	return fmt.Sprintf("start trip %s with driver %s", tripID, driverID)
}
func opEndTrip(driverID, tripID string) string {
	return fmt.Sprintf("end trip %s of driver %s", tripID, driverID)
}
func opSetOffline(driverID string) string { return fmt.Sprintf("set driver %s offline", driverID) }
func opSetAvailable(driverID string) string {
	return fmt.Sprintf("set driver %s available", driverID)
}

// checkDriverArgs rejects empty ids before any state is touched: an empty
// trip id would make "reserved by nobody" indistinguishable from available.
func checkDriverArgs(op, driverID string, tripIDs ...string) error {
	if driverID == "" {
		return fmt.Errorf("%s: empty driver id", op)
	}
	for _, id := range tripIDs {
		if id == "" {
			return fmt.Errorf("%s: empty trip id", op)
		}
	}
	return nil
}

// checkLease rejects a reservation that would lapse as it is made.
func checkLease(op string, lease time.Duration) error {
	if lease <= 0 {
		return fmt.Errorf("%s: lease %v is not positive", op, lease)
	}
	return nil
}

package driver_test

import (
	"testing"

	"github.com/geomatch/geomatch/driver"
	"github.com/geomatch/geomatch/matcher/index"
	matcherv1 "github.com/geomatch/geomatch/proto/geomatch/matcher/v1"
	geomatchv1 "github.com/geomatch/geomatch/proto/geomatch/v1"
	"github.com/geomatch/geomatch/store"
)

// TestStatusValuesEqualTheWire pins every equality the layers rely on when
// they convert a status with a plain type conversion: the public enum, the
// index's and the store's names are the same numbers.
func TestStatusValuesEqualTheWire(t *testing.T) {
	tests := []struct {
		s     driver.Status
		wire  geomatchv1.DriverStatus
		ix    index.Status
		store store.DriverStatus
		name  string
	}{
		{driver.StatusUnspecified, geomatchv1.DriverStatus_DRIVER_STATUS_UNSPECIFIED, index.StatusUnspecified, store.StatusUnknown, "unspecified"},
		{driver.StatusAvailable, geomatchv1.DriverStatus_DRIVER_STATUS_AVAILABLE, index.StatusAvailable, store.StatusAvailable, "available"},
		{driver.StatusReserved, geomatchv1.DriverStatus_DRIVER_STATUS_RESERVED, index.StatusReserved, store.StatusReserved, "reserved"},
		{driver.StatusOnTrip, geomatchv1.DriverStatus_DRIVER_STATUS_ON_TRIP, index.StatusOnTrip, store.StatusOnTrip, "on_trip"},
		{driver.StatusOffline, geomatchv1.DriverStatus_DRIVER_STATUS_OFFLINE, index.StatusOffline, store.StatusOffline, "offline"},
	}
	for _, tt := range tests {
		if int32(tt.s) != int32(tt.wire) || tt.ix != tt.s || uint8(tt.store) != uint8(tt.s) {
			t.Errorf("%v: wire %d, index %d, store %d", tt.s, tt.wire, tt.ix, tt.store)
		}
		if tt.s.String() != tt.name || !tt.s.Valid() {
			t.Errorf("%d: String %q, want %q", tt.s, tt.s.String(), tt.name)
		}
	}
	if n := len(geomatchv1.DriverStatus_name); n != len(tests) {
		t.Errorf("the public enum has %d statuses, the vocabulary %d", n, len(tests))
	}
	if driver.Status(len(tests)).Valid() {
		t.Errorf("Status(%d) is valid", len(tests))
	}
}

// TestOutcomeValuesEqualTheWire: every outcome a matcher sends has the
// number of its internal wire enum, and the index's outcomes are the same
// values.
func TestOutcomeValuesEqualTheWire(t *testing.T) {
	tests := []struct {
		o        driver.Outcome
		wire     matcherv1.Outcome
		name     string
		accepted bool
	}{
		{driver.Applied, matcherv1.Outcome_OUTCOME_APPLIED, "applied", true},
		{driver.Duplicate, matcherv1.Outcome_OUTCOME_DUPLICATE, "duplicate", true},
		{driver.Stale, matcherv1.Outcome_OUTCOME_STALE, "stale", false},
		{driver.Full, matcherv1.Outcome_OUTCOME_FULL, "full", false},
		{driver.NotOwner, matcherv1.Outcome_OUTCOME_NOT_OWNER, "not_owner", false},
		{driver.Invalid, matcherv1.Outcome_OUTCOME_INVALID, "invalid", false},
	}
	ix := []index.Outcome{index.OutcomeApplied, index.OutcomeDuplicate, index.OutcomeStale, index.OutcomeFull, index.OutcomeInvalid}
	for i, want := range []matcherv1.Outcome{matcherv1.Outcome_OUTCOME_APPLIED, matcherv1.Outcome_OUTCOME_DUPLICATE,
		matcherv1.Outcome_OUTCOME_STALE, matcherv1.Outcome_OUTCOME_FULL, matcherv1.Outcome_OUTCOME_INVALID} {
		if int32(ix[i]) != int32(want) {
			t.Errorf("index outcome %v is %d, the wire's %v is %d", ix[i], ix[i], want, want)
		}
	}
	for _, tt := range tests {
		if int32(tt.o) != int32(tt.wire) || tt.o.String() != tt.name || tt.o.Accepted() != tt.accepted {
			t.Errorf("%v: wire %d (%v), name %q, accepted %v", tt.o, tt.wire, tt.wire, tt.o.String(), tt.o.Accepted())
		}
	}
	if n := len(matcherv1.Outcome_name); n != len(tests)+1 { // and UNSPECIFIED
		t.Errorf("the wire enum has %d outcomes, the vocabulary sends %d", n, len(tests))
	}
	if driver.Unavailable.Accepted() || driver.Unavailable.String() != "unavailable" {
		t.Error("Unavailable")
	}
}

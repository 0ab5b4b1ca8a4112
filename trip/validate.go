package trip

import (
	"errors"
	"fmt"
)

// ErrInvalid is the error every failed Validate matches with errors.Is.
var ErrInvalid = errors.New("invalid trip")

// Validate checks the invariants every trip made by New (given an ID and
// valid positions) and Step keeps, so a
// record read from the store (or built by hand) can be trusted before it is
// stepped:
//
//   - ID is set, the state is one of the seven valid ones, positions are
//     finite and in range, UpdatedAt is not before CreatedAt;
//   - 0 <= Attempts <= MaxAttempts and len(Tried) + (1 if Driver != "") ==
//     Attempts; Tried has no empty or repeated driver and not Driver;
//   - 0 <= Declined, Expired and Declined + Expired <= len(Tried);
//   - requested and no_driver have no Driver; offered has Driver, OfferID
//     and OfferExpiresAt; assigned, picked_up and completed have Driver;
//     OfferID and OfferExpiresAt are set only in offered;
//   - PickupDistanceM is finite, >= 0, and 0 when there is no Driver;
//   - Reason is set exactly in cancelled and no_driver.
func (t Trip) Validate() error {
	if err := t.validate(); err != nil {
		return fmt.Errorf("%w %q: %s", ErrInvalid, t.ID, err)
	}
	return nil
}

// validate returns the first broken invariant, unwrapped.
func (t Trip) validate() error {
	s := t.State
	switch {
	case t.ID == "":
		return errors.New("no id")
	case !s.valid():
		return fmt.Errorf("state %v is not a trip state", s)
	case !validLatLng(t.Pickup):
		return fmt.Errorf("pickup %v is not a position", t.Pickup)
	case !validLatLng(t.Dropoff):
		return fmt.Errorf("dropoff %v is not a position", t.Dropoff)
	case t.UpdatedAt.Before(t.CreatedAt):
		return errors.New("updated before it was created")
	case t.Attempts < 0 || t.Attempts > MaxAttempts:
		return fmt.Errorf("attempts %d outside [0, %d]", t.Attempts, MaxAttempts)
	}
	held := 0
	if t.Driver != "" {
		held = 1
	}
	if len(t.Tried)+held != t.Attempts {
		return fmt.Errorf("%d attempts but %d tried drivers and driver %q", t.Attempts, len(t.Tried), t.Driver)
	}
	if t.Declined < 0 || t.Expired < 0 || t.Declined+t.Expired > len(t.Tried) {
		return fmt.Errorf("%d declined and %d expired offers of %d tried drivers", t.Declined, t.Expired, len(t.Tried))
	}
	seen := make(map[string]bool, len(t.Tried))
	for _, d := range t.Tried {
		switch {
		case d == "":
			return errors.New("empty driver in tried")
		case seen[d] || d == t.Driver:
			return fmt.Errorf("driver %s offered twice", d)
		}
		seen[d] = true
	}
	switch {
	case t.Driver == "" && (s == StateOffered || s == StateAssigned || s == StatePickedUp || s == StateCompleted):
		return fmt.Errorf("%v without a driver", s)
	case t.Driver != "" && (s == StateRequested || s == StateNoDriver):
		return fmt.Errorf("%v with driver %s", s, t.Driver)
	case (s == StateOffered) != (t.OfferID != ""):
		return fmt.Errorf("%v with offer id %q", s, t.OfferID)
	case (s == StateOffered) != !t.OfferExpiresAt.IsZero():
		return fmt.Errorf("%v with offer expiry %v", s, t.OfferExpiresAt)
	case !validDistance(t.PickupDistanceM) || (t.Driver == "" && t.PickupDistanceM != 0):
		return fmt.Errorf("pickup distance %v with driver %q", t.PickupDistanceM, t.Driver)
	case (s == StateCancelled || s == StateNoDriver) != (t.Reason != ""):
		return fmt.Errorf("%v with reason %q", s, t.Reason)
	}
	return nil
}

// validLatLng reports whether p is a finite position in range.
func validLatLng(p LatLng) bool {
	// NaN fails every comparison.
	return p.Lat >= -90 && p.Lat <= 90 && p.Lng >= -180 && p.Lng <= 180
}

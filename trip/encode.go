package trip

import (
	"encoding/json"
	"fmt"
	"time"
)

// recordVersion is the version of the encoded record. A reader refuses
// other versions; fields may be added without a new version (readers
// ignore fields they do not know).
const recordVersion = 1

// record is the durable form of a Trip. Its JSON names are part of the
// store's format: never rename one, add new ones instead.
type record struct {
	Version         int       `json:"v"`
	ID              string    `json:"id"`
	RequestID       string    `json:"request_id,omitempty"`
	RiderID         string    `json:"rider_id,omitempty"`
	VehicleClass    string    `json:"vehicle_class,omitempty"`
	Pickup          latLng    `json:"pickup"`
	Dropoff         latLng    `json:"dropoff"`
	State           string    `json:"state"`
	Driver          string    `json:"driver,omitempty"`
	OfferID         string    `json:"offer_id,omitempty"`
	OfferExpiresAt  time.Time `json:"offer_expires_at,omitzero"`
	PickupDistanceM float64   `json:"pickup_distance_m,omitempty"`
	Attempts        int       `json:"attempts,omitempty"`
	Tried           []string  `json:"tried,omitempty"`
	Declined        int       `json:"declined,omitempty"`
	Expired         int       `json:"expired,omitempty"`
	Reason          string    `json:"reason,omitempty"`
	CreatedAt       time.Time `json:"created_at"`
	UpdatedAt       time.Time `json:"updated_at"`
}

// latLng is the durable form of a LatLng.
type latLng struct {
	Lat float64 `json:"lat"`
	Lng float64 `json:"lng"`
}

// Marshal encodes the trip as the JSON record the store keeps. Times are
// written in UTC with nanoseconds. It refuses a trip that fails Validate, so
// whatever Marshal writes, Unmarshal reads back.
func (t Trip) Marshal() ([]byte, error) {
	if err := t.Validate(); err != nil {
		return nil, fmt.Errorf("marshal trip: %w", err)
	}
	b, err := json.Marshal(record{
		Version:         recordVersion,
		ID:              t.ID,
		RequestID:       t.RequestID,
		RiderID:         t.RiderID,
		VehicleClass:    t.VehicleClass,
		Pickup:          latLng(t.Pickup),
		Dropoff:         latLng(t.Dropoff),
		State:           t.State.String(),
		Driver:          t.Driver,
		OfferID:         t.OfferID,
		OfferExpiresAt:  utc(t.OfferExpiresAt),
		PickupDistanceM: t.PickupDistanceM,
		Attempts:        t.Attempts,
		Tried:           t.Tried,
		Declined:        t.Declined,
		Expired:         t.Expired,
		Reason:          t.Reason,
		CreatedAt:       utc(t.CreatedAt),
		UpdatedAt:       utc(t.UpdatedAt),
	})
	if err != nil {
		return nil, fmt.Errorf("marshal trip %q: %w", t.ID, err)
	}
	return b, nil
}

// Unmarshal decodes a record written by Marshal. It refuses malformed JSON,
// other record versions, unknown state names and records that fail
// Validate. Times come back in UTC; an empty Tried comes back nil.
func Unmarshal(b []byte) (Trip, error) {
	var r record
	if err := json.Unmarshal(b, &r); err != nil {
		return Trip{}, fmt.Errorf("unmarshal trip: %w", err)
	}
	if r.Version != recordVersion {
		return Trip{}, fmt.Errorf("unmarshal trip %q: record version %d, want %d", r.ID, r.Version, recordVersion)
	}
	state, ok := parseState(r.State)
	if !ok {
		return Trip{}, fmt.Errorf("unmarshal trip %q: unknown state %q", r.ID, r.State)
	}
	t := Trip{
		ID:              r.ID,
		RequestID:       r.RequestID,
		RiderID:         r.RiderID,
		VehicleClass:    r.VehicleClass,
		Pickup:          LatLng(r.Pickup),
		Dropoff:         LatLng(r.Dropoff),
		State:           state,
		Driver:          r.Driver,
		OfferID:         r.OfferID,
		OfferExpiresAt:  utc(r.OfferExpiresAt),
		PickupDistanceM: r.PickupDistanceM,
		Attempts:        r.Attempts,
		Tried:           r.Tried,
		Declined:        r.Declined,
		Expired:         r.Expired,
		Reason:          r.Reason,
		CreatedAt:       utc(r.CreatedAt),
		UpdatedAt:       utc(r.UpdatedAt),
	}
	if len(t.Tried) == 0 {
		t.Tried = nil
	}
	if err := t.Validate(); err != nil {
		return Trip{}, fmt.Errorf("unmarshal trip: %w", err)
	}
	return t, nil
}

// utc returns tm in UTC, keeping the zero time zero.
func utc(tm time.Time) time.Time {
	if tm.IsZero() {
		return tm
	}
	return tm.UTC()
}

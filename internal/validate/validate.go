// Package validate holds the field checks shared by every public request
// validator: ids, vehicle classes, free text and positions. Each error
// starts with the field's path, so a client reading an InvalidArgument knows
// what to fix.
package validate

import (
	"fmt"
	"unicode/utf8"

	"github.com/geomatch/geomatch/internal/geo"
	geomatchv1 "github.com/geomatch/geomatch/proto/geomatch/v1"
)

// Bounds shared by the public API.
const (
	MaxIDBytes           = 128
	MaxVehicleClassBytes = 64
	MaxReasonBytes       = 256
)

// ID checks a required identifier: 1..MaxIDBytes bytes of UTF-8.
func ID(field, id string) error {
	switch {
	case id == "":
		return fmt.Errorf("%s: required", field)
	case len(id) > MaxIDBytes:
		return fmt.Errorf("%s: %d bytes, at most %d", field, len(id), MaxIDBytes)
	case !utf8.ValidString(id):
		return fmt.Errorf("%s: not valid UTF-8", field)
	}
	return nil
}

// Name checks a name of the fence and event API (a fence id, a set, a hook
// id): 1..MaxIDBytes bytes of letters, digits and "-_.:/@". The error does
// not name the field: the caller prefixes it.
func Name(s string) error {
	switch {
	case s == "":
		return fmt.Errorf("required")
	case len(s) > MaxIDBytes:
		return fmt.Errorf("%d bytes, at most %d", len(s), MaxIDBytes)
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9':
		case c == '-' || c == '_' || c == '.' || c == ':' || c == '/' || c == '@':
		default:
			shown := s
			if len(shown) > 64 {
				shown = shown[:64] + "..."
			}
			return fmt.Errorf("%q has %q at byte %d (want letters, digits and \"-_.:/@\")", shown, c, i)
		}
	}
	return nil
}

// Text checks optional free text of at most max bytes of UTF-8.
func Text(field, s string, max int) error {
	if len(s) > max {
		return fmt.Errorf("%s: %d bytes, at most %d", field, len(s), max)
	}
	if !utf8.ValidString(s) {
		return fmt.Errorf("%s: not valid UTF-8", field)
	}
	return nil
}

// VehicleClass checks an optional vehicle class.
func VehicleClass(field, class string) error { return Text(field, class, MaxVehicleClassBytes) }

// Position checks a required position.
func Position(field string, p *geomatchv1.LatLng) error {
	if p == nil {
		return fmt.Errorf("%s: required", field)
	}
	if err := (geo.LatLng{Lat: p.GetLat(), Lng: p.GetLng()}).Validate(); err != nil {
		return fmt.Errorf("%s.%w", field, err)
	}
	return nil
}

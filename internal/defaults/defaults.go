// Package defaults holds the one rule every geomatch configuration follows:
// a zero field means its documented default, a negative one is an error,
// and a configuration is checked once, when its component is built, with
// every bad field named in the error.
package defaults

import (
	"errors"
	"fmt"
	"math"
	"time"
)

// Filler applies the rule to the fields of one configuration and collects
// what is wrong. The zero value is ready to use.
type Filler struct {
	errs []error
}

// Duration sets *v to def when it is zero; a negative *v is an error.
func (f *Filler) Duration(name string, v *time.Duration, def time.Duration) {
	switch {
	case *v == 0:
		*v = def
	case *v < 0:
		f.errs = append(f.errs, fmt.Errorf("%s: %v must not be negative (0 means the default, %v)", name, *v, def))
	}
}

// Int sets *v to def when it is zero; a negative *v is an error.
func (f *Filler) Int(name string, v *int, def int) {
	switch {
	case *v == 0:
		*v = def
	case *v < 0:
		f.errs = append(f.errs, fmt.Errorf("%s: %d must not be negative (0 means the default, %d)", name, *v, def))
	}
}

// Float sets *v to def when it is zero; a negative or NaN *v is an error.
func (f *Filler) Float(name string, v *float64, def float64) {
	switch {
	case math.IsNaN(*v):
		f.errs = append(f.errs, fmt.Errorf("%s: must be a number", name))
	case *v == 0:
		*v = def
	case *v < 0:
		f.errs = append(f.errs, fmt.Errorf("%s: %v must not be negative (0 means the default, %v)", name, *v, def))
	}
}

// Max records an error when *v is above most.
func (f *Filler) Max(name string, v, most int) {
	if v > most {
		f.errs = append(f.errs, fmt.Errorf("%s: %d, at most %d", name, v, most))
	}
}

// Fail records another error found by the caller.
func (f *Filler) Fail(err error) {
	if err != nil {
		f.errs = append(f.errs, err)
	}
}

// Err returns every error recorded, prefixed with what (the
// configuration's name), or nil.
func (f *Filler) Err(what string) error {
	if err := errors.Join(f.errs...); err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	return nil
}

package fence

import (
	"errors"
	"fmt"

	"github.com/geomatch/geomatch/internal/geo"
)

// Fence is one geofence. An Index keeps the *Fence it is given: do not
// modify a fence after putting it, put a new one with the same ID instead.
type Fence struct {
	// ID names the fence; unique within an Index.
	ID string
	// Set groups fences for subscriptions and listing.
	Set string
	// Shape is the fence's area.
	Shape Shape
	// Detect is the transitions the fence reports; zero means
	// DefaultDetect (enter and exit).
	Detect Detect
	// VehicleClass, when set, limits the fence to drivers of that class.
	VehicleClass string
	// Labels are copied into the fence's events.
	Labels map[string]string
}

// detect returns the effective Detect of f.
func (f *Fence) detect() Detect {
	if f.Detect == 0 {
		return DefaultDetect
	}
	return f.Detect
}

// Applies reports whether the fence watches drivers of vehicleClass.
func (f *Fence) Applies(vehicleClass string) bool {
	return f.VehicleClass == "" || f.VehicleClass == vehicleClass
}

// Eval returns the transition a driver of vehicleClass makes relative to f
// when it moves from prev (nil when the driver is seen for the first time)
// to cur, and whether f reports it: the brute-force definition an Index
// answers for all its fences at once. An invalid cur gives nothing; an
// invalid prev counts as none.
func (f *Fence) Eval(prev *geo.LatLng, cur geo.LatLng, vehicleClass string) (Transition, bool) {
	if !f.Applies(vehicleClass) || cur.Validate() != nil {
		return 0, false
	}
	if prev != nil && prev.Validate() != nil {
		prev = nil
	}
	d := f.detect()
	curIn := f.Shape.Contains(cur)
	prevIn := prev != nil && f.Shape.Contains(*prev)
	var crosses func() bool
	if prev != nil && d&DetectCross != 0 {
		crosses = func() bool { return f.Shape.Crosses(*prev, cur) }
	}
	t, ok := transitionOf(prev != nil, prevIn, curIn, crosses)
	return t, ok && d.Has(t)
}

// validate checks what an Index needs of a fence.
func (f *Fence) validate() error {
	switch {
	case f == nil:
		return errors.New("nil fence")
	case f.ID == "":
		return errors.New("fence has no ID")
	case f.Shape == nil:
		return fmt.Errorf("fence %q has no shape", f.ID)
	case f.Detect&^detectAll != 0:
		return fmt.Errorf("fence %q: unknown detect bits %#x", f.ID, uint8(f.Detect&^detectAll))
	}
	switch s := f.Shape.(type) {
	case *Polygon:
		if s == nil || len(s.parts) == 0 {
			return fmt.Errorf("fence %q: empty polygon (build one with ParseGeoJSON)", f.ID)
		}
	case *Circle:
		if s == nil || s.radiusM <= 0 {
			return fmt.Errorf("fence %q: empty circle (build one with NewCircle)", f.ID)
		}
	}
	return nil
}

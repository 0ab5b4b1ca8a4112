// Package fencev1 converts between package fence's geofences and the public
// API's messages (geomatch.v1 Fence, Circle, FenceDetect), and holds the
// input rules both sides of the fleet apply: a router validates a PutFence
// with Decode before it stores the fence, and every matcher decodes the
// stored message the same way before it indexes it.
package fencev1

import (
	"errors"
	"fmt"
	"math"

	"github.com/geomatch/geomatch/fence"
	"github.com/geomatch/geomatch/internal/geo"
	"github.com/geomatch/geomatch/internal/validate"
	geomatchv1 "github.com/geomatch/geomatch/proto/geomatch/v1"
)

// Bounds of a fence definition.
const (
	// MaxIDBytes bounds fence ids and set names.
	MaxIDBytes = validate.MaxIDBytes
	// MaxLabels bounds a fence's labels, MaxLabelBytes each key and value.
	MaxLabels     = 32
	MaxLabelBytes = 256
	// MaxGeoJSONBytes bounds the GeoJSON text of one fence.
	MaxGeoJSONBytes = 1 << 20
	// MaxClassBytes bounds the vehicle class.
	MaxClassBytes = 64
)

// DefaultSet is the set of a fence put without one.
const DefaultSet = "default"

// ErrInvalid marks a definition that breaks the rules; the error's text
// names the field.
var ErrInvalid = errors.New("invalid fence")

// Decode validates pb and returns the fence it defines. Errors wrap
// ErrInvalid and start with the field's path ("fence.geojson: ...").
func Decode(pb *geomatchv1.Fence) (*fence.Fence, error) {
	f, err := decodeMeta(pb)
	if err != nil {
		return nil, err
	}
	var shape fence.Shape
	switch s := pb.GetShape().(type) {
	case *geomatchv1.Fence_Geojson:
		if len(s.Geojson) > MaxGeoJSONBytes {
			return nil, invalid("fence.geojson", fmt.Sprintf("must be at most %d bytes, got %d", MaxGeoJSONBytes, len(s.Geojson)))
		}
		if shape, err = fence.ParseGeoJSON(s.Geojson); err != nil {
			return nil, invalid("fence.geojson", err.Error())
		}
	case *geomatchv1.Fence_Circle:
		c := s.Circle
		if c == nil || c.GetCenter() == nil {
			return nil, invalid("fence.circle.center", "required")
		}
		center := geo.LatLng{Lat: c.GetCenter().GetLat(), Lng: c.GetCenter().GetLng()}
		if err := center.Validate(); err != nil {
			return nil, invalid("fence.circle.center", err.Error())
		}
		if r := c.GetRadiusM(); math.IsNaN(r) || r <= 0 {
			return nil, invalid("fence.circle.radius_m", fmt.Sprintf("must be > 0, got %v", r))
		}
		if shape, err = fence.NewCircle(center, c.GetRadiusM()); err != nil {
			return nil, invalid("fence.circle", err.Error())
		}
	default:
		return nil, invalid("fence.shape", "one of geojson or circle is required")
	}
	f.Shape = shape
	return f, nil
}

// decodeMeta validates everything of pb but its shape and returns the
// fence without one.
func decodeMeta(pb *geomatchv1.Fence) (*fence.Fence, error) {
	if pb == nil {
		return nil, invalid("fence", "required")
	}
	if err := validate.Name(pb.GetFenceId()); err != nil {
		return nil, invalid("fence.fence_id", err.Error())
	}
	set := pb.GetSet()
	if set == "" {
		set = DefaultSet
	}
	if err := validate.Name(set); err != nil {
		return nil, invalid("fence.set", err.Error())
	}
	if len(pb.GetVehicleClass()) > MaxClassBytes {
		return nil, invalid("fence.vehicle_class", fmt.Sprintf("must be at most %d bytes", MaxClassBytes))
	}
	if len(pb.GetLabels()) > MaxLabels {
		return nil, invalid("fence.labels", fmt.Sprintf("at most %d labels, got %d", MaxLabels, len(pb.GetLabels())))
	}
	for k, v := range pb.GetLabels() {
		if k == "" || len(k) > MaxLabelBytes || len(v) > MaxLabelBytes {
			return nil, invalid("fence.labels", fmt.Sprintf("keys must be 1..%d bytes and values at most %d", MaxLabelBytes, MaxLabelBytes))
		}
	}
	detect, err := DetectOf(pb.GetDetect())
	if err != nil {
		return nil, invalid("fence.detect", err.Error())
	}
	return &fence.Fence{
		ID: pb.GetFenceId(), Set: set, Detect: detect,
		VehicleClass: pb.GetVehicleClass(), Labels: pb.GetLabels(),
	}, nil
}

func invalid(field, msg string) error {
	return invalidError{field + ": " + msg}
}

// invalidError is a definition error: its text names the field, and it
// matches ErrInvalid under errors.Is.
type invalidError struct{ msg string }

func (e invalidError) Error() string        { return e.msg }
func (e invalidError) Is(target error) bool { return target == ErrInvalid }

// DetectOf returns the detect set of a fence's list (empty: enter and
// exit).
func DetectOf(list []geomatchv1.FenceDetect) (fence.Detect, error) {
	if len(list) == 0 {
		return fence.DefaultDetect, nil
	}
	var d fence.Detect
	for _, x := range list {
		switch x {
		case geomatchv1.FenceDetect_FENCE_DETECT_UNSPECIFIED:
			d |= fence.DefaultDetect
		case geomatchv1.FenceDetect_FENCE_DETECT_ENTER:
			d |= fence.DetectEnter
		case geomatchv1.FenceDetect_FENCE_DETECT_EXIT:
			d |= fence.DetectExit
		case geomatchv1.FenceDetect_FENCE_DETECT_INSIDE:
			d |= fence.DetectInside
		case geomatchv1.FenceDetect_FENCE_DETECT_CROSS:
			d |= fence.DetectCross
		default:
			return 0, fmt.Errorf("unknown value %d", x)
		}
	}
	return d, nil
}

// DetectOfTransition is the API's name of a transition.
func DetectOfTransition(t fence.Transition) geomatchv1.FenceDetect {
	switch t {
	case fence.Enter:
		return geomatchv1.FenceDetect_FENCE_DETECT_ENTER
	case fence.Exit:
		return geomatchv1.FenceDetect_FENCE_DETECT_EXIT
	case fence.Inside:
		return geomatchv1.FenceDetect_FENCE_DETECT_INSIDE
	case fence.Cross:
		return geomatchv1.FenceDetect_FENCE_DETECT_CROSS
	}
	return geomatchv1.FenceDetect_FENCE_DETECT_UNSPECIFIED
}

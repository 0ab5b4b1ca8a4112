package simulator

import (
	"math/rand/v2"
	"time"

	"github.com/geomatch/geomatch/client"
	geomatchv1 "github.com/geomatch/geomatch/proto/geomatch/v1"
	"github.com/geomatch/geomatch/simulator/city"
)

// dstate is where a driver stands.
type dstate uint8

const (
	// idle: on shift (or off), no trip; roaming.
	idle dstate = iota
	// thinking about an offer (still roaming).
	thinking
	// accepting: accepted, waiting for the assignment.
	accepting
	// toPickup and toDropoff: driving a trip.
	toPickup
	toDropoff
)

// busy reports whether the state counts as working a trip.
func (s dstate) busy() bool { return s >= accepting }

// driver is one simulated driver and its app. It is owned by one worker:
// only that worker's goroutine reads or writes it (the session's own
// goroutine touches only sess, and hands its events to the worker).
type driver struct {
	idx   int
	id    string
	class string
	rng   *rand.Rand
	mv    *city.Mover
	w     *worker

	sess      *client.DriverSession
	connected bool
	broken    bool // a send failed: the stream is gone

	online      bool
	shiftChange float64 // simulated second of the next shift start or end
	state       dstate
	lastTS      int64   // last location timestamp sent, Unix ms
	movedAt     float64 // simulated second the mover was advanced to

	// gen invalidates timers of an offer or trip that is over.
	gen uint32

	// The pending offer (thinking, accepting).
	offerID, offerTrip string
	accept             bool
	answeredAt         time.Time
	offeredAt          time.Time

	// The trip being driven (toPickup, toDropoff).
	trip *driving

	// The last progress report sent, awaiting the service's echo.
	progressTrip  string
	progressState geomatchv1.TripState
	progressAt    time.Time
}

// driving is a trip a driver is working.
type driving struct {
	id              string
	pickup, dropoff city.NodeID
	assignedAt      float64 // simulated
	pickedAt        float64
	// carried: a trip of the warm start, begun before the run; the
	// service has no such trip (id is empty).
	carried bool
}

// status is what the driver's location updates say about it.
func (d *driver) status() geomatchv1.DriverStatus {
	switch {
	case !d.online:
		return geomatchv1.DriverStatus_DRIVER_STATUS_OFFLINE
	case d.state == thinking:
		return geomatchv1.DriverStatus_DRIVER_STATUS_RESERVED
	case d.state.busy():
		return geomatchv1.DriverStatus_DRIVER_STATUS_ON_TRIP
	}
	return geomatchv1.DriverStatus_DRIVER_STATUS_AVAILABLE
}

// advance moves the driver to simulated second t and reports whether it
// reached the end of its route.
func (d *driver) advance(t float64) bool {
	dt := t - d.movedAt
	if dt < 0 {
		dt = 0
	}
	d.movedAt = t
	return d.mv.Advance(dt, d.rng)
}

// timestamp returns the next location timestamp: the wall clock, but
// always after the previous one (the service ignores older updates).
func (d *driver) timestamp(now time.Time) int64 {
	ts := max(now.UnixMilli(), d.lastTS+1)
	d.lastTS = ts
	return ts
}

package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"os"
	"strings"
	"sync"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	"github.com/geomatch/geomatch/client"
	"github.com/geomatch/geomatch/internal/geo"
	geomatchv1 "github.com/geomatch/geomatch/proto/geomatch/v1"
)

// `geomatch driver` is one driver app on the command line: it holds a
// Connect stream to a router, reports its position, prints the offers it
// gets and answers them, and drives its trips (to the pickup, then to the
// drop-off, reporting both). It is the way to try rides by hand and to see
// what a driver app sees.

// driverCmd is one `geomatch driver` run.
type driverCmd struct {
	api      apiFlags
	id       string
	at       latLngFlag
	class    string
	accept   string
	every    time.Duration
	speedKmh float64
	maxTrips int
	duration time.Duration
	json     bool

	out   io.Writer
	stdin *bufio.Reader

	mu  sync.Mutex // guards pos, status and trip, written by the driving loop and read by the reporter
	pos geo.LatLng
	st  geomatchv1.DriverStatus
	// trip is the trip being driven (nil: none).
	trip *geomatchv1.Trip
	// leg is how far the trip is: toward the pickup, then the drop-off.
	leg geomatchv1.TripState
	// The last trip state printed, so that a repeat is not.
	lastTrip  string
	lastState geomatchv1.TripState
}

const driverUsage = `Usage: geomatch driver --id ID --at LAT,LNG [flags]

Be a driver: hold a Connect stream to a router (--target), report a position
every --every, print each ride offer and answer it (--accept auto accepts,
decline declines, ask asks on stdin), then drive an assigned trip: straight
to the pickup at --speed-kmh, report PICKED_UP, on to the drop-off, report
COMPLETED, and be available again. A broken stream is reconnected with a
backoff. Stops after --max-trips completed trips, after --duration, or on
Ctrl-C (the driver goes offline). One line per event (--json: protojson).

Flags:
`

// runDriver is `geomatch driver`.
func runDriver(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	d := &driverCmd{out: stdout, stdin: bufio.NewReader(os.Stdin)}
	fs := flag.NewFlagSet("geomatch driver", flag.ContinueOnError)
	fs.SetOutput(stderr)
	d.api.register(fs, false)
	fs.StringVar(&d.id, "id", "", "the driver's `ID` (a driver token must name it)")
	fs.Var(&d.at, "at", "where the driver starts (`LAT,LNG`)")
	fs.StringVar(&d.class, "class", "", "vehicle class (offers of trips asking another class are not made)")
	fs.StringVar(&d.accept, "accept", "auto", "how to answer offers: auto, decline or ask (y/n on stdin)")
	fs.DurationVar(&d.every, "every", 2*time.Second, "how often to report the position")
	fs.Float64Var(&d.speedKmh, "speed-kmh", 30, "driving speed to the pickup and the drop-off")
	fs.IntVar(&d.maxTrips, "max-trips", 0, "stop after this many completed trips (0: no limit)")
	fs.DurationVar(&d.duration, "duration", 0, "stop after this long (0: until interrupted)")
	fs.BoolVar(&d.json, "json", false, "print each event from the router as one protojson line")
	fs.Usage = func() {
		fmt.Fprint(stderr, driverUsage)
		printFlags(stderr, fs, "  ", func(string) bool { return true })
	}
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("geomatch driver: unexpected argument %q (flags only)", fs.Arg(0))
	}
	if err := fillFromEnv(fs); err != nil {
		return err
	}
	switch {
	case d.id == "":
		return errors.New("geomatch driver: --id is required")
	case !d.at.set:
		return errors.New("geomatch driver: --at LAT,LNG is required")
	case d.accept != "auto" && d.accept != "decline" && d.accept != "ask":
		return fmt.Errorf("geomatch driver: --accept %q: want auto, decline or ask", d.accept)
	case d.every <= 0 || d.speedKmh <= 0 || math.IsNaN(d.speedKmh):
		return errors.New("geomatch driver: --every and --speed-kmh must be positive")
	}
	d.pos, d.st = d.at.p, geomatchv1.DriverStatus_DRIVER_STATUS_AVAILABLE
	if d.duration > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, d.duration)
		defer cancel()
	}
	opts, err := d.api.sec.dialOptions(d.api.target)
	if err != nil {
		return err
	}
	cc, err := grpc.NewClient(d.api.target, opts...)
	if err != nil {
		return fmt.Errorf("router at %s: %w", d.api.target, err)
	}
	defer cc.Close()
	conn, err := client.New(cc)
	if err != nil {
		return err
	}
	return d.run(ctx, conn)
}

// finishWait bounds the wait for the router's confirmation of the last
// trip's completion.
const finishWait = 5 * time.Second

// driverReconnects bounds the reconnects in a row (backoff 100 ms doubling
// to 5 s): over an hour of a router that stays away.
const driverReconnects = 1000

// run holds a driver session (package client) until ctx ends or the
// trips are done: position reports on a ticker, the router's events as
// they come. The session reconnects a broken stream with a backoff of
// 100 ms doubling to 5 s, and sends the last position again.
func (d *driverCmd) run(ctx context.Context, conn *client.Conn) error {
	events := make(chan *geomatchv1.DriverEvent)
	// stop releases the session's goroutine from handing over events once
	// this loop no longer takes them.
	stop := make(chan struct{})
	stopForwarding := sync.OnceFunc(func() { close(stop) })
	defer stopForwarding()
	forward := func(ev *geomatchv1.DriverEvent) {
		select {
		case events <- ev:
		case <-stop:
		}
	}
	sess, err := conn.ConnectDriver(ctx, client.DriverConfig{
		DriverID: d.id, VehicleClass: d.class,
		MinBackoff: 100 * time.Millisecond, MaxBackoff: 5 * time.Second, MaxReconnects: driverReconnects,
		OnConnected: func(ack *geomatchv1.ConnectAck) {
			forward(&geomatchv1.DriverEvent{Event: &geomatchv1.DriverEvent_Connected{Connected: ack}})
		},
		OnEvent: forward,
		OnDisconnected: func(err error, retryIn time.Duration) {
			d.printf("stream lost (%v); reconnecting in %v", err, retryIn.Round(time.Millisecond))
		},
	})
	if err != nil {
		if ctx.Err() != nil {
			d.printf("stopped (0 trips completed)")
			return nil
		}
		return fmt.Errorf("geomatch driver: the router at %s refused the stream: %w", d.api.target, err)
	}
	defer func() {
		stopForwarding()
		sess.Abort()
		<-sess.Done()
	}()
	// finish closes the session: the router answers the last reports.
	finish := func() {
		stopForwarding()
		_ = sess.Close()
	}
	completed := 0
	send := func(m *geomatchv1.DriverMessage) {
		if err := sess.Send(m); err != nil {
			d.printf("not sent: %v", err)
		}
	}
	tick := time.NewTicker(d.every)
	defer tick.Stop()
	// Once the last trip's completion is sent, the session waits (up to
	// finishWait) for the router to confirm it before it closes.
	var finishing <-chan time.Time
	for {
		select {
		case <-ctx.Done():
			// Going off shift: the last report says so.
			d.mu.Lock()
			d.st = geomatchv1.DriverStatus_DRIVER_STATUS_OFFLINE
			d.mu.Unlock()
			send(d.location())
			finish()
			d.printf("stopped (%d trips completed)", completed)
			return nil
		case <-sess.Done():
			return fmt.Errorf("geomatch driver: the session with the router at %s ended: %w", d.api.target, sess.Err())
		case <-tick.C:
			for _, m := range d.drive(d.every) {
				send(m)
				if m.GetTripProgress().GetState() == geomatchv1.TripState_TRIP_STATE_COMPLETED {
					completed++
				}
			}
			send(d.location())
			if d.maxTrips > 0 && completed >= d.maxTrips && finishing == nil {
				finishing = time.After(finishWait)
			}
		case <-finishing:
			d.printf("the router did not confirm the last trip's completion within %v", finishWait)
			finish()
			d.printf("done: %d trips completed", completed)
			return nil
		case ev := <-events:
			if ev.GetConnected() != nil {
				send(d.location()) // a new stream: say where the driver is
			}
			if m := d.handle(ev); m != nil {
				send(m)
			}
			if finishing != nil && ev.GetTrip().GetState() == geomatchv1.TripState_TRIP_STATE_COMPLETED {
				finish()
				d.printf("done: %d trips completed", completed)
				return nil
			}
		}
	}
}

// location is the driver's current position report.
func (d *driverCmd) location() *geomatchv1.DriverMessage {
	d.mu.Lock()
	defer d.mu.Unlock()
	return &geomatchv1.DriverMessage{Msg: &geomatchv1.DriverMessage_Location{Location: &geomatchv1.LocationUpdate{
		DriverId: d.id, Position: &geomatchv1.LatLng{Lat: d.pos.Lat, Lng: d.pos.Lng},
		TimestampMs: time.Now().UnixMilli(), Status: d.st, VehicleClass: d.class,
	}}}
}

// handle prints one event from the router and returns the answer to
// send, if any.
func (d *driverCmd) handle(ev *geomatchv1.DriverEvent) *geomatchv1.DriverMessage {
	if d.json {
		b, _ := protojson.Marshal(ev)
		fmt.Fprintln(d.out, string(b))
	}
	switch e := ev.GetEvent().(type) {
	case *geomatchv1.DriverEvent_Connected:
		d.textf("connected as %s", e.Connected.GetDriverId())
	case *geomatchv1.DriverEvent_Rejected:
		d.textf("position not applied: %s %s", e.Rejected.GetReason(), e.Rejected.GetMessage())
	case *geomatchv1.DriverEvent_Offer:
		o := e.Offer
		t := o.GetTrip()
		left := time.Until(time.UnixMilli(o.GetExpiresAtMs())).Round(100 * time.Millisecond)
		d.textf("offer %s: trip %s, pickup %s (%.0f m away), drop-off %s, expires in %v",
			o.GetOfferId(), t.GetTripId(), fmtLatLng(t.GetPickup()), o.GetPickupDistanceM(), fmtLatLng(t.GetDropoff()), left)
		yes := d.decide(o)
		if yes {
			d.textf("accepting offer %s", o.GetOfferId())
		} else {
			d.textf("declining offer %s", o.GetOfferId())
		}
		return &geomatchv1.DriverMessage{Msg: &geomatchv1.DriverMessage_OfferAnswer{OfferAnswer: &geomatchv1.OfferAnswer{
			OfferId: o.GetOfferId(), TripId: t.GetTripId(), Accept: yes,
		}}}
	case *geomatchv1.DriverEvent_Trip:
		t := e.Trip
		d.mu.Lock()
		defer d.mu.Unlock()
		if t.GetTripId() != d.lastTrip || t.GetState() != d.lastState {
			// The same state may come twice (the answer, then the event bus).
			d.lastTrip, d.lastState = t.GetTripId(), t.GetState()
			d.textf("trip %s: %s", t.GetTripId(), strings.TrimPrefix(t.GetState().String(), "TRIP_STATE_"))
		}
		switch t.GetState() {
		case geomatchv1.TripState_TRIP_STATE_ASSIGNED:
			if t.GetDriverId() == d.id {
				d.trip, d.leg = proto.Clone(t).(*geomatchv1.Trip), geomatchv1.TripState_TRIP_STATE_ASSIGNED
				d.st = geomatchv1.DriverStatus_DRIVER_STATUS_ON_TRIP
			}
		case geomatchv1.TripState_TRIP_STATE_CANCELLED, geomatchv1.TripState_TRIP_STATE_NO_DRIVER:
			if d.trip != nil && d.trip.GetTripId() == t.GetTripId() {
				d.trip = nil
				d.st = geomatchv1.DriverStatus_DRIVER_STATUS_AVAILABLE
			}
		}
	case *geomatchv1.DriverEvent_OfferClosed:
		c := e.OfferClosed
		d.textf("offer %s (trip %s) closed: %s", c.GetOfferId(), c.GetTripId(), c.GetReason())
	}
	return nil
}

// decide answers an offer by --accept.
func (d *driverCmd) decide(o *geomatchv1.RideOffer) bool {
	switch d.accept {
	case "decline":
		return false
	case "ask":
		fmt.Fprintf(d.out, "accept trip %s? [y/N] ", o.GetTrip().GetTripId())
		line, _ := d.stdin.ReadString('\n')
		return strings.HasPrefix(strings.ToLower(strings.TrimSpace(line)), "y")
	}
	return true
}

// drive moves the driver along its trip for dt and returns the progress
// reports due (picked up, completed).
func (d *driverCmd) drive(dt time.Duration) []*geomatchv1.DriverMessage {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.trip == nil {
		return nil
	}
	target := d.trip.GetPickup()
	if d.leg == geomatchv1.TripState_TRIP_STATE_PICKED_UP {
		target = d.trip.GetDropoff()
	}
	to := geo.LatLng{Lat: target.GetLat(), Lng: target.GetLng()}
	step := d.speedKmh / 3.6 * dt.Seconds()
	dist := geo.DistanceM(d.pos, to)
	if dist > step {
		f := step / dist
		d.pos = geo.LatLng{Lat: d.pos.Lat + f*(to.Lat-d.pos.Lat), Lng: d.pos.Lng + f*(to.Lng-d.pos.Lng)}
		return nil
	}
	d.pos = to
	progress := func(s geomatchv1.TripState) *geomatchv1.DriverMessage {
		return &geomatchv1.DriverMessage{Msg: &geomatchv1.DriverMessage_TripProgress{TripProgress: &geomatchv1.TripProgress{
			TripId: d.trip.GetTripId(), State: s,
		}}}
	}
	if d.leg == geomatchv1.TripState_TRIP_STATE_ASSIGNED {
		d.leg = geomatchv1.TripState_TRIP_STATE_PICKED_UP
		d.textf("at the pickup of trip %s: picked up", d.trip.GetTripId())
		return []*geomatchv1.DriverMessage{progress(geomatchv1.TripState_TRIP_STATE_PICKED_UP)}
	}
	m := progress(geomatchv1.TripState_TRIP_STATE_COMPLETED)
	d.textf("at the drop-off of trip %s: completed", d.trip.GetTripId())
	d.trip = nil
	d.st = geomatchv1.DriverStatus_DRIVER_STATUS_AVAILABLE
	return []*geomatchv1.DriverMessage{m}
}

// textf prints a human-readable line (not with --json).
func (d *driverCmd) textf(format string, args ...any) {
	if !d.json {
		d.printf(format, args...)
	}
}

// printf prints one line, stamped with the time.
func (d *driverCmd) printf(format string, args ...any) {
	fmt.Fprintf(d.out, "%s %s: %s\n", time.Now().Format("15:04:05.000"), d.id, fmt.Sprintf(format, args...))
}

func fmtLatLng(p *geomatchv1.LatLng) string {
	return fmt.Sprintf("%.5f,%.5f", p.GetLat(), p.GetLng())
}

// latLngFlag is a LAT,LNG flag.
type latLngFlag struct {
	p   geo.LatLng
	set bool
}

func (f *latLngFlag) String() string {
	if f == nil || !f.set {
		return ""
	}
	return fmt.Sprintf("%g,%g", f.p.Lat, f.p.Lng)
}

func (f *latLngFlag) Set(s string) error {
	v, err := parseNumbers(s, "LAT,LNG", "40.758,-73.985")
	if err != nil {
		return err
	}
	p := geo.LatLng{Lat: v[0], Lng: v[1]}
	if err := p.Validate(); err != nil {
		return fmt.Errorf("%q: %v (the order is LAT,LNG)", s, err)
	}
	f.p, f.set = p, true
	return nil
}

package chaos

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"

	geomatchv1 "github.com/geomatch/geomatch/proto/geomatch/v1"
)

// LoadConfig is the client load of a run.
type LoadConfig struct {
	// Routers are the public addresses load goes to (loopback only).
	Routers []string
	// Drivers stream their positions in the query area; together they send
	// UpdatesPerS updates a second.
	Drivers     int
	UpdatesPerS float64
	// BatchedUpdatesPerS more updates a second come from fleet gateways
	// in UpdateLocations batches (drivers of their own in the same area,
	// one update a second each): how telematics back ends report most of
	// a fleet, at a fraction of a stream message's cost per update.
	BatchedUpdatesPerS float64
	// QueriesPerS nearby queries a second over the drivers' area.
	QueriesPerS float64
	// RideDrivers answer offers in a separate area where RidesPerS ride
	// requests a second are made.
	RideDrivers int
	RidesPerS   float64
	Seed        uint64
}

// The areas: drivers and nearby queries around queryArea, ride drivers
// and ride requests around rideArea, some 40 km away (farther than any
// pickup radius), so ride drivers never show in queries and streaming
// drivers never get offers.
var (
	queryArea = [2]float64{40.72, -73.95}
	rideArea  = [2]float64{40.45, -74.35}
)

const (
	queryHalfLat, queryHalfLng = 0.05, 0.07
	rideHalf                   = 0.01
	stepDeg                    = 0.0002 // about 20 m a step
	// maxPending bounds the unacknowledged updates a driver keeps; past it
	// the driver skips updates until acknowledgements come.
	maxPending = 1000
	// maxWorkers bounds the queries or ride requests in flight (a second
	// and a half of queries at their rate, within [32, maxWorkers]: a
	// query may wait out a failover within its budget); maxPollers the
	// trips polled at once.
	maxWorkers = 4096
	maxPollers = 256
	// gatewayTick is how often a gateway sends a batch (each of its
	// drivers every gatewaySlots ticks, one second), maxGateways how many
	// there are at most, gatewayInflight the batches a slot may have
	// unanswered, and gatewayTimeout a batch call's deadline.
	gatewayTick     = 100 * time.Millisecond
	gatewaySlots    = 10
	maxGateways     = 8
	gatewayInflight = 4
	gatewayTimeout  = 10 * time.Second
)

// Load drives client traffic and records it in a History.
type Load struct {
	cfg   LoadConfig
	h     *History
	conns []*grpc.ClientConn

	traffic     context.Context // ends when traffic stops
	stopTraffic context.CancelFunc
	life        context.Context // ends when streams close
	endLife     context.CancelFunc
	closing     atomic.Bool
	wg          sync.WaitGroup

	drivers []*driver
	tripsMu sync.Mutex
	trips   []string // acknowledged trip ids
	pollers chan struct{}
	// Operations that could not start on time (every worker busy, or a
	// driver with maxPending updates unacknowledged): the rates reached
	// are lower by that much.
	skippedQueries, skippedRides, skippedUpdates atomic.Int64
	// batchedSent counts the updates gateways sent.
	batchedSent atomic.Int64
}

// NewLoad dials the routers.
func NewLoad(cfg LoadConfig, h *History) (*Load, error) {
	if len(cfg.Routers) == 0 {
		return nil, errors.New("no router to send load to")
	}
	l := &Load{cfg: cfg, h: h, pollers: make(chan struct{}, maxPollers)}
	for _, addr := range cfg.Routers {
		host, _, err := net.SplitHostPort(addr)
		if err != nil {
			return nil, fmt.Errorf("router address %q: %w", addr, err)
		}
		if ip := net.ParseIP(host); host != "localhost" && (ip == nil || !ip.IsLoopback()) {
			return nil, fmt.Errorf("router address %q: load goes to loopback addresses only", addr)
		}
		// A few connections per router spread the streams.
		for range 4 {
			conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
			if err != nil {
				l.Close()
				return nil, fmt.Errorf("dial %s: %w", addr, err)
			}
			l.conns = append(l.conns, conn)
		}
	}
	return l, nil
}

// Skipped returns how many updates, queries and ride requests could not
// start on time: the rates reached are lower by that much.
func (l *Load) Skipped() Skipped {
	return Skipped{Updates: l.skippedUpdates.Load(), Queries: l.skippedQueries.Load(), Rides: l.skippedRides.Load()}
}

// Skipped counts operations the load could not start on time.
type Skipped struct {
	Updates int64 `json:"updates"`
	Queries int64 `json:"queries"`
	Rides   int64 `json:"rides"`
}

// Start begins the traffic; it runs until StopTraffic.
func (l *Load) Start(ctx context.Context) {
	l.life, l.endLife = context.WithCancel(context.WithoutCancel(ctx))
	l.traffic, l.stopTraffic = context.WithCancel(ctx)
	r := rand.New(rand.NewPCG(l.cfg.Seed, 1))
	interval := time.Second
	if l.cfg.Drivers > 0 && l.cfg.UpdatesPerS > 0 {
		interval = time.Duration(float64(time.Second) * float64(l.cfg.Drivers) / l.cfg.UpdatesPerS)
	}
	for i := range l.cfg.Drivers {
		d := &driver{l: l, id: fmt.Sprintf("d%05d", i), conn: l.conns[i%len(l.conns)], interval: interval,
			lat: queryArea[0] + (r.Float64()*2-1)*queryHalfLat, lng: queryArea[1] + (r.Float64()*2-1)*queryHalfLng,
			box: [4]float64{queryArea[0] - queryHalfLat, queryArea[0] + queryHalfLat, queryArea[1] - queryHalfLng, queryArea[1] + queryHalfLng},
			r:   rand.New(rand.NewPCG(l.cfg.Seed, uint64(i)+100))}
		l.drivers = append(l.drivers, d)
	}
	for i := range l.cfg.RideDrivers {
		d := &driver{l: l, id: fmt.Sprintf("r%05d", i), conn: l.conns[i%len(l.conns)], interval: 2 * time.Second, rides: true,
			lat: rideArea[0] + (r.Float64()*2-1)*rideHalf, lng: rideArea[1] + (r.Float64()*2-1)*rideHalf,
			box: [4]float64{rideArea[0] - rideHalf, rideArea[0] + rideHalf, rideArea[1] - rideHalf, rideArea[1] + rideHalf},
			r:   rand.New(rand.NewPCG(l.cfg.Seed, uint64(i)+1_000_000))}
		l.drivers = append(l.drivers, d)
	}
	for _, d := range l.drivers {
		l.wg.Add(1)
		go d.run()
	}
	l.startGateways(r)
	if l.cfg.QueriesPerS > 0 {
		l.wg.Add(1)
		go l.pace(l.cfg.QueriesPerS, &l.skippedQueries, rand.New(rand.NewPCG(l.cfg.Seed, 2)), l.query)
	}
	if l.cfg.RidesPerS > 0 && l.cfg.RideDrivers > 0 {
		l.wg.Add(1)
		go l.pace(l.cfg.RidesPerS, &l.skippedRides, rand.New(rand.NewPCG(l.cfg.Seed, 3)), l.ride)
	}
}

// StopTraffic stops updates, queries and ride requests; driver streams
// stay open (for the last acknowledgements and the readback) and trips
// under way are driven to their end.
func (l *Load) StopTraffic() { l.stopTraffic() }

// Close closes the driver streams and waits for every goroutine.
func (l *Load) Close() {
	if l.stopTraffic != nil {
		l.stopTraffic()
		l.closing.Store(true)
		l.endLife()
		l.wg.Wait()
	}
	for _, c := range l.conns {
		_ = c.Close()
	}
}

// pace calls fn perS times a second on a bounded number of goroutines,
// until traffic stops. A call that finds every worker busy is skipped
// (and counted): the harness never queues without bound.
func (l *Load) pace(perS float64, skipped *atomic.Int64, r *rand.Rand, fn func(context.Context, *rand.Rand, int)) {
	defer l.wg.Done()
	const tick = 10 * time.Millisecond
	sem := make(chan struct{}, min(max(32, int(perS*1.5)), maxWorkers))
	t := time.NewTicker(tick)
	defer t.Stop()
	var owed float64
	n := 0
	var wg sync.WaitGroup
	defer wg.Wait()
	for {
		select {
		case <-l.traffic.Done():
			return
		case <-t.C:
		}
		owed += perS * tick.Seconds()
		for ; owed >= 1; owed-- {
			select {
			case sem <- struct{}{}:
			default:
				skipped.Add(1)
				continue
			}
			n++
			seed := r.Uint64()
			wg.Add(1)
			go func(n int) {
				defer wg.Done()
				defer func() { <-sem }()
				fn(l.traffic, rand.New(rand.NewPCG(seed, 4)), n)
			}(n)
		}
	}
}

func (l *Load) rider(n int) geomatchv1.RiderServiceClient {
	return geomatchv1.NewRiderServiceClient(l.conns[n%len(l.conns)])
}

// query runs one nearby query and records it.
func (l *Load) query(ctx context.Context, r *rand.Rand, n int) {
	lat := queryArea[0] + (r.Float64()*2-1)*queryHalfLat*0.8
	lng := queryArea[1] + (r.Float64()*2-1)*queryHalfLng*0.8
	radius, limit := 1000.0, 20
	if n%4 == 0 {
		radius, limit = 3000, 50
	}
	op := Op{Kind: KindNearby, Lat: lat, Lng: lng, RadiusM: radius, Limit: limit, Start: l.h.Now()}
	cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 3*time.Second)
	resp, err := l.rider(n).NearbyDrivers(cctx, &geomatchv1.NearbyDriversRequest{
		Position: &geomatchv1.LatLng{Lat: lat, Lng: lng}, RadiusM: radius, Limit: int32(limit)})
	cancel()
	op.End = l.h.Now()
	if err != nil {
		op.Outcome, op.Code, op.Detail = Failed, status.Code(err).String(), status.Convert(err).Message()
		l.h.Add(op)
		return
	}
	op.Outcome = OK
	if resp.GetPartial() {
		op.Outcome, op.Missing = Partial, resp.GetMissingShards()
	}
	for _, d := range resp.GetDrivers() {
		op.Results = append(op.Results, Seen{Driver: d.GetDriverId(), TS: d.GetTimestampMs(), Lat: d.GetPosition().GetLat(), Lng: d.GetPosition().GetLng()})
	}
	l.h.Add(op)
}

// ride requests one ride and polls its trip to the end.
func (l *Load) ride(ctx context.Context, r *rand.Rand, n int) {
	lat := rideArea[0] + (r.Float64()*2-1)*rideHalf
	lng := rideArea[1] + (r.Float64()*2-1)*rideHalf
	req := &geomatchv1.RequestRideRequest{RequestId: fmt.Sprintf("chaos-%d-%d", l.cfg.Seed, n), RiderId: fmt.Sprintf("rider%05d", n),
		Pickup: &geomatchv1.LatLng{Lat: lat, Lng: lng}, Dropoff: &geomatchv1.LatLng{Lat: lat + 0.01, Lng: lng + 0.01}}
	op := Op{Kind: KindRide, Lat: lat, Lng: lng, Start: l.h.Now()}
	cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	trip, err := l.rider(n).RequestRide(cctx, req)
	cancel()
	op.End = l.h.Now()
	if err != nil {
		op.Outcome, op.Code, op.Detail = Failed, status.Code(err).String(), status.Convert(err).Message()
		l.h.Add(op)
		return
	}
	op.Outcome, op.Trip, op.State, op.Driver = OK, trip.GetTripId(), stateName(trip.GetState()), trip.GetDriverId()
	l.h.Add(op)
	l.tripsMu.Lock()
	l.trips = append(l.trips, trip.GetTripId())
	l.tripsMu.Unlock()
	select {
	case l.pollers <- struct{}{}:
	default:
		return // enough pollers: the final readback sees this trip
	}
	defer func() { <-l.pollers }()
	for range 30 {
		select {
		case <-l.life.Done():
			return
		case <-time.After(time.Second):
		}
		if s := l.observe(l.life, trip.GetTripId(), n); terminal(s) {
			return
		}
	}
}

// observe reads a trip with GetTrip, records what it saw and returns the
// state ("" when the call failed).
func (l *Load) observe(ctx context.Context, tripID string, n int) string {
	op := Op{Kind: KindTrip, Trip: tripID, Start: l.h.Now()}
	cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 3*time.Second)
	t, err := l.rider(n).GetTrip(cctx, &geomatchv1.GetTripRequest{TripId: tripID})
	cancel()
	op.End = l.h.Now()
	switch {
	case status.Code(err) == codes.NotFound:
		op.Outcome, op.State = OK, StateNotFound
	case err != nil:
		op.Outcome, op.Code, op.Detail = Failed, status.Code(err).String(), status.Convert(err).Message()
	default:
		op.Outcome, op.State, op.Driver = OK, stateName(t.GetState()), t.GetDriverId()
	}
	l.h.Add(op)
	return op.State
}

// Readback reads every streaming driver's held position and every
// acknowledged trip, after the traffic stopped and settle passed.
func (l *Load) Readback(ctx context.Context, settle time.Duration) {
	select {
	case <-ctx.Done():
		return
	case <-time.After(settle):
	}
	work := make(chan int)
	var wg sync.WaitGroup
	for w := range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range work {
				l.readDriver(ctx, l.drivers[i], w)
			}
		}()
	}
	for i, d := range l.drivers {
		if d.rides {
			continue
		}
		select {
		case work <- i:
		case <-ctx.Done():
		}
	}
	close(work)
	wg.Wait()
	l.tripsMu.Lock()
	trips := append([]string(nil), l.trips...)
	l.tripsMu.Unlock()
	for i, id := range trips {
		if ctx.Err() != nil {
			return
		}
		l.observe(ctx, id, i)
	}
}

// readDriver finds the driver's held position with a small query around
// the last position it sent.
func (l *Load) readDriver(ctx context.Context, d *driver, n int) {
	lat, lng := d.lastSent()
	op := Op{Kind: KindReadback, Driver: d.id, Lat: lat, Lng: lng, Start: l.h.Now()}
	cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	resp, err := l.rider(n).NearbyDrivers(cctx, &geomatchv1.NearbyDriversRequest{
		Position: &geomatchv1.LatLng{Lat: lat, Lng: lng}, RadiusM: 300, Limit: 500})
	cancel()
	op.End = l.h.Now()
	switch {
	case err != nil:
		op.Outcome, op.Code, op.Detail = Failed, status.Code(err).String(), status.Convert(err).Message()
	case resp.GetPartial():
		op.Outcome, op.Missing = Partial, resp.GetMissingShards()
	default:
		op.Outcome = OK
		for _, s := range resp.GetDrivers() {
			if s.GetDriverId() == d.id {
				op.TS = s.GetTimestampMs()
			}
		}
	}
	l.h.Add(op)
}

func stateName(s geomatchv1.TripState) string {
	const prefix = "TRIP_STATE_"
	n := s.String()
	if len(n) > len(prefix) {
		return n[len(prefix):]
	}
	return n
}

func terminal(state string) bool {
	switch state {
	case StateCompleted, StateCancelled, StateNoDriver, StateNotFound:
		return true
	}
	return false
}

// pendingUpdate is an update sent and not yet acknowledged.
type pendingUpdate struct {
	ts       int64
	start    time.Duration
	lat, lng float64
}

// driver is one driver app: a Connect stream with acknowledgements,
// reconnecting when the stream ends, and (a ride driver) accepting offers
// and driving its trips.
type driver struct {
	l        *Load
	id       string
	conn     *grpc.ClientConn
	interval time.Duration
	rides    bool
	box      [4]float64
	r        *rand.Rand

	mu       sync.Mutex
	lat, lng float64
	lastTS   int64
	pending  []pendingUpdate
	onTrip   map[string]bool
}

func (d *driver) lastSent() (float64, float64) {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.lat, d.lng
}

// run keeps a stream open until the load closes.
func (d *driver) run() {
	defer d.l.wg.Done()
	// Spread the streams' first updates over one interval.
	select {
	case <-time.After(time.Duration(d.r.Int64N(int64(d.interval)))):
	case <-d.l.life.Done():
		return
	}
	for d.l.life.Err() == nil {
		d.stream()
		select {
		case <-time.After(200 * time.Millisecond):
		case <-d.l.life.Done():
		}
	}
}

// stream runs one Connect stream to its end and records it.
func (d *driver) stream() {
	h := d.l.h
	op := Op{Kind: KindStream, Driver: d.id, Start: h.Now()}
	ctx, cancel := context.WithCancel(d.l.life)
	defer cancel()
	st, err := geomatchv1.NewDriverServiceClient(d.conn).Connect(ctx)
	if err == nil {
		err = st.Send(&geomatchv1.DriverMessage{Msg: &geomatchv1.DriverMessage_Hello{Hello: &geomatchv1.DriverHello{DriverId: d.id, WantAcks: true}}})
	}
	if err != nil {
		d.endStream(op, err)
		return
	}
	out := make(chan *geomatchv1.DriverMessage, 16)
	recvDone := make(chan error, 1)
	go func() { recvDone <- d.receive(st, out) }()

	t := time.NewTicker(d.interval)
	defer t.Stop()
	traffic := d.l.traffic.Done()
	for {
		select {
		case err := <-recvDone:
			d.endStream(op, err)
			return
		case <-d.l.life.Done():
			_ = st.CloseSend()
			select {
			case err := <-recvDone:
				d.endStream(op, err)
			case <-time.After(3 * time.Second):
				cancel()
				d.endStream(op, <-recvDone)
			}
			return
		case m := <-out:
			if err := st.Send(m); err != nil {
				cancel()
				d.endStream(op, <-recvDone)
				return
			}
		case <-traffic:
			traffic = nil // no more updates; the stream stays open
			t.Stop()
		case <-t.C:
			m := d.next()
			if m == nil {
				continue
			}
			if err := st.Send(m); err != nil {
				cancel()
				d.endStream(op, <-recvDone)
				return
			}
		}
	}
}

// next moves the driver one step and returns the update to send on its
// stream, or nil when too many are unacknowledged.
func (d *driver) next() *geomatchv1.DriverMessage {
	d.mu.Lock()
	defer d.mu.Unlock()
	if len(d.pending) >= maxPending {
		d.l.skippedUpdates.Add(1)
		return nil
	}
	u := d.stepLocked()
	d.pending = append(d.pending, u)
	return &geomatchv1.DriverMessage{Msg: &geomatchv1.DriverMessage_Location{Location: d.location(u)}}
}

// stepLocked moves the driver one step and returns the update of its new
// position. Timestamps are unique and increasing per driver: the checker
// tells updates apart by them. Caller holds d.mu.
func (d *driver) stepLocked() pendingUpdate {
	d.lat = min(max(d.lat+(d.r.Float64()*2-1)*stepDeg, d.box[0]), d.box[1])
	d.lng = min(max(d.lng+(d.r.Float64()*2-1)*stepDeg, d.box[2]), d.box[3])
	ts := max(time.Now().UnixMilli(), d.lastTS+1)
	d.lastTS = ts
	return pendingUpdate{ts: ts, start: d.l.h.Now(), lat: d.lat, lng: d.lng}
}

// location is u as the API's message.
func (d *driver) location(u pendingUpdate) *geomatchv1.LocationUpdate {
	return &geomatchv1.LocationUpdate{DriverId: d.id, Position: &geomatchv1.LatLng{Lat: u.lat, Lng: u.lng}, TimestampMs: u.ts}
}

// endStream records the stream's end; updates still unacknowledged have
// an unknown outcome.
func (d *driver) endStream(op Op, err error) {
	h := d.l.h
	op.End = h.Now()
	op.Outcome = OK
	if err != nil && !errors.Is(err, io.EOF) && !(d.l.closing.Load() && status.Code(err) == codes.Canceled) {
		op.Outcome, op.Code, op.Detail = Failed, status.Code(err).String(), status.Convert(err).Message()
	}
	h.Add(op)
	d.mu.Lock()
	pending := d.pending
	d.pending = nil
	d.mu.Unlock()
	for _, u := range pending {
		h.Add(Op{Kind: KindUpdate, Driver: d.id, TS: u.ts, Lat: u.lat, Lng: u.lng, Start: u.start, End: op.End, Outcome: Unknown})
	}
}

// receive handles the stream's events until it ends.
func (d *driver) receive(st geomatchv1.DriverService_ConnectClient, out chan<- *geomatchv1.DriverMessage) error {
	h := d.l.h
	for {
		ev, err := st.Recv()
		if err != nil {
			return err
		}
		now := h.Now()
		switch e := ev.GetEvent().(type) {
		case *geomatchv1.DriverEvent_UpdatesAck:
			through := e.UpdatesAck.GetThroughTimestampMs()
			d.mu.Lock()
			i := 0
			for ; i < len(d.pending) && d.pending[i].ts <= through; i++ {
				u := d.pending[i]
				h.Add(Op{Kind: KindUpdate, Driver: d.id, TS: u.ts, Lat: u.lat, Lng: u.lng, Start: u.start, End: now, Outcome: OK})
			}
			d.pending = d.pending[i:]
			d.mu.Unlock()
		case *geomatchv1.DriverEvent_Rejected:
			rj := e.Rejected
			d.mu.Lock()
			for i, u := range d.pending {
				if u.ts == rj.GetTimestampMs() {
					h.Add(Op{Kind: KindUpdate, Driver: d.id, TS: u.ts, Lat: u.lat, Lng: u.lng, Start: u.start, End: now,
						Outcome: Rejected, Code: rj.GetReason().String(), Detail: rj.GetMessage()})
					d.pending = append(d.pending[:i], d.pending[i+1:]...)
					break
				}
			}
			d.mu.Unlock()
		case *geomatchv1.DriverEvent_Offer:
			o := e.Offer
			h.Add(Op{Kind: KindAnswer, Driver: d.id, Trip: o.GetTrip().GetTripId(), Start: now, End: now, Outcome: OK})
			select {
			case out <- &geomatchv1.DriverMessage{Msg: &geomatchv1.DriverMessage_OfferAnswer{OfferAnswer: &geomatchv1.OfferAnswer{
				OfferId: o.GetOfferId(), TripId: o.GetTrip().GetTripId(), Accept: true}}}:
			case <-st.Context().Done():
				return st.Context().Err()
			}
		case *geomatchv1.DriverEvent_Trip:
			t := e.Trip
			state := stateName(t.GetState())
			h.Add(Op{Kind: KindTrip, Trip: t.GetTripId(), Driver: t.GetDriverId(), State: state, Start: now, End: now, Outcome: OK})
			if state == StateAssigned && t.GetDriverId() == d.id {
				d.mu.Lock()
				start := !d.onTrip[t.GetTripId()]
				if d.onTrip == nil {
					d.onTrip = map[string]bool{}
				}
				d.onTrip[t.GetTripId()] = true
				d.mu.Unlock()
				if start {
					d.l.wg.Add(1)
					go d.drive(t.GetTripId(), out)
				}
			}
		case *geomatchv1.DriverEvent_OfferClosed:
			c := e.OfferClosed
			kind := KindAnswer
			if c.GetOfferId() == "" {
				kind = KindProgress
			}
			h.Add(Op{Kind: kind, Driver: d.id, Trip: c.GetTripId(), Start: now, End: now, Outcome: Failed, Code: c.GetReason(),
				Detail: fmt.Sprintf("retryable=%v", c.GetRetryable())})
		}
	}
}

// drive takes an assigned trip to its end: pickup after a second, drop-off
// a second later, reading the trip before each step.
func (d *driver) drive(tripID string, out chan<- *geomatchv1.DriverMessage) {
	defer d.l.wg.Done()
	defer func() {
		d.mu.Lock()
		delete(d.onTrip, tripID)
		d.mu.Unlock()
	}()
	for _, state := range []geomatchv1.TripState{geomatchv1.TripState_TRIP_STATE_PICKED_UP, geomatchv1.TripState_TRIP_STATE_COMPLETED} {
		select {
		case <-time.After(time.Second):
		case <-d.l.life.Done():
			return
		}
		if s := d.l.observe(d.l.life, tripID, 0); terminal(s) {
			return
		}
		op := Op{Kind: KindProgress, Driver: d.id, Trip: tripID, State: stateName(state), Start: d.l.h.Now(), Outcome: OK}
		select {
		case out <- &geomatchv1.DriverMessage{Msg: &geomatchv1.DriverMessage_TripProgress{TripProgress: &geomatchv1.TripProgress{TripId: tripID, State: state}}}:
		case <-time.After(5 * time.Second):
			op.Outcome, op.Code = Failed, "stream busy or gone"
		case <-d.l.life.Done():
			return
		}
		op.End = d.l.h.Now()
		d.l.h.Add(op)
	}
	select {
	case <-time.After(300 * time.Millisecond):
		d.l.observe(d.l.life, tripID, 0)
	case <-d.l.life.Done():
	}
}

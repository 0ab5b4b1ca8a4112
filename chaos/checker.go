package chaos

import (
	"cmp"
	"fmt"
	"math"
	"slices"
	"sort"
	"time"

	"github.com/geomatch/geomatch/internal/geo"
)

// Violation kinds: what clients must never see. Each is counted; a run
// with any of them fails.
const (
	// VDoubleAssignment: a driver on two live trips at once.
	VDoubleAssignment = "double_assignment"
	// VLostTrip: a trip acknowledged to its rider, later not found.
	VLostTrip = "lost_trip"
	// VLostUpdate: a driver whose acknowledged position is neither held
	// nor superseded at the end of the run.
	VLostUpdate = "lost_update"
	// VStaleAnswer: a nearby answer showing a driver's position older than
	// one acknowledged before the query began, by more than the tolerated
	// position age (what a node answering after its lease lapsed shows).
	VStaleAnswer = "stale_answer"
	// VPhantomPosition: a nearby answer showing a position the driver never
	// sent.
	VPhantomPosition = "phantom_position"
	// VIncompleteAnswer: an answer not flagged partial that leaves out a
	// driver it had to include.
	VIncompleteAnswer = "incomplete_answer"
	// VRejectedUpdate: a location update refused by the server.
	VRejectedUpdate = "rejected_update"
	// VFailedQuery: a nearby query that returned an error.
	VFailedQuery = "failed_query"
	// VFailedRide: a ride request that failed other than with
	// UNAVAILABLE or RESOURCE_EXHAUSTED (which say why, and are counted).
	VFailedRide = "failed_ride"
	// VStreamEnded: a driver's Connect stream ended by the server.
	VStreamEnded = "stream_ended"
	// VStrandedTrip: a trip still REQUESTED or OFFERED long after it was
	// acknowledged (nobody coordinates it).
	VStrandedTrip = "stranded_trip"
)

// violationOrder is the order of the verdict table.
var violationOrder = []string{VDoubleAssignment, VLostTrip, VLostUpdate, VStaleAnswer, VPhantomPosition,
	VIncompleteAnswer, VRejectedUpdate, VFailedQuery, VFailedRide, VStreamEnded, VStrandedTrip}

// CheckConfig tunes the checker; the zero value takes the defaults.
type CheckConfig struct {
	// MaxPositionAge is the position age a nearby answer may show (its
	// position older than one acknowledged before the query began) before
	// it is a stale answer. Default 1 s.
	MaxPositionAge time.Duration
	// StrandAfter is how long after its acknowledgement a trip may still be
	// REQUESTED or OFFERED when last seen. Default 20 s.
	StrandAfter time.Duration
	// FaultWindow is how long after a fault its ops count as "in the
	// window" for the latency figures. Default 5 s.
	FaultWindow time.Duration
	// SlowAck and SlowQuery mark an update acknowledged, or a query
	// answered, this long after it began as degraded (for the time to
	// serve again). Defaults 1 s.
	SlowAck, SlowQuery time.Duration
	// MaxExamples is how many examples are kept per violation kind.
	// Default 10.
	MaxExamples int
}

func (c CheckConfig) withDefaults() CheckConfig {
	if c.MaxPositionAge <= 0 {
		c.MaxPositionAge = time.Second
	}
	if c.StrandAfter <= 0 {
		c.StrandAfter = 20 * time.Second
	}
	if c.FaultWindow <= 0 {
		c.FaultWindow = 5 * time.Second
	}
	if c.SlowAck <= 0 {
		c.SlowAck = time.Second
	}
	if c.SlowQuery <= 0 {
		c.SlowQuery = time.Second
	}
	if c.MaxExamples <= 0 {
		c.MaxExamples = 10
	}
	return c
}

// Violation is one kind of violation found: how many and a few examples.
type Violation struct {
	Kind     string   `json:"kind"`
	Count    int      `json:"count"`
	Examples []string `json:"examples"`
}

// Quantiles summarises a distribution, in milliseconds.
type Quantiles struct {
	N   int     `json:"n"`
	P50 float64 `json:"p50_ms"`
	P99 float64 `json:"p99_ms"`
	Max float64 `json:"max_ms"`
}

func quantiles(v []float64) Quantiles {
	if len(v) == 0 {
		return Quantiles{}
	}
	s := slices.Clone(v)
	slices.Sort(s)
	at := func(q float64) float64 { return s[int(math.Ceil(q*float64(len(s))))-1] }
	return Quantiles{N: len(s), P50: at(0.5), P99: at(0.99), Max: s[len(s)-1]}
}

// Stats are the figures of a run.
type Stats struct {
	Updates         int `json:"updates"`
	UpdatesAcked    int `json:"updates_acked"`
	UpdatesRejected int `json:"updates_rejected"`
	UpdatesUnknown  int `json:"updates_unknown"`
	// RejectReasons counts the rejected updates by reason.
	RejectReasons  map[string]int `json:"reject_reasons,omitempty"`
	Streams        int            `json:"streams"`
	StreamsEnded   int            `json:"streams_ended"`
	Queries        int            `json:"queries"`
	QueriesFailed  int            `json:"queries_failed"`
	QueriesPartial int            `json:"queries_partial"`
	// AnswersChecked is how many full answers the completeness check could
	// judge (drivers with a settled position in the circle).
	AnswersChecked   int            `json:"answers_checked"`
	Rides            int            `json:"rides"`
	RidesAcked       int            `json:"rides_acked"`
	RidesUnavailable int            `json:"rides_unavailable"`
	RidesFailed      int            `json:"rides_failed"`
	TripsAssigned    int            `json:"trips_assigned"`
	TripFinal        map[string]int `json:"trip_final_states"`
	AnswersFailed    int            `json:"offer_answers_failed"`
	ProgressFailed   int            `json:"progress_failed"`
	Readbacks        int            `json:"readbacks"`
	ReadbacksFailed  int            `json:"readbacks_failed"`
	Faults           int            `json:"faults"`
	// AckLatency is from sending an update to its acknowledgement; the
	// Window figures count only ops begun within FaultWindow of a fault.
	AckLatency         Quantiles `json:"ack_latency"`
	AckLatencyWindow   Quantiles `json:"ack_latency_window"`
	QueryLatency       Quantiles `json:"query_latency"`
	QueryLatencyWindow Quantiles `json:"query_latency_window"`
	// ServeAgain is, per fault, the time from the fault to the end of the
	// last degraded op (rejected, unacknowledged or slow update, failed,
	// partial or slow query, ended stream) begun before the next fault.
	ServeAgain Quantiles `json:"serve_again"`
	// PositionAge is, over the drivers in answers that showed an older
	// position than one acknowledged before the query began, by how much.
	PositionAge  Quantiles `json:"position_age"`
	StaleResults int       `json:"stale_results"`
	Results      int       `json:"results"`
}

// Result is the checker's verdict.
type Result struct {
	Violations []Violation `json:"violations"`
	Stats      Stats       `json:"stats"`
	// Dropped is how many ops the history could not keep: the checks ran
	// on the rest (fewer findings, never false ones, except lost updates
	// which use only the ops kept).
	Dropped int `json:"dropped_ops,omitempty"`
}

// OK reports whether the run had no violation.
func (r Result) OK() bool { return len(r.Violations) == 0 }

// Count returns the number of violations of kind.
func (r Result) Count(kind string) int {
	for _, v := range r.Violations {
		if v.Kind == kind {
			return v.Count
		}
	}
	return 0
}

// findings collects violations.
type findings struct {
	max int
	by  map[string]*Violation
}

func (f *findings) add(kind, format string, args ...any) {
	v := f.by[kind]
	if v == nil {
		v = &Violation{Kind: kind}
		f.by[kind] = v
	}
	v.Count++
	if len(v.Examples) < f.max {
		v.Examples = append(v.Examples, fmt.Sprintf(format, args...))
	}
}

func (f *findings) list() []Violation {
	var out []Violation
	for _, k := range violationOrder {
		if v := f.by[k]; v != nil {
			out = append(out, *v)
		}
	}
	return out
}

// update is one update of a driver, as the checker indexes it.
type update struct {
	ts         int64
	start, end time.Duration
	outcome    Outcome
	lat, lng   float64
}

// driverIndex is everything the checker knows of one driver.
type driverIndex struct {
	byTS []update // every update, by timestamp
	// acked are the acknowledged updates by end; ackMax[i] is the newest
	// timestamp among acked[:i+1].
	acked                          []update
	ackMax                         []int64
	streams                        []Op
	rides                          bool // the driver answered offers (its status changes)
	minLat, maxLat, minLng, maxLng float64
}

// newestAckedBefore returns the newest acknowledged update whose ack came
// before t, and whether there is one.
func (d *driverIndex) newestAckedBefore(t time.Duration) (int64, bool) {
	i := sort.Search(len(d.acked), func(i int) bool { return d.acked[i].end >= t })
	if i == 0 {
		return 0, false
	}
	return d.ackMax[i-1], true
}

// find returns the update with timestamp ts.
func (d *driverIndex) find(ts int64) (update, bool) {
	i := sort.Search(len(d.byTS), func(i int) bool { return d.byTS[i].ts >= ts })
	if i < len(d.byTS) && d.byTS[i].ts == ts {
		return d.byTS[i], true
	}
	return update{}, false
}

// gridDeg is the cell size, in degrees, of the grid the completeness
// check finds a query's candidate drivers with.
const gridDeg = 0.01

type gridCell [2]int

func cellAt(lat, lng float64) gridCell {
	// Clamped: a history may hold any number, and cells must stay few.
	lat, lng = min(max(lat, -90), 90), min(max(lng, -180), 180)
	if math.IsNaN(lat) || math.IsNaN(lng) {
		lat, lng = 0, 0
	}
	return gridCell{int(math.Floor(lat / gridDeg)), int(math.Floor(lng / gridDeg))}
}

// grid maps cells to the drivers whose positions' bounding box touches
// them; drivers spanning too many cells are in wide.
type grid struct {
	cells map[gridCell][]string
	wide  []string
	all   []string // every driver filed
}

// maxDriverCells bounds the cells one driver is filed under;
// maxQueryCells the cells a query looks in (past it, it checks every
// driver).
const (
	maxDriverCells = 64
	maxQueryCells  = 4096
)

func newGrid(drivers map[string]*driverIndex) *grid {
	g := &grid{cells: map[gridCell][]string{}}
	ids := make([]string, 0, len(drivers))
	for id := range drivers {
		ids = append(ids, id)
	}
	slices.Sort(ids) // the same history, the same order of findings
	for _, id := range ids {
		d := drivers[id]
		if len(d.acked) == 0 || d.rides {
			continue
		}
		g.all = append(g.all, id)
		lo, hi := cellAt(d.minLat, d.minLng), cellAt(d.maxLat, d.maxLng)
		if (hi[0]-lo[0]+1)*(hi[1]-lo[1]+1) > maxDriverCells {
			g.wide = append(g.wide, id)
			continue
		}
		for a := lo[0]; a <= hi[0]; a++ {
			for b := lo[1]; b <= hi[1]; b++ {
				g.cells[gridCell{a, b}] = append(g.cells[gridCell{a, b}], id)
			}
		}
	}
	return g
}

// near returns the drivers that may be within the box, each once.
func (g *grid) near(minLat, maxLat, minLng, maxLng float64) []string {
	lo, hi := cellAt(minLat, minLng), cellAt(maxLat, maxLng)
	if (hi[0]-lo[0]+1)*(hi[1]-lo[1]+1) > maxQueryCells {
		return g.all
	}
	seen := map[string]bool{}
	out := slices.Clone(g.wide)
	for a := lo[0]; a <= hi[0]; a++ {
		for b := lo[1]; b <= hi[1]; b++ {
			for _, id := range g.cells[gridCell{a, b}] {
				if !seen[id] {
					seen[id] = true
					out = append(out, id)
				}
			}
		}
	}
	return out
}

// Check checks a history. It is pure: the same ops give the same result.
func Check(ops []Op, cfg CheckConfig) Result {
	cfg = cfg.withDefaults()
	f := &findings{max: cfg.MaxExamples, by: map[string]*Violation{}}
	st := Stats{TripFinal: map[string]int{}}
	drivers := indexDrivers(ops)
	g := newGrid(drivers)

	var faults []Op
	for _, op := range ops {
		if op.Kind == KindFault {
			faults = append(faults, op)
		}
	}
	slices.SortFunc(faults, func(a, b Op) int { return cmp.Compare(a.Start, b.Start) })
	st.Faults = len(faults)
	inWindow := func(t time.Duration) bool {
		i := sort.Search(len(faults), func(i int) bool { return faults[i].Start > t })
		return i > 0 && t-faults[i-1].Start <= cfg.FaultWindow
	}

	var ack, ackW, qlat, qlatW, ages []float64
	for _, op := range ops {
		ms := float64(op.End-op.Start) / float64(time.Millisecond)
		switch op.Kind {
		case KindUpdate:
			st.Updates++
			switch op.Outcome {
			case OK:
				st.UpdatesAcked++
				ack = append(ack, ms)
				if inWindow(op.Start) {
					ackW = append(ackW, ms)
				}
			case Rejected:
				st.UpdatesRejected++
				if st.RejectReasons == nil {
					st.RejectReasons = map[string]int{}
				}
				st.RejectReasons[op.Code]++
				f.add(VRejectedUpdate, "driver %s update ts=%d at %v rejected: %s %s", op.Driver, op.TS, op.Start, op.Code, op.Detail)
			default:
				st.UpdatesUnknown++
			}
		case KindStream:
			st.Streams++
			if op.Outcome == Failed {
				st.StreamsEnded++
				f.add(VStreamEnded, "driver %s stream ended at %v: %s %s", op.Driver, op.End, op.Code, op.Detail)
			}
		case KindNearby:
			st.Queries++
			switch op.Outcome {
			case Failed:
				st.QueriesFailed++
				f.add(VFailedQuery, "query at (%.5f,%.5f) r=%.0f begun %v failed: %s %s", op.Lat, op.Lng, op.RadiusM, op.Start, op.Code, op.Detail)
				continue
			case Partial:
				st.QueriesPartial++
			}
			qlat = append(qlat, ms)
			if inWindow(op.Start) {
				qlatW = append(qlatW, ms)
			}
			ages = checkAnswerPositions(op, drivers, cfg, f, &st, ages)
			if op.Outcome == OK && checkComplete(op, drivers, g, f) {
				st.AnswersChecked++
			}
		case KindRide:
			st.Rides++
			switch {
			case op.Outcome == OK:
				st.RidesAcked++
			case op.Code == "Unavailable" || op.Code == "ResourceExhausted":
				st.RidesUnavailable++
			default:
				st.RidesFailed++
				f.add(VFailedRide, "ride request begun %v failed: %s %s", op.Start, op.Code, op.Detail)
			}
		case KindAnswer:
			if op.Outcome != OK {
				st.AnswersFailed++
			}
		case KindProgress:
			if op.Outcome != OK {
				st.ProgressFailed++
			}
		case KindReadback:
			st.Readbacks++
			if op.Outcome != OK {
				st.ReadbacksFailed++
			}
		}
	}
	st.AckLatency, st.AckLatencyWindow = quantiles(ack), quantiles(ackW)
	st.QueryLatency, st.QueryLatencyWindow = quantiles(qlat), quantiles(qlatW)
	st.PositionAge = quantiles(ages)
	st.StaleResults = len(ages)

	checkLostUpdates(ops, drivers, f)
	checkTrips(ops, cfg, f, &st)
	st.ServeAgain = serveAgain(ops, faults, cfg)
	return Result{Violations: f.list(), Stats: st}
}

// indexDrivers builds the per-driver index of updates and streams.
func indexDrivers(ops []Op) map[string]*driverIndex {
	drivers := map[string]*driverIndex{}
	get := func(id string) *driverIndex {
		d := drivers[id]
		if d == nil {
			d = &driverIndex{minLat: math.Inf(1), maxLat: math.Inf(-1), minLng: math.Inf(1), maxLng: math.Inf(-1)}
			drivers[id] = d
		}
		return d
	}
	for _, op := range ops {
		switch op.Kind {
		case KindUpdate:
			d := get(op.Driver)
			u := update{ts: op.TS, start: op.Start, end: op.End, outcome: op.Outcome, lat: op.Lat, lng: op.Lng}
			d.byTS = append(d.byTS, u)
			if op.Outcome == OK {
				d.acked = append(d.acked, u)
			}
			d.minLat, d.maxLat = min(d.minLat, op.Lat), max(d.maxLat, op.Lat)
			d.minLng, d.maxLng = min(d.minLng, op.Lng), max(d.maxLng, op.Lng)
		case KindStream:
			d := get(op.Driver)
			d.streams = append(d.streams, op)
		case KindAnswer, KindProgress:
			get(op.Driver).rides = true
		}
	}
	for _, d := range drivers {
		slices.SortFunc(d.byTS, func(a, b update) int { return cmp.Compare(a.ts, b.ts) })
		slices.SortFunc(d.acked, func(a, b update) int { return cmp.Compare(a.end, b.end) })
		d.ackMax = make([]int64, len(d.acked))
		var m int64
		for i, u := range d.acked {
			m = max(m, u.ts)
			d.ackMax[i] = m
		}
	}
	return drivers
}

// checkAnswerPositions checks each driver of an answer against what was
// acknowledged before the query began, and appends the positive position
// ages to ages.
func checkAnswerPositions(op Op, drivers map[string]*driverIndex, cfg CheckConfig, f *findings, st *Stats, ages []float64) []float64 {
	for _, r := range op.Results {
		st.Results++
		d := drivers[r.Driver]
		if d == nil {
			continue // not a driver of this run
		}
		if _, ok := d.find(r.TS); !ok {
			f.add(VPhantomPosition, "query begun %v shows %s at ts=%d, which it never sent", op.Start, r.Driver, r.TS)
			continue
		}
		newest, ok := d.newestAckedBefore(op.Start)
		if !ok || r.TS >= newest {
			continue
		}
		age := time.Duration(newest-r.TS) * time.Millisecond
		ages = append(ages, float64(age)/float64(time.Millisecond))
		if age > cfg.MaxPositionAge {
			f.add(VStaleAnswer, "query begun %v shows %s at ts=%d, but ts=%d was acknowledged before (%v older)", op.Start, r.Driver, r.TS, newest, age)
		}
	}
	return ages
}

// checkComplete checks that a full answer includes every driver whose
// position was settled during the query (acknowledged before it began,
// nothing newer sent before it ended, its stream open throughout) inside
// its circle and nearer than its farthest result (or any, when the answer
// has fewer drivers than its limit). It reports whether the answer had to
// include any driver (whether it did or not).
func checkComplete(op Op, drivers map[string]*driverIndex, g *grid, f *findings) bool {
	in := make(map[string]bool, len(op.Results))
	farthest := 0.0
	for _, r := range op.Results {
		in[r.Driver] = true
		farthest = max(farthest, distanceM(op.Lat, op.Lng, r.Lat, r.Lng))
	}
	full := op.Limit > 0 && len(op.Results) >= op.Limit
	dLat := op.RadiusM / 111_320
	dLng := op.RadiusM / (111_320 * math.Max(math.Cos(op.Lat*math.Pi/180), 0.01))
	judged := false
	for _, id := range g.near(op.Lat-dLat, op.Lat+dLat, op.Lng-dLng, op.Lng+dLng) {
		d := drivers[id]
		if d.rides || len(d.acked) == 0 ||
			d.maxLat < op.Lat-dLat || d.minLat > op.Lat+dLat || d.maxLng < op.Lng-dLng || d.minLng > op.Lng+dLng {
			continue
		}
		newest, ok := d.newestAckedBefore(op.Start)
		if !ok {
			continue
		}
		u, _ := d.find(newest)
		// Nothing newer sent before the answer: the held position is u. A
		// driver sends its updates in timestamp order, so the first newer
		// one is the first sent.
		if i := sort.Search(len(d.byTS), func(i int) bool { return d.byTS[i].ts > newest }); i < len(d.byTS) && d.byTS[i].start < op.End {
			continue
		}
		// A streaming driver is held while its stream is open; a driver
		// reported in batches has no stream.
		if len(d.streams) > 0 && !streamCovers(d.streams, u.start, op.End) {
			continue
		}
		dist := distanceM(op.Lat, op.Lng, u.lat, u.lng)
		// A margin of 0.5% keeps distance formulas' rounding out of it.
		if dist > op.RadiusM*0.995 || (full && dist > farthest*0.995) {
			continue
		}
		judged = true
		if in[id] {
			continue
		}
		f.add(VIncompleteAnswer, "query begun %v at (%.5f,%.5f) r=%.0f, not flagged partial, left out %s at %.0f m (ts=%d acknowledged before)", op.Start, op.Lat, op.Lng, op.RadiusM, id, dist, newest)
	}
	return judged
}

// streamCovers reports whether one of the streams was open over [from, to].
func streamCovers(streams []Op, from, to time.Duration) bool {
	for _, s := range streams {
		if s.Start <= from && s.End >= to {
			return true
		}
	}
	return false
}

// checkLostUpdates compares each read-back position with the driver's
// newest acknowledged update.
func checkLostUpdates(ops []Op, drivers map[string]*driverIndex, f *findings) {
	for _, op := range ops {
		if op.Kind != KindReadback || op.Outcome != OK {
			continue
		}
		d := drivers[op.Driver]
		if d == nil || len(d.ackMax) == 0 {
			continue
		}
		newest := d.ackMax[len(d.ackMax)-1]
		if op.TS < newest {
			held := "nothing"
			if op.TS > 0 {
				held = fmt.Sprintf("ts=%d", op.TS)
			}
			f.add(VLostUpdate, "driver %s: ts=%d was acknowledged, the cluster holds %s", op.Driver, newest, held)
		}
	}
}

// tripLife is what the observations of one trip say.
type tripLife struct {
	acked    time.Duration // when RequestRide acknowledged it
	hasAck   bool
	lastSeen Op
	// live observations per driver: certainly live over [firstEnd, lastStart].
	live map[string]*[2]time.Duration
}

// checkTrips finds lost, stranded and doubly assigned trips.
func checkTrips(ops []Op, cfg CheckConfig, f *findings, st *Stats) {
	trips := map[string]*tripLife{}
	get := func(id string) *tripLife {
		t := trips[id]
		if t == nil {
			t = &tripLife{live: map[string]*[2]time.Duration{}}
			trips[id] = t
		}
		return t
	}
	for _, op := range ops {
		if op.Kind == KindRide && op.Outcome == OK && op.Trip != "" {
			t := get(op.Trip)
			t.acked, t.hasAck = op.End, true
		}
	}
	var ids []string
	for _, op := range ops {
		if op.Kind != KindTrip || op.Outcome != OK || op.Trip == "" {
			continue
		}
		t := get(op.Trip)
		if t.lastSeen.Kind == "" {
			ids = append(ids, op.Trip)
		}
		if t.lastSeen.Kind == "" || op.End >= t.lastSeen.End {
			t.lastSeen = op
		}
		if op.State == StateNotFound && t.hasAck && op.Start > t.acked {
			f.add(VLostTrip, "trip %s acknowledged at %v, not found at %v", op.Trip, t.acked, op.Start)
		}
		if (op.State == StateAssigned || op.State == StatePickedUp) && op.Driver != "" {
			iv := t.live[op.Driver]
			if iv == nil {
				t.live[op.Driver] = &[2]time.Duration{op.End, op.Start}
				continue
			}
			iv[0], iv[1] = min(iv[0], op.End), max(iv[1], op.Start)
		}
	}
	type interval struct {
		trip       string
		from, till time.Duration
	}
	byDriver := map[string][]interval{}
	slices.Sort(ids)
	for _, id := range ids {
		t := trips[id]
		st.TripFinal[t.lastSeen.State]++
		if len(t.live) > 0 {
			st.TripsAssigned++
		}
		if (t.lastSeen.State == StateRequested || t.lastSeen.State == StateOffered) && t.hasAck && t.lastSeen.Start-t.acked > cfg.StrandAfter {
			f.add(VStrandedTrip, "trip %s acknowledged at %v still %s at %v", id, t.acked, t.lastSeen.State, t.lastSeen.Start)
		}
		for drv, iv := range t.live {
			if iv[0] <= iv[1] {
				byDriver[drv] = append(byDriver[drv], interval{id, iv[0], iv[1]})
			}
		}
	}
	drvs := make([]string, 0, len(byDriver))
	for d := range byDriver {
		drvs = append(drvs, d)
	}
	slices.Sort(drvs)
	for _, drv := range drvs {
		ivs := byDriver[drv]
		slices.SortFunc(ivs, func(a, b interval) int { return cmp.Compare(a.from, b.from) })
		for i := 1; i < len(ivs); i++ {
			for j := range i {
				if ivs[j].till >= ivs[i].from {
					f.add(VDoubleAssignment, "driver %s on trips %s (live %v–%v) and %s (live %v–%v) at once", drv, ivs[j].trip, ivs[j].from, ivs[j].till, ivs[i].trip, ivs[i].from, ivs[i].till)
				}
			}
		}
	}
}

// serveAgain measures, per fault, how long clients saw degraded service:
// from the fault's start to the end of the last degraded operation it
// could have caused. An operation counts for the last fault that began
// before the operation ended (one that began before a fault and was
// slowed by it is that fault's, not the previous one's).
func serveAgain(ops []Op, faults []Op, cfg CheckConfig) Quantiles {
	if len(faults) == 0 {
		return Quantiles{}
	}
	last := make([]time.Duration, len(faults))
	for _, op := range ops {
		if !degraded(op, cfg) {
			continue
		}
		i := sort.Search(len(faults), func(i int) bool { return faults[i].Start > op.End }) - 1
		if i < 0 {
			continue
		}
		last[i] = max(last[i], op.End-faults[i].Start)
	}
	v := make([]float64, len(last))
	for i, d := range last {
		v[i] = float64(d) / float64(time.Millisecond)
	}
	return quantiles(v)
}

// degraded reports whether a client saw op as less than full service.
func degraded(op Op, cfg CheckConfig) bool {
	switch op.Kind {
	case KindUpdate:
		return op.Outcome != OK || op.End-op.Start > cfg.SlowAck
	case KindNearby:
		return op.Outcome != OK || op.End-op.Start > cfg.SlowQuery
	case KindStream:
		return op.Outcome == Failed
	}
	return false
}

// distanceM is the great-circle distance in meters, as the matchers
// compute it.
func distanceM(lat1, lng1, lat2, lng2 float64) float64 {
	return geo.DistanceM(geo.LatLng{Lat: lat1, Lng: lng1}, geo.LatLng{Lat: lat2, Lng: lng2})
}

package simulator

import (
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"

	"github.com/geomatch/geomatch/loadgen"
	geomatchv1 "github.com/geomatch/geomatch/proto/geomatch/v1"
	"github.com/geomatch/geomatch/simulator/report"
)

// API methods the latency table tracks.
const (
	mRequestRide  = "RequestRide"
	mNearby       = "NearbyDrivers"
	mGetTrip      = "GetTrip"
	mCancelTrip   = "CancelTrip"
	mUpdate       = "UpdateLocations"
	mOfferAnswer  = "Connect.OfferAnswer"
	mTripProgress = "Connect.TripProgress"
	mSend         = "Connect.Send"
)

var allMethods = []string{mRequestRide, mNearby, mGetTrip, mCancelTrip, mUpdate, mOfferAnswer, mTripProgress, mSend}

// latency is one method's latency histograms: the whole run and the
// current sample window. Histograms are constant size (loadgen's
// log-bucketed histogram, within 3%).
type latency struct {
	mu     sync.Mutex
	total  loadgen.Histogram
	window loadgen.Histogram
	errors int64
}

func (l *latency) record(d time.Duration, err error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if err != nil {
		l.errors++
		return
	}
	l.total.Record(d)
	l.window.Record(d)
}

// takeWindow returns the window's p99 (ms; -1 when empty) and starts a new
// window.
func (l *latency) takeWindow() float64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.window.Count() == 0 {
		return -1
	}
	p := ms(l.window.Quantile(0.99))
	l.window = loadgen.Histogram{}
	return p
}

func (l *latency) summary() report.Latency {
	l.mu.Lock()
	defer l.mu.Unlock()
	h := &l.total
	return report.Latency{Count: int64(h.Count()), Errors: l.errors,
		P50: ms(h.Quantile(0.5)), P90: ms(h.Quantile(0.9)), P99: ms(h.Quantile(0.99)), Max: ms(h.Quantile(1))}
}

func (l *latency) p99() float64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	return ms(l.total.Quantile(0.99))
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// maxSamples bounds each value distribution; past it, values replace
// random earlier ones (reservoir sampling), so quantiles stay unbiased.
const maxSamples = 200_000

// values is a bounded sample of a distribution.
type values struct {
	mu   sync.Mutex
	v    []float64
	seen int64
	rng  *rand.Rand
}

func newValues(seed uint64) *values { return &values{rng: rand.New(rand.NewPCG(seed, 0x76616c))} }

func (s *values) add(x float64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.seen++
	if len(s.v) < maxSamples {
		s.v = append(s.v, x)
		return
	}
	if i := s.rng.Int64N(s.seen); i < maxSamples {
		s.v[i] = x
	}
}

func (s *values) dist() report.Dist {
	s.mu.Lock()
	defer s.mu.Unlock()
	d := report.NewDist(append([]float64(nil), s.v...))
	d.Count = s.seen
	return d
}

// metrics are the run's counters, gauges and distributions; safe for
// concurrent use.
type metrics struct {
	// Location updates.
	updOffered, updSent, updAccepted, updRejected, updFailed, updSkipped, updLate atomic.Int64
	rejectedBy                                                                    [8]atomic.Int64

	// Offers and streams.
	offers, accepts, declines, acceptsClosed, streamErrors atomic.Int64
	// Riders.
	requests, matched, requestErrors, droppedArrivals atomic.Int64

	// Gauges.
	online, busy, withRider, offered, waiting atomic.Int64

	lat map[string]*latency

	timeToMatch, pickupDist, pickupRoute, pickupETA, pickupTime, tripTime *values

	// The measured window: events at simulated seconds from fromSim until
	// the window closes count in the window's KPIs. fromSim is set before
	// the run's goroutines start.
	fromSim                                                float64
	windowClosed                                           atomic.Bool
	winOffers, winAccepts, winDropOffs, winCarriedDropOffs atomic.Int64
	// thinkS is the think time of the offers answered in the window
	// (simulated seconds).
	thinkS *values
}

// inWindow reports whether an event at simulated second sim counts in the
// measured window.
func (m *metrics) inWindow(sim float64) bool { return sim >= m.fromSim && !m.windowClosed.Load() }

// count adds one to c when the event at sim is in the window.
func (m *metrics) count(c *atomic.Int64, sim float64) {
	if m.inWindow(sim) {
		c.Add(1)
	}
}

func newMetrics(seed uint64) *metrics {
	m := &metrics{lat: map[string]*latency{}}
	for _, name := range allMethods {
		m.lat[name] = &latency{}
	}
	for i, v := range []**values{&m.timeToMatch, &m.pickupDist, &m.pickupRoute, &m.pickupETA, &m.pickupTime, &m.tripTime, &m.thinkS} {
		*v = newValues(seed + uint64(i))
	}
	return m
}

func (m *metrics) rejected(reason geomatchv1.RejectReason) {
	m.updRejected.Add(1)
	if r := int(reason); r >= 0 && r < len(m.rejectedBy) {
		m.rejectedBy[r].Add(1)
	}
}

// counters is a snapshot of the rate counters, for per-sample rates.
type counters struct {
	offered, sent, rejected, requests, matched int64
}

func (m *metrics) counters() counters {
	return counters{m.updOffered.Load(), m.updSent.Load(), m.updRejected.Load(), m.requests.Load(), m.matched.Load()}
}

package metrics

import "github.com/prometheus/client_golang/prometheus"

// Reason says which bound refused a call or stream; the label of
// geomatch_refused_total. The set is fixed (never a client's name or
// address), so the series stay few.
type Reason string

// The reasons of geomatch_refused_total.
const (
	// RefusedClientStreams: a client (a token's subject, or a peer IP
	// address with authentication off) already holds its driver streams.
	RefusedClientStreams Reason = "client_streams"
	// RefusedServerStreams: the router holds its server-wide maximum of
	// driver streams.
	RefusedServerStreams Reason = "server_streams"
	// RefusedDriverSessions: the router holds its maximum of drivers with
	// a stream.
	RefusedDriverSessions Reason = "driver_sessions"
	// RefusedUpdateRate: a client's location updates beyond its rate.
	RefusedUpdateRate Reason = "update_rate"
	// RefusedUpdateBatch: one call with more updates than the burst.
	RefusedUpdateBatch Reason = "update_batch"
	// RefusedRequestRate: a client's other calls beyond its rate.
	RefusedRequestRate Reason = "request_rate"
	// RefusedSaturated: a server with its maximum of calls in flight.
	RefusedSaturated Reason = "server_saturated"
)

var reasons = []Reason{RefusedClientStreams, RefusedServerStreams, RefusedDriverSessions,
	RefusedUpdateRate, RefusedUpdateBatch, RefusedRequestRate, RefusedSaturated}

var (
	refused = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "geomatch_refused_total",
		Help: "Calls, streams and stream messages refused with RESOURCE_EXHAUSTED by a limit, by reason.",
	}, []string{"reason"})
	driverStreams = prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "geomatch_driver_streams",
		Help: "Driver Connect streams open on the routers of this process.",
	})
)

func init() {
	for _, r := range reasons {
		refused.WithLabelValues(string(r)) // every reason exported from 0
	}
}

// CountRefused counts one refusal for reason. It is process-wide (every
// registry NewRegistry returns exports it) and costs an atomic add.
func CountRefused(reason Reason) { refused.WithLabelValues(string(reason)).Inc() }

// AddDriverStreams adds delta to the driver streams open in this process.
func AddDriverStreams(delta int) { driverStreams.Add(float64(delta)) }

// limitCollectors are the process-wide collectors NewRegistry registers.
func limitCollectors() []prometheus.Collector { return []prometheus.Collector{refused, driverStreams} }

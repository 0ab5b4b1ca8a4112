package metrics

import "github.com/prometheus/client_golang/prometheus"

var (
	partialAnswers = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "geomatch_nearby_partial_total",
		Help: "Nearby answers that left shards out because their owner could not be reached within the query's budget (the answer says so: partial, missing_shards).",
	})
	missingShards = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "geomatch_nearby_missing_shards_total",
		Help: "Shards left out of partial nearby answers, summed over the answers.",
	})
)

// CountPartialAnswer counts one partial nearby answer that left missing
// shards out. Process-wide, like CountRefused.
func CountPartialAnswer(missing int) {
	partialAnswers.Inc()
	missingShards.Add(float64(missing))
}

// nearbyCollectors are the process-wide collectors NewRegistry registers.
func nearbyCollectors() []prometheus.Collector {
	return []prometheus.Collector{partialAnswers, missingShards}
}

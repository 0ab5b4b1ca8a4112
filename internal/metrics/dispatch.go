package metrics

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Dispatch series: what riders and drivers experience, counted where each
// trip step is stored (once per step, whichever process makes it), so a
// sum over the fleet's processes is the cluster's figure. Their labels are
// small fixed sets (a state, an offer outcome): no trip, driver, rider or
// shard ever becomes a label, so the series count does not grow with the
// city. Per-shard and per-driver detail stays on the admin API
// (ListShards) and the event stream.

// TripStates are the values of geomatch_dispatch_trips_total's state
// label: the states a trip enters (offered is counted by offers instead).
var TripStates = []string{"requested", "assigned", "picked_up", "completed", "cancelled", "no_driver"}

// OfferOutcomes are the values of geomatch_dispatch_offers_total's
// outcome label.
var OfferOutcomes = []string{"sent", "accepted", "declined", "expired"}

var (
	trips = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "geomatch_dispatch_trips_total",
		Help: "Trips that entered each state: requested, assigned, picked_up, completed, cancelled, no_driver.",
	}, []string{"state"})
	offers = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "geomatch_dispatch_offers_total",
		Help: "Ride offers by outcome: sent to a reserved driver, accepted, declined, expired unanswered.",
	}, []string{"outcome"})
	timeToMatch = prometheus.NewHistogram(prometheus.HistogramOpts{
		Name: "geomatch_dispatch_time_to_match_seconds",
		Help: "From a ride request to its assignment (searches, reservations and the drivers' time to answer their offers included).",
		// 50 ms to about 2 min: an instant accept to several declined or
		// expired offers.
		Buckets: prometheus.ExponentialBuckets(0.05, 2, 12),
	})
)

func init() {
	for _, s := range TripStates {
		trips.WithLabelValues(s)
	}
	for _, o := range OfferOutcomes {
		offers.WithLabelValues(o)
	}
}

// CountTrip counts a trip entering state (one of TripStates).
func CountTrip(state string) { trips.WithLabelValues(state).Inc() }

// CountOffer counts an offer outcome (one of OfferOutcomes).
func CountOffer(outcome string) { offers.WithLabelValues(outcome).Inc() }

// ObserveTimeToMatch records how long a trip took from request to
// assignment.
func ObserveTimeToMatch(d time.Duration) { timeToMatch.Observe(d.Seconds()) }

// dispatchCollectors are the process-wide collectors NewRegistry
// registers.
func dispatchCollectors() []prometheus.Collector {
	return []prometheus.Collector{trips, offers, timeToMatch}
}

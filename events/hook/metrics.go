package hook

import (
	"fmt"

	"github.com/prometheus/client_golang/prometheus"
)

// metrics are a Manager's per-hook series.
type metrics struct {
	delivered    *prometheus.CounterVec
	retried      *prometheus.CounterVec
	deadLettered *prometheus.CounterVec
	lagEvents    *prometheus.GaugeVec
	lagSeconds   *prometheus.GaugeVec
}

// newMetrics makes the series and registers them on reg (when not nil):
//
//	geomatch_hook_delivered_total{hook}
//	geomatch_hook_retried_total{hook}
//	geomatch_hook_dead_lettered_total{hook}
//	geomatch_hook_lag_events{hook}
//	geomatch_hook_lag_seconds{hook}
//
// Counters count what this process did; the hook's totals across routers
// are in its stats (ListHooks).
func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	m := &metrics{
		delivered: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "geomatch_hook_delivered_total",
			Help: "Events a hook's sink acknowledged.",
		}, []string{"hook"}),
		retried: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "geomatch_hook_retried_total",
			Help: "Delivery attempts of a hook that failed and were retried.",
		}, []string{"hook"}),
		deadLettered: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "geomatch_hook_dead_lettered_total",
			Help: "Events of a hook given up on and appended to its dead-letter stream.",
		}, []string{"hook"}),
		lagEvents: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "geomatch_hook_lag_events",
			Help: "Events logged but not yet acknowledged by a hook's sink (see the package doc for its precision).",
		}, []string{"hook"}),
		lagSeconds: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "geomatch_hook_lag_seconds",
			Help: "Age of the oldest event a hook is delivering (0 when caught up).",
		}, []string{"hook"}),
	}
	if reg == nil {
		return m, nil
	}
	for _, c := range []prometheus.Collector{m.delivered, m.retried, m.deadLettered, m.lagEvents, m.lagSeconds} {
		if err := reg.Register(c); err != nil {
			return nil, fmt.Errorf("register hook metrics: %w", err)
		}
	}
	return m, nil
}

// forget deletes a hook's series.
func (m *metrics) forget(id string) {
	m.delivered.DeleteLabelValues(id)
	m.retried.DeleteLabelValues(id)
	m.deadLettered.DeleteLabelValues(id)
	m.lagEvents.DeleteLabelValues(id)
	m.lagSeconds.DeleteLabelValues(id)
}

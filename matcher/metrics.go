package matcher

import (
	"sync/atomic"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/geomatch/geomatch/driver"
)

// counters are the node's running totals, read by its Collector.
type counters struct {
	updates     [driver.Unavailable + 1]atomic.Uint64 // by outcome
	searches    atomic.Uint64                         // nearby searches answered
	shardsLost  atomic.Uint64
	warmups     atomic.Uint64
	warmNanos   atomic.Uint64 // duration of the last warm-up
	handedOver  atomic.Uint64 // drivers sent to new owners
	transferred atomic.Uint64 // drivers received from old owners
	fromStore   atomic.Uint64 // drivers warmed from the store
	// leaseRefusals counts searches and batches refused because the
	// node's ownership lease had lapsed.
	leaseRefusals atomic.Uint64
	// releaseWaits counts update batches held for a release round (the
	// old owners confirming a new epoch) until it ended, releaseTimeouts
	// those applied when the round overran releaseWait; releaseNanos is
	// the duration of the last round.
	releaseWaits, releaseTimeouts atomic.Uint64
	releaseNanos                  atomic.Uint64
	// standbyHeld counts standby copies kept for a takeover,
	// standbyApplied those applied (at a takeover, or at once), and
	// standbyRefused those refused with the table full (standby.go).
	standbyHeld, standbyApplied, standbyRefused atomic.Uint64
}

// Searches is the number of nearby searches the node has answered
// (geomatch_matcher_searches_total).
func (n *Node) Searches() uint64 { return n.count.searches.Load() }

// Ready reports whether the node has finished warming the shards it owned
// when it started (readiness: it answers every search completely).
func (n *Node) Ready() bool {
	n.ho.mu.Lock()
	defer n.ho.mu.Unlock()
	return n.ho.base != nil
}

// Collector exposes a node's state and counters to Prometheus. It reads
// them at scrape time, so it costs nothing between scrapes.
type Collector struct {
	n                                     *Node
	drivers, byStatus, epoch, ready, warm *prometheus.Desc
	updates, searches, moves, handoff     *prometheus.Desc
	fences, events, eventFailures, late   *prometheus.Desc
	standby                               *prometheus.Desc
	leaseRefusals, releaseWaits, release  *prometheus.Desc
}

// NewCollector returns the collector of n.
func NewCollector(n *Node) *Collector {
	l := prometheus.Labels{"node": n.cfg.NodeID}
	return &Collector{
		n:        n,
		drivers:  prometheus.NewDesc("geomatch_matcher_drivers", "Drivers held by the node.", nil, l),
		byStatus: prometheus.NewDesc("geomatch_matcher_drivers_by_status", "Drivers held by the node, by dispatch status (available, reserved, on_trip, offline; unspecified for a driver whose status was never reported). Per-shard detail is on AdminService.ListShards and the shard map.", []string{"status"}, l),
		epoch:    prometheus.NewDesc("geomatch_ring_epoch", "Epoch of the ring the node serves.", nil, l),
		ready:    prometheus.NewDesc("geomatch_matcher_ready", "1 once the node has warmed the shards it started with.", nil, l),
		warm:     prometheus.NewDesc("geomatch_matcher_last_warmup_seconds", "Duration of the last shard warm-up.", nil, l),
		updates:  prometheus.NewDesc("geomatch_matcher_updates_total", "Location updates by outcome (applied, duplicate, stale, full, not_owner, invalid).", []string{"outcome"}, l),
		searches: prometheus.NewDesc("geomatch_matcher_searches_total", "Nearby searches the node answered (one per node asked by a router's query).", nil, l),
		moves:    prometheus.NewDesc("geomatch_shard_moves_total", "Shards (with drivers) the node handed to another node on ring changes; summed over nodes, every shard move.", nil, l),
		handoff:  prometheus.NewDesc("geomatch_handoff_drivers_total", "Drivers moved by shard handoffs: sent to new owners, received from old owners, read from the store.", []string{"kind"}, l),
		fences:   prometheus.NewDesc("geomatch_matcher_fences", "Fences the node indexes.", nil, l),
		events:   prometheus.NewDesc("geomatch_matcher_events_total", "Events (fence, driver lifecycle) the node logged.", nil, l),
		eventFailures: prometheus.NewDesc("geomatch_matcher_event_batches_failed_total",
			"Batches of updates applied whose events could not be logged (the event log was unreachable for 5 s); must stay 0.", nil, l),
		leaseRefusals: prometheus.NewDesc("geomatch_matcher_lease_refusals_total",
			"Searches and update batches the node refused because its ownership lease had lapsed (cut off from Consul and not vouched for by its peers).", nil, l),
		releaseWaits: prometheus.NewDesc("geomatch_matcher_release_waits_total",
			"Update batches held until the other members confirmed a new ring epoch (shards gained), by outcome: released, or timeout (applied after 2 s without every confirmation).", []string{"outcome"}, l),
		release: prometheus.NewDesc("geomatch_matcher_last_release_seconds",
			"Duration of the last release round: the node asking every other member to move to its new epoch before acknowledging updates of the shards it gained.", nil, l),
		standby: prometheus.NewDesc("geomatch_matcher_standby_updates_total",
			"Updates a lost matcher had acknowledged, handed to this node by the routers before the failover (Standby), by outcome: held (kept for a takeover), applied (at the takeover's warm-up, or at once), refused (the table was full).", []string{"outcome"}, l),
		late: prometheus.NewDesc("geomatch_matcher_late_updates_total",
			"Updates that reached the node after a newer one of the driver's elsewhere (a delayed retry); they log nothing.", nil, l),
	}
}

// Describe implements prometheus.Collector.
func (c *Collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{c.drivers, c.byStatus, c.epoch, c.ready, c.warm, c.updates, c.searches, c.moves, c.handoff, c.fences, c.events, c.eventFailures, c.late, c.leaseRefusals, c.releaseWaits, c.release, c.standby} {
		ch <- d
	}
}

// Collect implements prometheus.Collector.
func (c *Collector) Collect(ch chan<- prometheus.Metric) {
	n := c.n
	ch <- prometheus.MustNewConstMetric(c.drivers, prometheus.GaugeValue, float64(n.ix.Len()))
	for st, count := range n.ix.StatusCounts() {
		ch <- prometheus.MustNewConstMetric(c.byStatus, prometheus.GaugeValue, float64(count), driver.Status(st).String())
	}
	m, _ := n.src.Current()
	ch <- prometheus.MustNewConstMetric(c.epoch, prometheus.GaugeValue, float64(m.Epoch()))
	ready := 0.0
	if n.Ready() {
		ready = 1
	}
	ch <- prometheus.MustNewConstMetric(c.ready, prometheus.GaugeValue, ready)
	ch <- prometheus.MustNewConstMetric(c.warm, prometheus.GaugeValue, float64(n.count.warmNanos.Load())/1e9)
	for o := driver.Applied; o <= driver.Invalid; o++ {
		ch <- prometheus.MustNewConstMetric(c.updates, prometheus.CounterValue, float64(n.count.updates[o].Load()), o.String())
	}
	ch <- prometheus.MustNewConstMetric(c.searches, prometheus.CounterValue, float64(n.count.searches.Load()))
	ch <- prometheus.MustNewConstMetric(c.leaseRefusals, prometheus.CounterValue, float64(n.count.leaseRefusals.Load()))
	ch <- prometheus.MustNewConstMetric(c.releaseWaits, prometheus.CounterValue, float64(n.count.releaseWaits.Load()), "released")
	ch <- prometheus.MustNewConstMetric(c.releaseWaits, prometheus.CounterValue, float64(n.count.releaseTimeouts.Load()), "timeout")
	ch <- prometheus.MustNewConstMetric(c.release, prometheus.GaugeValue, float64(n.count.releaseNanos.Load())/1e9)
	ch <- prometheus.MustNewConstMetric(c.standby, prometheus.CounterValue, float64(n.count.standbyHeld.Load()), "held")
	ch <- prometheus.MustNewConstMetric(c.standby, prometheus.CounterValue, float64(n.count.standbyApplied.Load()), "applied")
	ch <- prometheus.MustNewConstMetric(c.standby, prometheus.CounterValue, float64(n.count.standbyRefused.Load()), "refused")
	ch <- prometheus.MustNewConstMetric(c.moves, prometheus.CounterValue, float64(n.count.shardsLost.Load()))
	ch <- prometheus.MustNewConstMetric(c.handoff, prometheus.CounterValue, float64(n.count.handedOver.Load()), "sent")
	ch <- prometheus.MustNewConstMetric(c.handoff, prometheus.CounterValue, float64(n.count.transferred.Load()), "received")
	ch <- prometheus.MustNewConstMetric(c.handoff, prometheus.CounterValue, float64(n.count.fromStore.Load()), "store")
	if fe := n.fence; fe != nil {
		ch <- prometheus.MustNewConstMetric(c.fences, prometheus.GaugeValue, float64(fe.len()))
		ch <- prometheus.MustNewConstMetric(c.events, prometheus.CounterValue, float64(fe.events.Load()))
		ch <- prometheus.MustNewConstMetric(c.eventFailures, prometheus.CounterValue, float64(fe.appendFailures.Load()))
		ch <- prometheus.MustNewConstMetric(c.late, prometheus.CounterValue, float64(fe.late.Load()))
	}
}

package cluster

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"sync"

	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/grpc"

	"github.com/geomatch/geomatch/fleet"
	"github.com/geomatch/geomatch/internal/lifecycle"
	"github.com/geomatch/geomatch/internal/metrics"
	"github.com/geomatch/geomatch/matcher"
)

// Observer collects one process's metrics (a Prometheus registry with the
// call metrics of its gRPC servers and the collectors of its matchers and
// routers) and its readiness. A nil *Observer records nothing, so callers
// need not check whether metrics are on.
type Observer struct {
	reg *prometheus.Registry

	mu      sync.Mutex
	ready   []func() bool
	details []string
	why     []func() string // reasons of a failing ready func, for /readyz
	addr    string          // where Serve listens

	routes metrics.Routes // pages served beside /metrics (the shard map)
}

// Handle serves the paths under prefix on the metrics listener with h,
// beside /metrics; it may be called before or after Serve.
func (o *Observer) Handle(prefix string, h http.Handler) {
	if o == nil {
		return
	}
	o.routes.Handle(prefix, h)
}

// Addr returns the address the metrics listener listens on ("" before
// Serve).
func (o *Observer) Addr() string {
	if o == nil {
		return ""
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.addr
}

// AddDetail adds a line to the body of /readyz (a fact operators should
// see where they look at readiness, such as an insecure internal API).
func (o *Observer) AddDetail(line string) {
	if o == nil {
		return
	}
	o.mu.Lock()
	o.details = append(o.details, line)
	o.mu.Unlock()
}

// Details returns the lines AddDetail added.
func (o *Observer) Details() []string {
	if o == nil {
		return nil
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	lines := append([]string(nil), o.details...)
	for _, why := range o.why {
		if w := why(); w != "" {
			lines = append(lines, w)
		}
	}
	return lines
}

// NewObserver returns an observer with a fresh registry.
func NewObserver() *Observer { return &Observer{reg: metrics.NewRegistry()} }

// ServerOptions returns the call-metric interceptors of a gRPC server
// named server (its role and id).
func (o *Observer) ServerOptions(server string) ([]grpc.ServerOption, error) {
	if o == nil {
		return nil, nil
	}
	g, err := metrics.NewGRPC(o.reg, server)
	if err != nil {
		return nil, err
	}
	return g.ServerOptions(), nil
}

// AddMatcher registers a matcher's collector, its coordinator's counters
// and its readiness.
func (o *Observer) AddMatcher(m *Matcher) error {
	if o == nil {
		return nil
	}
	if err := o.reg.Register(matcher.NewCollector(m.Node)); err != nil {
		return fmt.Errorf("register matcher metrics: %w", err)
	}
	if coord := m.Coordinator; coord != nil {
		c := prometheus.NewCounterFunc(prometheus.CounterOpts{
			Name:        "geomatch_dispatch_reservation_conflicts_total",
			Help:        "Reservations the store refused because another trip held the driver.",
			ConstLabels: prometheus.Labels{"node": m.Node.ID()},
		}, func() float64 { return float64(coord.ReservationConflicts()) })
		if err := o.reg.Register(c); err != nil {
			return fmt.Errorf("register dispatch metrics: %w", err)
		}
	}
	o.mu.Lock()
	o.ready = append(o.ready, m.Node.Ready)
	o.mu.Unlock()
	return nil
}

// AddRouter registers a router's counters.
func (o *Observer) AddRouter(r *Router) error {
	if o == nil {
		return nil
	}
	fc := r.Fleet
	c := prometheus.NewCounterFunc(prometheus.CounterOpts{
		Name: "geomatch_router_evictions_dropped_total",
		Help: "Evictions of stale driver copies dropped because a matcher's eviction queue was full.",
	}, func() float64 { return float64(fc.EvictionsDropped()) })
	parked := prometheus.NewCounterFunc(prometheus.CounterOpts{
		Name: "geomatch_router_updates_parked_total",
		Help: "Location updates held because their shard's owner could not be reached (sent again when the ring moved the shard or the owner answered).",
	}, func() float64 { return float64(fc.ParkStats().Parked) })
	held := prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "geomatch_router_updates_held",
		Help: "Location updates waiting now for an unreachable owner.",
	}, func() float64 { return float64(fc.ParkStats().Held) })
	fromMatchers := prometheus.NewCounterFunc(prometheus.CounterOpts{
		Name: "geomatch_router_rings_from_matchers_total",
		Help: "Rings adopted from matchers because Consul did not deliver them to this router (cut off from it, or slower than the matchers).",
	}, func() float64 { return float64(fc.RingsFromMatchers()) })
	replayed := prometheus.NewCounterFunc(prometheus.CounterOpts{
		Name: "geomatch_router_updates_replayed_total",
		Help: "Acknowledged updates sent again to new owners after their matcher left the ring (the redo window).",
	}, func() float64 { return float64(fc.Replayed()) })
	standby := prometheus.NewCounterFunc(prometheus.CounterOpts{
		Name: "geomatch_router_updates_handed_to_standby_total",
		Help: "Acknowledged updates of a lost matcher (its stream broke) handed at once to the nodes that take its shards over (MatcherService.Standby), ahead of the ring change.",
	}, func() float64 { return float64(fc.StandbySent()) })
	refused := prometheus.NewDesc("geomatch_router_updates_unavailable_total",
		"Location updates refused UNAVAILABLE after waiting for an unreachable owner: reason park_full (the lot of waiting updates was full) or deadline (the update's deadline passed).",
		[]string{"reason"}, nil)
	for _, col := range []prometheus.Collector{c, parked, held, fromMatchers, replayed, standby, parkRefusals{fc, refused}} {
		if err := o.reg.Register(col); err != nil {
			return fmt.Errorf("register router metrics: %w", err)
		}
	}
	// A router is ready while it can reach an owner for every shard
	// (fleet.Client.Reachable: a failover's few seconds are tolerated);
	// /readyz names the matchers it cannot reach.
	o.mu.Lock()
	o.ready = append(o.ready, func() bool { ok, _ := fc.Reachable(); return ok })
	o.why = append(o.why, func() string { _, why := fc.Reachable(); return why })
	o.mu.Unlock()
	return nil
}

// parkRefusals exports the fleet client's refusals of parked updates.
type parkRefusals struct {
	fc   *fleet.Client
	desc *prometheus.Desc
}

func (p parkRefusals) Describe(ch chan<- *prometheus.Desc) { ch <- p.desc }

func (p parkRefusals) Collect(ch chan<- prometheus.Metric) {
	st := p.fc.ParkStats()
	ch <- prometheus.MustNewConstMetric(p.desc, prometheus.CounterValue, float64(st.FullRefused), "park_full")
	ch <- prometheus.MustNewConstMetric(p.desc, prometheus.CounterValue, float64(st.DeadlineRefused), "deadline")
}

// Ready reports whether every matcher added is ready.
func (o *Observer) Ready() bool {
	if o == nil {
		return true
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	for _, r := range o.ready {
		if !r() {
			return false
		}
	}
	return true
}

// Serve serves /metrics, /debug/pprof/ and /readyz on addr in g.
func (o *Observer) Serve(g *lifecycle.Group, addr string, log *slog.Logger) error {
	if o == nil {
		return nil
	}
	lis, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("--metrics: %w", err)
	}
	o.mu.Lock()
	o.addr = lis.Addr().String()
	o.mu.Unlock()
	h := o.routes.Wrap(metrics.HandlerWithDetails(o.reg, o.Ready, o.Details))
	g.Go(func(ctx context.Context) error { return metrics.Serve(ctx, lis, h, log) })
	return nil
}

// registerer returns the registry collectors join, or nil (no metrics).
func (o *Observer) registerer() prometheus.Registerer {
	if o == nil {
		return nil
	}
	return o.reg
}

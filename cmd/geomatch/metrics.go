package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/grpc"

	"github.com/geomatch/geomatch/dispatch"
	"github.com/geomatch/geomatch/internal/lifecycle"
	"github.com/geomatch/geomatch/internal/metrics"
	"github.com/geomatch/geomatch/internal/serve"
	"github.com/geomatch/geomatch/matcher"
	"github.com/geomatch/geomatch/router"
)

// metricsFlags is the --metrics listener of a server command.
type metricsFlags struct {
	addr string
}

func (m *metricsFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&m.addr, "metrics", "", "serve Prometheus /metrics, /debug/pprof/ and /readyz on this address (host:port); off when empty")
}

// observer collects one process's metrics; a nil observer records nothing.
type observer struct {
	reg   *prometheus.Registry
	ready []func() bool
}

// newObserver returns nil when --metrics is not given.
func (m *metricsFlags) newObserver() *observer {
	if m.addr == "" {
		return nil
	}
	return &observer{reg: metrics.NewRegistry()}
}

// serverOptions returns the call-metric interceptors of a gRPC server
// named server (its role and id).
func (o *observer) serverOptions(server string) ([]grpc.ServerOption, error) {
	if o == nil {
		return nil, nil
	}
	g, err := metrics.NewGRPC(o.reg, server)
	if err != nil {
		return nil, err
	}
	return g.ServerOptions(), nil
}

// addMatcher registers a node's collector, its coordinator's counters
// (coord may be nil) and its readiness.
func (o *observer) addMatcher(node *matcher.Node, coord *dispatch.Coordinator) error {
	if o == nil {
		return nil
	}
	if err := o.reg.Register(matcher.NewCollector(node)); err != nil {
		return fmt.Errorf("register matcher metrics: %w", err)
	}
	if coord != nil {
		c := prometheus.NewCounterFunc(prometheus.CounterOpts{
			Name:        "geomatch_dispatch_reservation_conflicts_total",
			Help:        "Reservations the store refused because another trip held the driver.",
			ConstLabels: prometheus.Labels{"node": node.ID()},
		}, func() float64 { return float64(coord.ReservationConflicts()) })
		if err := o.reg.Register(c); err != nil {
			return fmt.Errorf("register dispatch metrics: %w", err)
		}
	}
	o.ready = append(o.ready, node.Ready)
	return nil
}

// addRouter registers the router's counters.
func (o *observer) addRouter(rt *router.Router) error {
	if o == nil {
		return nil
	}
	c := prometheus.NewCounterFunc(prometheus.CounterOpts{
		Name: "geomatch_router_evictions_dropped_total",
		Help: "Evictions of stale driver copies dropped because a matcher's eviction queue was full.",
	}, func() float64 { return float64(rt.EvictionsDropped()) })
	if err := o.reg.Register(c); err != nil {
		return fmt.Errorf("register router metrics: %w", err)
	}
	return nil
}

// start serves the metrics listener in g.
func (o *observer) start(g *lifecycle.Group, addr string, log *slog.Logger) error {
	if o == nil {
		return nil
	}
	lis, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("--metrics: %w", err)
	}
	h := metrics.Handler(o.reg, func() bool {
		for _, r := range o.ready {
			if !r() {
				return false
			}
		}
		return true
	})
	g.Go(func(ctx context.Context) error { return metrics.Serve(ctx, lis, h, log) })
	return nil
}

// reportReadiness keeps the gRPC health of srv NOT_SERVING until ready()
// is true (a matcher warming its shards), then leaves it SERVING.
func reportReadiness(ctx context.Context, srv *serve.Server, ready func() bool) error {
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for {
		if ready() {
			srv.SetServing(true)
			return nil
		}
		srv.SetServing(false)
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
		}
	}
}

// Package metrics exposes what geomatch processes measure about themselves:
// a Prometheus registry with the Go runtime and process collectors, gRPC
// server interceptors that count and time every call by method and status
// code, and the HTTP listener (--metrics ADDR) that serves /metrics, the
// pprof profiles under /debug/pprof/ and a readiness probe at /readyz.
//
// Limits count their refusals process-wide, by reason
// (geomatch_refused_total{reason}, CountRefused), beside the open driver
// streams (geomatch_driver_streams); every registry exports them.
//
// Components add their own collectors to the registry (matcher.Collector:
// drivers per shard, updates by outcome, shard moves, ring epoch;
// dispatch reservation conflicts). Collectors read state at scrape time,
// so the hot paths pay at most an atomic add.
package metrics

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"regexp"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"google.golang.org/grpc"
	"google.golang.org/grpc/status"
)

// goRuntimeSeries are the runtime/metrics exported beside the Go
// collector's defaults: the runtime's estimates of CPU seconds spent in
// the garbage collector and in all
// (go_cpu_classes_gc_total_cpu_seconds_total,
// go_cpu_classes_total_cpu_seconds_total), so the GC's share of the CPU
// is a rate away, and the heap the last collection found live
// (go_gc_heap_live_bytes), and the GOGC in force (go_gc_gogc_percent, which
// package gcpolicy tunes). geomatch bench --server-metrics reads them.
var goRuntimeSeries = regexp.MustCompile(`^/cpu/classes/(gc/total|total):cpu-seconds$|^/gc/heap/live:bytes$|^/gc/gogc:percent$`)

// NewRegistry returns a registry with the Go runtime and process
// collectors and the process-wide limit and dispatch series.
func NewRegistry() *prometheus.Registry {
	reg := prometheus.NewRegistry()
	reg.MustRegister(
		collectors.NewGoCollector(collectors.WithGoCollectorRuntimeMetrics(collectors.GoRuntimeMetricsRule{Matcher: goRuntimeSeries})),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
	)
	reg.MustRegister(limitCollectors()...)
	reg.MustRegister(dispatchCollectors()...)
	reg.MustRegister(nearbyCollectors()...)
	return reg
}

// GRPC holds the per-method call metrics of one gRPC server.
type GRPC struct {
	requests *prometheus.CounterVec
	latency  *prometheus.HistogramVec
}

// NewGRPC registers the call metrics of a server named server ("router",
// "matcher") on reg:
//
//	geomatch_grpc_requests_total{server, method, code}
//	geomatch_grpc_request_duration_seconds{server, method}
//
// Streams are counted when they end and timed over their whole life.
func NewGRPC(reg prometheus.Registerer, server string) (*GRPC, error) {
	g := &GRPC{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name:        "geomatch_grpc_requests_total",
			Help:        "gRPC calls handled, by method and status code.",
			ConstLabels: prometheus.Labels{"server": server},
		}, []string{"method", "code"}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:        "geomatch_grpc_request_duration_seconds",
			Help:        "Time to handle a gRPC call (streams: their whole life), by method.",
			ConstLabels: prometheus.Labels{"server": server},
			// 50 µs .. ~100 s: from an in-memory kNN to a long-lived stream.
			Buckets: prometheus.ExponentialBuckets(50e-6, 2.5, 17),
		}, []string{"method"}),
	}
	for _, c := range []prometheus.Collector{g.requests, g.latency} {
		if err := reg.Register(c); err != nil {
			return nil, fmt.Errorf("register gRPC metrics of %s: %w", server, err)
		}
	}
	return g, nil
}

func (g *GRPC) observe(method string, start time.Time, err error) {
	g.requests.WithLabelValues(method, status.Code(err).String()).Inc()
	g.latency.WithLabelValues(method).Observe(time.Since(start).Seconds())
}

// ServerOptions returns the interceptors that record every call, to pass
// to the server's constructor.
func (g *GRPC) ServerOptions() []grpc.ServerOption {
	return []grpc.ServerOption{
		grpc.ChainUnaryInterceptor(func(ctx context.Context, req any, info *grpc.UnaryServerInfo, h grpc.UnaryHandler) (any, error) {
			start := time.Now()
			resp, err := h(ctx, req)
			g.observe(info.FullMethod, start, err)
			return resp, err
		}),
		grpc.ChainStreamInterceptor(func(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, h grpc.StreamHandler) error {
			start := time.Now()
			err := h(srv, ss)
			g.observe(info.FullMethod, start, err)
			return err
		}),
	}
}

// Handler returns the HTTP handler of the metrics listener: /metrics,
// /debug/pprof/ and /readyz (200 when ready() is true, else 503; ready may
// be nil: always ready).
func Handler(reg *prometheus.Registry, ready func() bool) http.Handler {
	return HandlerWithDetails(reg, ready, nil)
}

// HandlerWithDetails is Handler whose /readyz body lists details() (may
// be nil), one a line, after its verdict: facts an operator should see
// where readiness is looked at, such as an insecure internal API.
func HandlerWithDetails(reg *prometheus.Registry, ready func() bool, details func() []string) http.Handler {
	mux := http.NewServeMux()
	mux.Handle("/metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{Registry: reg}))
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	mux.HandleFunc("/readyz", func(w http.ResponseWriter, _ *http.Request) {
		var more []string
		if details != nil {
			more = details()
		}
		if ready != nil && !ready() {
			http.Error(w, strings.Join(append([]string{"not ready"}, more...), "\n"), http.StatusServiceUnavailable)
			return
		}
		fmt.Fprintln(w, "ready")
		for _, d := range more {
			fmt.Fprintln(w, d)
		}
	})
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, _ *http.Request) { fmt.Fprintln(w, "ok") })
	return mux
}

// Routes are handlers the metrics listener serves beside its own, by path
// prefix ("/ui/"). A route may be added while the listener serves: a
// router mounts its shard map once it has started. Safe for concurrent
// use; the zero value has no routes.
type Routes struct {
	mu     sync.RWMutex
	routes map[string]http.Handler
}

// Handle serves the paths under prefix (which ends in "/") with h.
func (rt *Routes) Handle(prefix string, h http.Handler) {
	rt.mu.Lock()
	defer rt.mu.Unlock()
	if rt.routes == nil {
		rt.routes = map[string]http.Handler{}
	}
	rt.routes[prefix] = h
}

// Wrap returns base with the routes in front of it: a path under a
// route's prefix goes to the route (the longest prefix wins), any other to
// base.
func (rt *Routes) Wrap(base http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rt.mu.RLock()
		var h http.Handler
		best := 0
		for p, rh := range rt.routes {
			if len(p) > best && strings.HasPrefix(r.URL.Path, p) {
				h, best = rh, len(p)
			}
		}
		rt.mu.RUnlock()
		if h == nil {
			base.ServeHTTP(w, r)
			return
		}
		h.ServeHTTP(w, r)
	})
}

// Serve runs the metrics listener on lis until ctx is done.
func Serve(ctx context.Context, lis net.Listener, h http.Handler, log *slog.Logger) error {
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 5 * time.Second}
	done := make(chan error, 1)
	go func() { done <- srv.Serve(lis) }()
	log.Info("metrics listening", "addr", lis.Addr().String())
	select {
	case err := <-done:
		if errors.Is(err, http.ErrServerClosed) {
			return nil
		}
		return fmt.Errorf("metrics listener: %w", err)
	case <-ctx.Done():
		sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Second)
		defer cancel()
		_ = srv.Shutdown(sctx)
		<-done
		return nil
	}
}

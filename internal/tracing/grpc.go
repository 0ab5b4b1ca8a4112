package tracing

import (
	"context"
	"strings"

	"go.opentelemetry.io/contrib/instrumentation/google.golang.org/grpc/otelgrpc"
	metricnoop "go.opentelemetry.io/otel/metric/noop"
	"go.opentelemetry.io/otel/trace"
	"google.golang.org/grpc"
	"google.golang.org/grpc/stats"

	matcherv1 "github.com/geomatch/geomatch/proto/geomatch/matcher/v1"
	geomatchv1 "github.com/geomatch/geomatch/proto/geomatch/v1"
)

// publicPrefix starts the full name of every method of the public API.
const publicPrefix = "/geomatch.v1."

// untraced are the long-lived streams: a span would last as long as the
// stream, and the work on them is traced by what it calls.
var untraced = map[string]bool{
	geomatchv1.DriverService_Connect_FullMethodName:  true,
	geomatchv1.EventService_Subscribe_FullMethodName: true,
	matcherv1.MatcherService_Apply_FullMethodName:    true,
}

// traced reports whether a call gets a span: not the long-lived streams,
// health checks or reflection.
func traced(info *stats.RPCTagInfo) bool {
	m := info.FullMethodName
	return !untraced[m] && !strings.HasPrefix(m, "/grpc.health.") && !strings.HasPrefix(m, "/grpc.reflection.")
}

// public reports whether a call is one of the public API, whose callers'
// trace context is linked rather than continued.
func public(_ context.Context, info *stats.RPCTagInfo) bool {
	return strings.HasPrefix(info.FullMethodName, publicPrefix)
}

func handlerOptions(tp trace.TracerProvider) []otelgrpc.Option {
	return []otelgrpc.Option{
		otelgrpc.WithTracerProvider(tp),
		otelgrpc.WithPropagators(propagator),
		// Metrics are Prometheus's business (internal/metrics).
		otelgrpc.WithMeterProvider(metricnoop.NewMeterProvider()),
		otelgrpc.WithFilter(traced),
	}
}

func serverOptions(tp trace.TracerProvider) []grpc.ServerOption {
	opts := append(handlerOptions(tp), otelgrpc.WithPublicEndpointFn(public))
	return []grpc.ServerOption{grpc.StatsHandler(otelgrpc.NewServerHandler(opts...))}
}

func dialOptions(tp trace.TracerProvider) []grpc.DialOption {
	return []grpc.DialOption{grpc.WithStatsHandler(otelgrpc.NewClientHandler(handlerOptions(tp)...))}
}

// ServerOptions returns the options that trace a gRPC server's calls and
// continue the trace context of internal callers; nil while tracing is
// off. Servers are built with them once (internal/serve.New).
func ServerOptions() []grpc.ServerOption {
	if s := active.Load(); s != nil {
		return s.server
	}
	return nil
}

// DialOptions returns the options that trace the calls of a client
// connection to another geomatch process and send the trace context along;
// nil while tracing is off.
func DialOptions() []grpc.DialOption {
	if s := active.Load(); s != nil {
		return s.dial
	}
	return nil
}

package tracing

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracegrpc"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
)

// InstrumentationName names the tracer of geomatch's own spans.
const InstrumentationName = "github.com/geomatch/geomatch"

// ShutdownTimeout bounds the flush of the spans still buffered when a
// process stops.
const ShutdownTimeout = 5 * time.Second

// Config configures Setup. Tracing is on when Endpoint or Exporter is set.
type Config struct {
	// Endpoint is the OTLP/gRPC collector, host:port (4317 is the usual
	// port); "" leaves tracing off unless Exporter is set.
	Endpoint string
	// Insecure talks plaintext to the collector instead of TLS.
	Insecure bool
	// TLS verifies the collector (a CA bundle, a client certificate for
	// mutual TLS); nil with Insecure false: the system's roots.
	TLS *tls.Config
	// SampleRatio is the fraction of new traces recorded, in [0, 1]; spans
	// with a parent follow the parent's decision. 0 means 1 (every trace).
	SampleRatio float64
	// ServiceName is the resource's service.name ("geomatch-router");
	// default "geomatch".
	ServiceName string
	// Exporter, when set, receives the spans instead of an OTLP exporter,
	// synchronously as each span ends (tests and benchmarks:
	// tracetest.NewInMemoryExporter).
	Exporter sdktrace.SpanExporter
	// Log receives the exporter's errors (a collector that cannot be
	// reached); default discards them.
	Log *slog.Logger
}

// Enabled reports whether cfg turns tracing on.
func (cfg Config) Enabled() bool { return cfg.Endpoint != "" || cfg.Exporter != nil }

// state is what Setup installed.
type state struct {
	tp     *sdktrace.TracerProvider
	tracer trace.Tracer
	server []grpc.ServerOption
	dial   []grpc.DialOption
	hook   redis.Hook
}

// active is the process's tracing, nil while off.
var active atomic.Pointer[state]

// setupMu serialises Setup and shutdown.
var setupMu sync.Mutex

// propagator reads and writes the W3C trace context (traceparent,
// tracestate).
var propagator = propagation.TraceContext{}

// Setup turns tracing on for the process as cfg says and returns the
// function that flushes the buffered spans and turns it off again (within
// ShutdownTimeout, or ctx's deadline if sooner). With tracing off in cfg
// it installs nothing and returns a shutdown that does nothing. Only one
// Setup may be active at a time.
func Setup(ctx context.Context, cfg Config) (shutdown func(context.Context) error, err error) {
	nothing := func(context.Context) error { return nil }
	if !cfg.Enabled() {
		return nothing, nil
	}
	ratio := cfg.SampleRatio
	if ratio == 0 {
		ratio = 1
	}
	if !(ratio > 0 && ratio <= 1) { // NaN too
		return nothing, fmt.Errorf("tracing: sample ratio %v is not within [0, 1]", cfg.SampleRatio)
	}
	name := cfg.ServiceName
	if name == "" {
		name = "geomatch"
	}
	setupMu.Lock()
	defer setupMu.Unlock()
	if active.Load() != nil {
		return nothing, errors.New("tracing: already set up in this process")
	}
	opts := []sdktrace.TracerProviderOption{
		sdktrace.WithSampler(newSampler(ratio)),
		sdktrace.WithResource(resource.NewSchemaless(attribute.String("service.name", name))),
	}
	if cfg.Exporter != nil {
		opts = append(opts, sdktrace.WithSyncer(cfg.Exporter))
	} else {
		exp, err := otlpExporter(ctx, cfg)
		if err != nil {
			return nothing, err
		}
		opts = append(opts, sdktrace.WithBatcher(exp))
	}
	if cfg.Log != nil {
		log := cfg.Log
		otel.SetErrorHandler(otel.ErrorHandlerFunc(func(err error) { log.Warn("tracing", "err", err) }))
	}
	tp := sdktrace.NewTracerProvider(opts...)
	active.Store(&state{
		tp:     tp,
		tracer: tp.Tracer(InstrumentationName),
		server: serverOptions(tp),
		dial:   dialOptions(tp),
		hook:   redisHook{tracer: tp.Tracer(InstrumentationName + "/redis")},
	})
	var once sync.Once
	return func(ctx context.Context) error {
		var err error
		once.Do(func() {
			setupMu.Lock()
			defer setupMu.Unlock()
			active.Store(nil)
			ctx, cancel := context.WithTimeout(ctx, ShutdownTimeout)
			defer cancel()
			if e := tp.Shutdown(ctx); e != nil {
				err = fmt.Errorf("tracing: flush and stop: %w", e)
			}
		})
		return err
	}, nil
}

// otlpExporter builds the exporter to cfg.Endpoint. It connects lazily:
// a collector that is down does not stop the process from starting.
func otlpExporter(ctx context.Context, cfg Config) (sdktrace.SpanExporter, error) {
	opts := []otlptracegrpc.Option{otlptracegrpc.WithEndpoint(cfg.Endpoint), otlptracegrpc.WithTimeout(10 * time.Second)}
	switch {
	case cfg.Insecure:
		opts = append(opts, otlptracegrpc.WithInsecure())
	case cfg.TLS != nil:
		opts = append(opts, otlptracegrpc.WithTLSCredentials(credentials.NewTLS(cfg.TLS)))
	default:
		opts = append(opts, otlptracegrpc.WithTLSCredentials(credentials.NewTLS(&tls.Config{MinVersion: tls.VersionTLS12})))
	}
	exp, err := otlptracegrpc.New(ctx, opts...)
	if err != nil {
		return nil, fmt.Errorf("tracing: OTLP exporter to %s: %w", cfg.Endpoint, err)
	}
	return exp, nil
}

// Enabled reports whether tracing is on in this process.
func Enabled() bool { return active.Load() != nil }

// Start starts a span named name as a child of the span on ctx (a new
// trace without one) and returns the context carrying it; the caller ends
// it. With tracing off it returns ctx itself and a no-op span, at no cost.
func Start(ctx context.Context, name string, opts ...trace.SpanStartOption) (context.Context, trace.Span) {
	s := active.Load()
	if s == nil {
		return ctx, noop.Span{}
	}
	return s.tracer.Start(ctx, name, opts...)
}

// End ends span, marking it failed with err (when recording).
func End(span trace.Span, err error) {
	if err != nil && span.IsRecording() {
		span.RecordError(err)
		span.SetStatus(codes.Error, err.Error())
	}
	span.End()
}

// TraceID returns the id of the sampled trace ctx is part of, "" when it
// is part of none (tracing off, or a trace not recorded).
func TraceID(ctx context.Context) string {
	sc := trace.SpanContextFromContext(ctx)
	if !sc.IsValid() || !sc.IsSampled() {
		return ""
	}
	return sc.TraceID().String()
}

// Traceparent returns the W3C traceparent of the span on ctx, to carry the
// trace across an asynchronous boundary (a message on the store's bus);
// "" when tracing is off or ctx has no span.
func Traceparent(ctx context.Context) string {
	if active.Load() == nil || !trace.SpanContextFromContext(ctx).IsValid() {
		return ""
	}
	c := propagation.MapCarrier{}
	propagator.Inject(ctx, c)
	return c["traceparent"]
}

// WithTraceparent returns ctx continuing the trace of traceparent (as
// Traceparent wrote it), so spans started on it become children of the
// span that wrote it. An empty or malformed traceparent, or tracing off,
// returns ctx unchanged.
func WithTraceparent(ctx context.Context, traceparent string) context.Context {
	if traceparent == "" || active.Load() == nil {
		return ctx
	}
	return propagator.Extract(ctx, propagation.MapCarrier{"traceparent": traceparent})
}

// sampler samples new traces at a ratio and follows the parent otherwise,
// except that a client call without a parent is never sampled: a
// background call (a status probe, a hand-over) does not start a trace.
type sampler struct {
	parentBased sdktrace.Sampler
}

func newSampler(ratio float64) sampler {
	return sampler{parentBased: sdktrace.ParentBased(sdktrace.TraceIDRatioBased(ratio))}
}

// ShouldSample implements sdktrace.Sampler.
func (s sampler) ShouldSample(p sdktrace.SamplingParameters) sdktrace.SamplingResult {
	if p.Kind == trace.SpanKindClient && !trace.SpanContextFromContext(p.ParentContext).IsValid() {
		return sdktrace.SamplingResult{Decision: sdktrace.Drop}
	}
	return s.parentBased.ShouldSample(p)
}

// Description implements sdktrace.Sampler.
func (s sampler) Description() string {
	return "NoOrphanClients{" + s.parentBased.Description() + "}"
}

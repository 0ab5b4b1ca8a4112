package tracing

import (
	"context"
	"testing"

	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// on turns tracing on for the test with an in-memory exporter.
func on(t *testing.T, ratio float64) *tracetest.InMemoryExporter {
	t.Helper()
	exp := tracetest.NewInMemoryExporter()
	shutdown, err := Setup(context.Background(), Config{Exporter: exp, SampleRatio: ratio})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := shutdown(context.Background()); err != nil {
			t.Error(err)
		}
	})
	return exp
}

// TestOffCostsNothing: without Setup (or with no endpoint) nothing is
// installed and Start neither changes the context nor allocates.
func TestOffCostsNothing(t *testing.T) {
	shutdown, err := Setup(context.Background(), Config{})
	if err != nil {
		t.Fatal(err)
	}
	if err := shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	if Enabled() || ServerOptions() != nil || DialOptions() != nil || RedisHook() != nil {
		t.Fatal("tracing off installs something")
	}
	ctx := context.Background()
	allocs := testing.AllocsPerRun(100, func() {
		c, span := Start(ctx, "x")
		if span.IsRecording() || c != ctx {
			t.Fatal("a span with tracing off")
		}
		span.End()
	})
	if allocs != 0 {
		t.Fatalf("Start with tracing off: %v allocations, want 0", allocs)
	}
	if Traceparent(ctx) != "" || WithTraceparent(ctx, "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01") != ctx || TraceID(ctx) != "" {
		t.Fatal("trace context with tracing off")
	}
}

// TestTraceparentContinuesTheTrace: a span started on WithTraceparent's
// context is a child of the span Traceparent was read from.
func TestTraceparentContinuesTheTrace(t *testing.T) {
	exp := on(t, 1)
	ctx, parent := Start(context.Background(), "offer")
	tp := Traceparent(ctx)
	parent.End()
	if tp == "" || TraceID(ctx) != parent.SpanContext().TraceID().String() {
		t.Fatalf("traceparent %q, trace id %q", tp, TraceID(ctx))
	}
	_, child := Start(WithTraceparent(context.Background(), tp), "deliver")
	child.End()
	spans := exp.GetSpans()
	if len(spans) != 2 || spans[1].Parent.SpanID() != spans[0].SpanContext.SpanID() || spans[1].SpanContext.TraceID() != spans[0].SpanContext.TraceID() {
		t.Fatalf("spans %+v", spans)
	}
	if WithTraceparent(context.Background(), "garbage") != context.Background() &&
		trace.SpanContextFromContext(WithTraceparent(context.Background(), "garbage")).IsValid() {
		t.Fatal("a malformed traceparent continued a trace")
	}
}

// TestSampler: a client call without a parent is never sampled; a new
// trace follows the ratio; a child follows its parent.
func TestSampler(t *testing.T) {
	exp := on(t, 1)
	_, orphan := Start(context.Background(), "probe", trace.WithSpanKind(trace.SpanKindClient))
	if orphan.IsRecording() {
		t.Fatal("an orphan client span is recorded")
	}
	orphan.End()
	ctx, root := Start(context.Background(), "call", trace.WithSpanKind(trace.SpanKindServer))
	_, child := Start(ctx, "redis GET", trace.WithSpanKind(trace.SpanKindClient))
	if !root.IsRecording() || !child.IsRecording() {
		t.Fatal("a sampled trace is not recorded")
	}
	child.End()
	root.End()
	if n := len(exp.GetSpans()); n != 2 {
		t.Fatalf("%d spans, want 2", n)
	}
}

// TestSetupChecks: one Setup at a time, a sample ratio within [0, 1].
func TestSetupChecks(t *testing.T) {
	if _, err := Setup(context.Background(), Config{Exporter: tracetest.NewInMemoryExporter(), SampleRatio: 2}); err == nil {
		t.Fatal("ratio 2 accepted")
	}
	on(t, 0.5)
	if _, err := Setup(context.Background(), Config{Exporter: tracetest.NewInMemoryExporter()}); err == nil {
		t.Fatal("a second Setup accepted")
	}
	if ServerOptions() == nil || DialOptions() == nil || RedisHook() == nil {
		t.Fatal("tracing on installs nothing")
	}
}

package router_test

import (
	"context"
	"sync/atomic"
	"testing"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"

	"github.com/geomatch/geomatch/internal/tracing"
)

// discardExporter counts the spans it is given and drops them: the cost
// of tracing up to the exporter, without a collector.
type discardExporter struct{ spans atomic.Int64 }

func (e *discardExporter) ExportSpans(_ context.Context, spans []sdktrace.ReadOnlySpan) error {
	e.spans.Add(int64(len(spans)))
	return nil
}

func (e *discardExporter) Shutdown(context.Context) error { return nil }

// BenchmarkNearbyThroughGRPCTraced is BenchmarkNearbyThroughGRPC with
// tracing on and every trace sampled (the worst case): the spans of the
// router's call (and, over gRPC, of the calls to the matchers and their
// handling) are made and handed to an exporter that drops them. Compare
// with BenchmarkNearbyThroughGRPC, where tracing is off.
func BenchmarkNearbyThroughGRPCTraced(b *testing.B) {
	const n = 100_000
	for _, internal := range []string{"in-process", "grpc"} {
		b.Run("internal="+internal, func(b *testing.B) {
			exp := &discardExporter{}
			shutdown, err := tracing.Setup(context.Background(), tracing.Config{Exporter: exp, SampleRatio: 1})
			if err != nil {
				b.Fatal(err)
			}
			b.Cleanup(func() { _ = shutdown(context.Background()) }) // after the cluster stops
			bc := startBenchCluster(b, n, internal == "grpc")
			benchNearbyThroughGRPC(b, bc, n)
			if exp.spans.Load() == 0 {
				b.Fatal("no spans exported")
			}
		})
	}
}

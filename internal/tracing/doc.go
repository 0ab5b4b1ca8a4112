// Package tracing sets up OpenTelemetry tracing for a geomatch process:
// spans across the hops of a request (router → matcher → Redis), the W3C
// trace context (traceparent) carried over gRPC, and export over OTLP/gRPC
// to a collector (Jaeger, Tempo, the OpenTelemetry Collector).
//
// Setup installs one tracer provider for the process; until it is called
// (or when its Config names no endpoint) tracing costs nothing: the gRPC
// options (ServerOptions, DialOptions) and the Redis hook (RedisHook) are
// nil, and Start returns its context unchanged with a no-op span, without
// allocating. Servers (internal/serve), the fleet client's connections
// (fleet) and the Redis store (store) ask for them when they are built, so
// Setup must run before they are.
//
// What is traced:
//
//   - every unary gRPC call, on both ends (otelgrpc stats handlers). Calls of
//     the public API (geomatch.v1) start a new trace linked to whatever
//     trace context the client sent, so an outside caller can neither join
//     nor force the sampling of internal traces; calls between geomatch
//     processes continue the caller's trace. Long-lived streams (driver
//     Connect, event Subscribe, the matchers' Apply streams) and health
//     and reflection calls are not traced: a span per stream would last as
//     long as the stream.
//   - Redis commands and pipelines, as children of the span on their
//     context only: background work (write-behind, polling, leases) does
//     not start traces.
//   - the steps of a ride (dispatch spans, see package dispatch), which
//     carry the trace across the store's event bus to the router that
//     holds the driver's stream (Traceparent, WithTraceparent).
//
// Sampling is parent-based with a ratio for new traces (Config.SampleRatio);
// a client call without a traced parent (a background probe) is never
// sampled.
package tracing

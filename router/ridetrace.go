package router

import (
	"context"

	"go.opentelemetry.io/otel/trace"
)

// offerSpan is the span in which this router delivered an offer to a
// driver's stream: the driver's answer to that offer continues its trace
// (the ride's, see package dispatch), although it arrives on the stream
// rather than in a call of its own.
type offerSpan struct {
	offerID string
	span    trace.SpanContext
}

// offerContext returns ctx whose parent span is the delivery of offerID on
// the session, when that is the session's last offer and it was traced;
// ctx itself otherwise.
func (s *driverSession) offerContext(ctx context.Context, offerID string) context.Context {
	o := s.lastOffer.Load()
	if o == nil || o.offerID != offerID {
		return ctx
	}
	return trace.ContextWithSpanContext(ctx, o.span)
}

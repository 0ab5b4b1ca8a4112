package dispatch

import (
	"context"
	"encoding/json"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/trace"

	"github.com/geomatch/geomatch/internal/tracing"
	"github.com/geomatch/geomatch/store"
)

// A ride is one trace (with tracing on, see internal/tracing): the router's
// RequestRide call, the coordinating matcher's DispatchService call, then
// the coordinator's loop for the trip (dispatch.drive, whose parent is the
// request even though it outlives it) with its offers (dispatch.offer: the
// search, dispatch.search, the reservation and the offer in Redis). The
// offer crosses the store's event bus to whichever router holds the
// driver's stream with the offer span's traceparent in its payload
// (offerMessage); that router continues the trace as it delivers the offer
// and applies the driver's answer (OfferContext).

// offerMessage is the bus payload of an offer (store.EventOffer): the
// offer's own fields and, when the ride is traced, the traceparent of the
// span that made the offer. DecodeOffer reads it as a plain store.Offer.
type offerMessage struct {
	store.Offer
	Traceparent string `json:"traceparent,omitempty"`
}

// OfferContext returns ctx continuing the trace of the offer whose bus
// payload is data (an EventOffer's Data), or ctx itself when tracing is
// off or the offer carries no trace.
func OfferContext(ctx context.Context, data []byte) context.Context {
	if !tracing.Enabled() {
		return ctx
	}
	var m struct {
		Traceparent string `json:"traceparent"`
	}
	if json.Unmarshal(data, &m) != nil {
		return ctx
	}
	return tracing.WithTraceparent(ctx, m.Traceparent)
}

// withParent returns ctx with parent as its span context, when valid.
func withParent(ctx context.Context, parent trace.SpanContext) context.Context {
	if !parent.IsValid() {
		return ctx
	}
	return trace.ContextWithSpanContext(ctx, parent)
}

// startSpan starts a dispatch span about trip tripID (nothing, at no cost,
// with tracing off).
func startSpan(ctx context.Context, name, tripID string) (context.Context, trace.Span) {
	ctx, span := tracing.Start(ctx, name)
	if span.IsRecording() {
		span.SetAttributes(attribute.String("geomatch.trip.id", tripID))
	}
	return ctx, span
}

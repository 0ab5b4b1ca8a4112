package hook

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"time"

	geomatchv1 "github.com/geomatch/geomatch/proto/geomatch/v1"
)

// Delivery is one event on its way to a sink.
type Delivery struct {
	// ID is the event's deterministic id: sinks that can drop duplicates
	// (JetStream's Nats-Msg-Id) drop them by it, and receivers should too.
	ID string
	// Key is the event's ordering key (a driver id, a trip id).
	Key string
	// JSON is the event, with its cursor, as protojson.
	JSON []byte
}

// Sink delivers batches of events to one external system. Deliver returns
// nil only once the sink has taken every event of the batch (a webhook's
// 2xx, every JetStream ack, every XADD reply); an error means some may
// have been taken and the batch will be delivered again. Deliver is called
// concurrently with batches of disjoint keys, never with two batches that
// share a key.
type Sink interface {
	Deliver(ctx context.Context, batch []Delivery) error
	// Close releases the sink's connections.
	Close() error
}

// sinkDeps are what the sinks of one Manager share.
type sinkDeps struct {
	http   *http.Client
	cfg    *Config
	logger *slog.Logger
}

// newSink opens the sink of a validated hook.
func newSink(h *geomatchv1.Hook, deps sinkDeps) (Sink, error) {
	ep, err := ParseEndpoint(h.GetEndpoint())
	if err != nil {
		return nil, err
	}
	switch ep.Scheme {
	case SchemeHTTP, SchemeHTTPS:
		return newWebhook(deps.http, h, ep, deps.cfg.RequestTimeout), nil
	case SchemeNATS:
		s, err := newNATSSink(h.GetHookId(), ep, deps.cfg.RequestTimeout, deps.logger)
		if err != nil {
			return nil, err
		}
		return s, nil
	case SchemeRedis:
		return newRedisSink(ep, deps.cfg.RedisMaxLen, deps.cfg.RequestTimeout), nil
	default:
		return nil, fmt.Errorf("endpoint: no sink for scheme %q", ep.Scheme)
	}
}

// newHTTPClient returns the client every webhook of a Manager shares:
// keep-alive connections, enough idle ones per host for the concurrent
// partitions of a few hooks on one receiver.
func newHTTPClient() *http.Client {
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.MaxIdleConns = 256
	t.MaxIdleConnsPerHost = 32
	t.IdleConnTimeout = 90 * time.Second
	return &http.Client{
		Transport: t,
		// A webhook answers; it does not redirect a signed POST elsewhere.
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
}

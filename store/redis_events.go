package store

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"time"

	"github.com/redis/go-redis/v9"
)

// Event bus on Redis pub/sub: Publish is one PUBLISH on the prefix's events
// channel; each subscription has its own pub/sub connection and one
// goroutine that forwards messages to the subscriber's bounded channel,
// dropping when it is full. Delivery is at most once: messages published
// while a connection is being re-established are lost, as the Store
// contract allows.

// Timings of the subscription loop.
const (
	// subHealthInterval: a subscription silent for this long pings the
	// server, so a dead connection is noticed and re-dialled.
	subHealthInterval = 15 * time.Second
	// subRetryMin and subRetryMax bound the back-off after a receive error
	// (server down): retry soon, but do not spin.
	subRetryMin = 50 * time.Millisecond
	subRetryMax = 2 * time.Second
)

// wireEvent is the JSON payload of an event, with short field names.
type wireEvent struct {
	Kind     EventKind `json:"k"`
	DriverID string    `json:"d,omitempty"`
	TripID   string    `json:"t,omitempty"`
	Data     []byte    `json:"x,omitempty"`
}

// Publish implements Store.
func (r *Redis) Publish(ctx context.Context, e Event) error {
	payload, err := json.Marshal(wireEvent(e))
	if err != nil {
		return fmt.Errorf("publish event for trip %s: encode: %w", e.TripID, err)
	}
	if err := r.client.Publish(ctx, r.eventsChannel(), payload).Err(); err != nil {
		return fmt.Errorf("publish event for trip %s: %w", e.TripID, err)
	}
	return nil
}

// Subscribe implements Store. It returns once the server has confirmed the
// subscription, so every event published after it returns is delivered
// (buffer permitting). The channel closes when ctx is done or the store is
// closed; the goroutine behind it has exited by the time Close returns.
func (r *Redis) Subscribe(ctx context.Context) (<-chan Event, error) {
	const op = "subscribe to events"
	r.mu.Lock()
	if r.closed {
		r.mu.Unlock()
		return nil, fmt.Errorf("%s: %w", op, errClosed)
	}
	ctx, cancel := context.WithCancel(ctx)
	id := r.nextID
	r.nextID++
	r.subs[id] = cancel
	r.wg.Add(1)
	r.mu.Unlock()

	done := func() {
		cancel()
		r.mu.Lock()
		delete(r.subs, id)
		r.mu.Unlock()
		r.wg.Done()
	}
	ps := r.client.Subscribe(ctx, r.eventsChannel())
	// The first reply is the subscription confirmation.
	if _, err := ps.Receive(ctx); err != nil {
		_ = ps.Close()
		done()
		return nil, fmt.Errorf("%s on channel %s: %w", op, r.eventsChannel(), err)
	}
	out := make(chan Event, r.buffer)
	go func() {
		defer done()
		defer close(out)
		r.forward(ctx, ps, out)
	}()
	return out, nil
}

// forward copies messages from ps to out until ctx is done, then closes ps.
func (r *Redis) forward(ctx context.Context, ps *redis.PubSub, out chan<- Event) {
	// A blocked receive does not watch ctx; closing the connection ends it.
	// The callback is waited for, so nothing of the subscription outlives
	// this function.
	closed := make(chan struct{})
	stop := context.AfterFunc(ctx, func() {
		_ = ps.Close()
		close(closed)
	})
	defer func() {
		if stop() { // the callback will not run: close here
			_ = ps.Close()
			return
		}
		<-closed
	}()
	retry := subRetryMin
	for {
		msg, err := ps.ReceiveTimeout(ctx, subHealthInterval)
		if ctx.Err() != nil {
			return
		}
		if err != nil {
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				// Quiet channel: ping; a failed ping re-dials on the next
				// receive (go-redis reconnects and resubscribes).
				_ = ps.Ping(ctx)
				continue
			}
			select {
			case <-ctx.Done():
				return
			case <-time.After(retry):
			}
			retry = min(2*retry, subRetryMax)
			continue
		}
		retry = subRetryMin
		m, ok := msg.(*redis.Message)
		if !ok {
			continue // subscription confirmations, pongs
		}
		var w wireEvent
		if err := json.Unmarshal([]byte(m.Payload), &w); err != nil {
			continue // not ours: at-most-once delivery has no place to report it
		}
		select {
		case out <- Event(w):
		default: // slow subscriber: drop
		}
	}
}

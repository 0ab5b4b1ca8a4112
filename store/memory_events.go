package store

import (
	"context"
	"errors"
	"fmt"
	"sync"
)

// errClosed is returned by Subscribe on a closed store.
var errClosed = errors.New("store closed")

// memoryBus fans events out to in-process subscribers.
//
// Publishers send under the read lock without blocking (a full channel
// drops the event); a subscription is removed and its channel closed under
// the write lock, so no send can race with the close. No goroutine runs per
// subscription: context.AfterFunc unsubscribes when the subscriber's context
// is done, and Close stops those callbacks and closes what is left.
type memoryBus struct {
	buffer int

	mu     sync.RWMutex
	subs   map[*memorySub]struct{}
	closed bool
}

// memorySub is one subscription.
type memorySub struct {
	ch   chan Event
	stop func() bool // stops the AfterFunc that unsubscribes
}

// Publish implements Store: every current subscriber gets the event unless
// its buffer is full.
func (m *Memory) Publish(ctx context.Context, e Event) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("publish event for trip %s: %w", e.TripID, err)
	}
	e.Data = cloneBytes(e.Data) // subscribers share this copy and must not modify it
	b := &m.events
	b.mu.RLock()
	defer b.mu.RUnlock()
	for sub := range b.subs {
		select {
		case sub.ch <- e:
		default: // slow subscriber: drop
		}
	}
	return nil
}

// Subscribe implements Store. The channel is closed when ctx is done or the
// store is closed.
func (m *Memory) Subscribe(ctx context.Context) (<-chan Event, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("subscribe to events: %w", err)
	}
	b := &m.events
	sub := &memorySub{ch: make(chan Event, b.buffer)}
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		return nil, fmt.Errorf("subscribe to events: %w", errClosed)
	}
	b.subs[sub] = struct{}{}
	// AfterFunc may run at once (ctx done meanwhile); it then waits for the
	// lock held here, by which time sub.stop is set.
	sub.stop = context.AfterFunc(ctx, func() { b.unsubscribe(sub) })
	return sub.ch, nil
}

// unsubscribe removes sub and closes its channel, once.
func (b *memoryBus) unsubscribe(sub *memorySub) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if _, ok := b.subs[sub]; !ok {
		return
	}
	delete(b.subs, sub)
	close(sub.ch)
}

// close ends every subscription and refuses new ones.
func (b *memoryBus) close() {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.closed = true
	for sub := range b.subs {
		sub.stop()
		delete(b.subs, sub)
		close(sub.ch)
	}
}

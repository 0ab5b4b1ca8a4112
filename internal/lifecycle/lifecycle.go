// Package lifecycle gives every long-running goroutine of a geomatch process
// an owner: a Group starts related goroutines under one context and stops
// them together (cancel, then wait), keeping the first error. Processes stop
// their groups from the edge inwards, so client streams drain before the
// connections they depend on close.
package lifecycle

import (
	"context"
	"sync"
)

// Group is a set of goroutines started together and stopped together.
type Group struct {
	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup
	mu     sync.Mutex
	err    error
	failed chan struct{}
	once   sync.Once
}

// NewGroup returns an empty running group.
func NewGroup() *Group {
	ctx, cancel := context.WithCancel(context.Background())
	return &Group{ctx: ctx, cancel: cancel, failed: make(chan struct{})}
}

// Go runs f in a goroutine with the group's context. f must return when the
// context is done; a non-nil error marks the group failed.
func (g *Group) Go(f func(ctx context.Context) error) {
	g.wg.Add(1)
	go func() {
		defer g.wg.Done()
		if err := f(g.ctx); err != nil {
			g.mu.Lock()
			if g.err == nil {
				g.err = err
			}
			g.mu.Unlock()
			g.once.Do(func() { close(g.failed) })
		}
	}()
}

// Failed is closed when a goroutine of the group returns an error.
func (g *Group) Failed() <-chan struct{} { return g.failed }

// Err returns the first error of the group so far.
func (g *Group) Err() error {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.err
}

// Stop cancels the group, waits for its goroutines and returns the first
// error any of them reported.
func (g *Group) Stop() error {
	g.cancel()
	g.wg.Wait()
	return g.Err()
}

// WaitAny blocks until ctx is done or one of the groups fails, and returns
// that failure (nil when ctx ended the wait).
func WaitAny(ctx context.Context, groups ...*Group) error {
	failed := make(chan *Group, len(groups))
	stop := make(chan struct{})
	defer close(stop)
	for _, g := range groups {
		go func() {
			select {
			case <-g.failed:
				failed <- g
			case <-stop:
			}
		}()
	}
	select {
	case <-ctx.Done():
		return nil
	case g := <-failed:
		return g.Err()
	}
}

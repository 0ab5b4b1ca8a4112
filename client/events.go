package client

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"time"

	"google.golang.org/protobuf/proto"

	geomatchv1 "github.com/geomatch/geomatch/proto/geomatch/v1"
)

// Subscribe backoff: a broken subscription is resumed after a wait that
// starts at subscribeMinBackoff and doubles up to subscribeMaxBackoff
// (with jitter), and starts over once events flow again.
const (
	subscribeMinBackoff = 100 * time.Millisecond
	subscribeMaxBackoff = 5 * time.Second
)

// Subscribe follows the fleet's events that match req (fence, trip and
// driver events; see EventService.Subscribe), calling fn with each, in
// order, on the calling goroutine. A stream that breaks (the router
// restarts or goes away: UNAVAILABLE, ABORTED, or an end the caller did
// not ask for) is opened again after the last event's cursor, with
// backoff, so fn sees each event once in the usual case (and never an
// older one after a newer; events carry a deterministic event_id to drop
// the rare repeat).
//
// It returns when ctx ends (ctx's error), when fn returns an error (that
// error), or when the router refuses the subscription (e.g. OUT_OF_RANGE:
// the cursor is older than the log's retention). req is not changed.
func (c *Conn) Subscribe(ctx context.Context, req *geomatchv1.SubscribeRequest, fn func(*geomatchv1.Event) error) error {
	cursor := req.GetAfterCursor()
	failures := 0
	for {
		n, err := c.follow(ctx, req, &cursor, fn)
		var fnErr fnError
		switch {
		case errors.As(err, &fnErr):
			return fnErr.err
		case ctx.Err() != nil:
			return ctx.Err()
		case !errors.Is(err, io.EOF) && !Retryable(err):
			return fmt.Errorf("subscribe: %w", err)
		}
		if n > 0 {
			failures = 0
		}
		failures++
		p := RetryPolicy{MaxAttempts: 1, InitialBackoff: subscribeMinBackoff, MaxBackoff: subscribeMaxBackoff}
		wait := p.backoff(failures, rand.Float64())
		c.cfg.log.Info("event subscription broke; resuming", "err", err, "after_cursor", cursor, "in", wait)
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return ctx.Err()
		case <-t.C:
		}
	}
}

// fnError carries the error of Subscribe's fn out of follow.
type fnError struct{ err error }

func (e fnError) Error() string { return e.err.Error() }

// follow runs one stream after *cursor, advancing it with every event; it
// returns how many events it passed on and why the stream ended.
func (c *Conn) follow(ctx context.Context, req *geomatchv1.SubscribeRequest, cursor *string, fn func(*geomatchv1.Event) error) (int, error) {
	r := proto.Clone(req).(*geomatchv1.SubscribeRequest)
	r.AfterCursor = *cursor
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stream, err := c.events.Subscribe(ctx, r)
	if err != nil {
		return 0, err
	}
	n := 0
	for {
		ev, err := stream.Recv()
		if err != nil {
			return n, err
		}
		if err := fn(ev); err != nil {
			return n, fnError{err}
		}
		n++
		if cur := ev.GetCursor(); cur != "" {
			*cursor = cur
		}
	}
}

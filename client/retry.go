package client

import (
	"context"
	"fmt"
	"math/rand/v2"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// RetryPolicy says how the unary calls that retry do so. A call is tried
// again only when it failed with a code that says it did not happen or may
// safely happen again (Retryable), and only while the caller's deadline
// leaves room for the wait and another try: a retry never outlives the
// caller's context.
type RetryPolicy struct {
	// MaxAttempts is the number of tries, the first included; 1 turns
	// retries off. Default 4.
	MaxAttempts int
	// InitialBackoff is the wait before the second try; each later wait
	// doubles, up to MaxBackoff. Each wait is drawn uniformly from its
	// upper half (jitter), so clients that failed together do not retry
	// together. Default 25 ms.
	InitialBackoff time.Duration
	// MaxBackoff bounds one wait. Default 1 s.
	MaxBackoff time.Duration
}

// DefaultRetryPolicy is 4 tries, waiting 25 ms, 50 ms and 100 ms (with
// jitter) in between: enough to ride out a shard moving to another node or
// a router restarting, short enough for an interactive caller.
func DefaultRetryPolicy() RetryPolicy {
	return RetryPolicy{MaxAttempts: 4, InitialBackoff: 25 * time.Millisecond, MaxBackoff: time.Second}
}

// NoRetry tries every call once (load generators, callers with their own
// retries).
var NoRetry = RetryPolicy{MaxAttempts: 1, InitialBackoff: time.Millisecond, MaxBackoff: time.Millisecond}

func (p RetryPolicy) validate() error {
	switch {
	case p.MaxAttempts < 1 || p.MaxAttempts > 100:
		return fmt.Errorf("client: retry policy: max attempts %d, want 1..100", p.MaxAttempts)
	case p.InitialBackoff <= 0:
		return fmt.Errorf("client: retry policy: initial backoff %v, want > 0", p.InitialBackoff)
	case p.MaxBackoff < p.InitialBackoff:
		return fmt.Errorf("client: retry policy: max backoff %v below the initial backoff %v", p.MaxBackoff, p.InitialBackoff)
	}
	return nil
}

// backoff returns the wait before try attempt+1 (attempt >= 1 tries done):
// the attempt'th doubling of InitialBackoff capped at MaxBackoff, with
// jitter drawn from its upper half by r (a value in [0, 1)).
func (p RetryPolicy) backoff(attempt int, r float64) time.Duration {
	d := p.InitialBackoff
	for i := 1; i < attempt && d < p.MaxBackoff; i++ {
		d *= 2
	}
	d = min(d, p.MaxBackoff)
	return d/2 + time.Duration(r*float64(d/2))
}

// Retryable reports whether a failed call may be tried again. UNAVAILABLE
// is the router's answer when a matcher could not be reached or the ring
// kept changing under the call (a shard moving between owners: the
// router retries NotOwner refusals itself and reports UNAVAILABLE when it
// gives up), and gRPC's when the router could not be reached. ABORTED is
// a conflict with a concurrent change. Every other code is the answer:
// INVALID_ARGUMENT, NOT_FOUND, FAILED_PRECONDITION, PERMISSION_DENIED,
// RESOURCE_EXHAUSTED (back off, do not retry at once) and
// DEADLINE_EXCEEDED (the caller's time is up) are not retried.
func Retryable(err error) bool {
	switch status.Code(err) {
	case codes.Unavailable, codes.Aborted:
		return true
	}
	return false
}

// retry runs call under p until it succeeds, fails with an error that is
// not Retryable, has run MaxAttempts times, or the caller's deadline leaves
// no room for the next wait. The last error is returned as it is (a gRPC
// status), so callers can branch on its code.
func retry[T any](ctx context.Context, p RetryPolicy, call func(context.Context) (T, error)) (T, error) {
	var zero T
	for attempt := 1; ; attempt++ {
		v, err := call(ctx)
		if err == nil || !Retryable(err) || attempt >= p.MaxAttempts {
			return v, err
		}
		wait := p.backoff(attempt, rand.Float64())
		if dl, ok := ctx.Deadline(); ok && time.Until(dl) <= wait {
			return zero, err // no time left for another try
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return zero, err
		case <-t.C:
		}
	}
}

package client

import (
	"context"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// TestBackoffDoublesWithJitter: each wait doubles up to the cap and is
// drawn from the upper half of its step.
func TestBackoffDoublesWithJitter(t *testing.T) {
	p := RetryPolicy{MaxAttempts: 10, InitialBackoff: 10 * time.Millisecond, MaxBackoff: 50 * time.Millisecond}
	for _, tc := range []struct {
		attempt int
		r       float64
		want    time.Duration
	}{
		{1, 0, 5 * time.Millisecond},
		{1, 0.999999, 10 * time.Millisecond},
		{2, 0, 10 * time.Millisecond},
		{3, 0.5, 30 * time.Millisecond},
		{4, 0, 25 * time.Millisecond}, // capped at 50
		{40, 0.999999, 50 * time.Millisecond},
	} {
		got := p.backoff(tc.attempt, tc.r)
		if d := got - tc.want; d < -time.Microsecond || d > time.Microsecond {
			t.Errorf("backoff(%d, %v) = %v, want %v", tc.attempt, tc.r, got, tc.want)
		}
	}
}

// TestRetryOnlyRetryable: UNAVAILABLE and ABORTED are tried again up to
// MaxAttempts; any other error is the answer.
func TestRetryOnlyRetryable(t *testing.T) {
	p := RetryPolicy{MaxAttempts: 3, InitialBackoff: time.Microsecond, MaxBackoff: time.Microsecond}
	for _, tc := range []struct {
		code  codes.Code
		calls int
	}{
		{codes.Unavailable, 3},
		{codes.Aborted, 3},
		{codes.InvalidArgument, 1},
		{codes.ResourceExhausted, 1},
		{codes.DeadlineExceeded, 1},
		{codes.NotFound, 1},
	} {
		calls := 0
		_, err := retry(context.Background(), p, func(context.Context) (int, error) {
			calls++
			return 0, status.Error(tc.code, "no")
		})
		if calls != tc.calls || status.Code(err) != tc.code {
			t.Errorf("%v: %d calls, err %v; want %d calls and the code kept", tc.code, calls, err, tc.calls)
		}
	}
}

// TestRetryStopsAtSuccess: a call that succeeds on its second try is not
// tried a third time.
func TestRetryStopsAtSuccess(t *testing.T) {
	calls := 0
	v, err := retry(context.Background(), DefaultRetryPolicy(), func(context.Context) (int, error) {
		calls++
		if calls == 1 {
			return 0, status.Error(codes.Unavailable, "moving")
		}
		return 7, nil
	})
	if v != 7 || err != nil || calls != 2 {
		t.Fatalf("got %d, %v after %d calls", v, err, calls)
	}
}

// TestRetryHonoursDeadline: no retry starts when the caller's deadline is
// closer than the wait before it; a cancelled caller stops at once.
func TestRetryHonoursDeadline(t *testing.T) {
	p := RetryPolicy{MaxAttempts: 5, InitialBackoff: time.Hour, MaxBackoff: time.Hour}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	calls := 0
	_, err := retry(ctx, p, func(context.Context) (int, error) {
		calls++
		return 0, status.Error(codes.Unavailable, "down")
	})
	if calls != 1 || status.Code(err) != codes.Unavailable {
		t.Fatalf("%d calls, %v; want one call and its error", calls, err)
	}
	ctx, cancel = context.WithCancel(context.Background())
	p = RetryPolicy{MaxAttempts: 5, InitialBackoff: time.Hour, MaxBackoff: time.Hour}
	calls = 0
	_, err = retry(ctx, p, func(context.Context) (int, error) {
		calls++
		cancel()
		return 0, status.Error(codes.Unavailable, "down")
	})
	if calls != 1 || err == nil {
		t.Fatalf("%d calls, %v; want one call", calls, err)
	}
}

// TestRetryPolicyValidate: nonsense policies are refused, naming the
// field.
func TestRetryPolicyValidate(t *testing.T) {
	for _, p := range []RetryPolicy{
		{MaxAttempts: 0, InitialBackoff: time.Millisecond, MaxBackoff: time.Millisecond},
		{MaxAttempts: 2, InitialBackoff: 0, MaxBackoff: time.Millisecond},
		{MaxAttempts: 2, InitialBackoff: time.Second, MaxBackoff: time.Millisecond},
	} {
		if err := p.validate(); err == nil {
			t.Errorf("%+v accepted", p)
		}
	}
	if err := DefaultRetryPolicy().validate(); err != nil {
		t.Fatal(err)
	}
	if err := NoRetry.validate(); err != nil {
		t.Fatal(err)
	}
	if _, err := Dial("127.0.0.1:1", Insecure(), WithRetry(RetryPolicy{})); err == nil {
		t.Fatal("Dial took a bad retry policy")
	}
}

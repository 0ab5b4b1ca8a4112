package lifecycle

import (
	"context"
	"errors"
	"testing"
	"time"
)

func TestGroupStopsEveryGoroutineAndKeepsFirstError(t *testing.T) {
	g := NewGroup()
	stopped := make(chan struct{}, 2)
	for i := 0; i < 2; i++ {
		g.Go(func(ctx context.Context) error {
			<-ctx.Done()
			stopped <- struct{}{}
			return nil
		})
	}
	boom := errors.New("boom")
	g.Go(func(context.Context) error { return boom })
	select {
	case <-g.Failed():
	case <-time.After(5 * time.Second):
		t.Fatal("group not marked failed")
	}
	if err := WaitAny(context.Background(), NewGroup(), g); !errors.Is(err, boom) {
		t.Fatalf("WaitAny = %v, want boom", err)
	}
	if err := g.Stop(); !errors.Is(err, boom) {
		t.Fatalf("Stop = %v, want boom", err)
	}
	if len(stopped) != 2 {
		t.Fatalf("%d goroutines stopped, want 2", len(stopped))
	}
}

func TestWaitAnyReturnsNilWhenContextEnds(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := WaitAny(ctx, NewGroup()); err != nil {
		t.Fatalf("WaitAny = %v, want nil", err)
	}
}

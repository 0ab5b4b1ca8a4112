package main

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"sync"

	"github.com/geomatch/geomatch/internal/serve"
	"github.com/geomatch/geomatch/matcher"
	"github.com/geomatch/geomatch/membership"
	matcherv1 "github.com/geomatch/geomatch/proto/geomatch/matcher/v1"
	"github.com/geomatch/geomatch/router"
)

// tier is a set of goroutines started together and stopped together: cancel
// its context, then wait. The first error of any of them is kept.
type tier struct {
	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup
	mu     sync.Mutex
	err    error
	failed chan struct{} // closed on the first error
	once   sync.Once
}

func newTier() *tier {
	ctx, cancel := context.WithCancel(context.Background())
	return &tier{ctx: ctx, cancel: cancel, failed: make(chan struct{})}
}

func (t *tier) goRun(f func(ctx context.Context) error) {
	t.wg.Add(1)
	go func() {
		defer t.wg.Done()
		if err := f(t.ctx); err != nil {
			t.mu.Lock()
			if t.err == nil {
				t.err = err
			}
			t.mu.Unlock()
			t.once.Do(func() { close(t.failed) })
		}
	}()
}

// stop cancels the tier and waits for it; it returns the first error.
func (t *tier) stop() error {
	t.cancel()
	t.wg.Wait()
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.err
}

// startMatcher starts a matcher node and its gRPC server on lis in t.
func startMatcher(t *tier, cfg matcher.Config, src membership.Source, lis net.Listener, log *slog.Logger) error {
	node, err := matcher.NewNode(cfg, src, log)
	if err != nil {
		return err
	}
	srv := serve.New("matcher "+cfg.NodeID, log)
	matcherv1.RegisterMatcherServiceServer(srv.GRPC, matcher.NewServer(node))
	t.goRun(node.Run)
	t.goRun(func(ctx context.Context) error { return srv.Serve(ctx, lis, drainTimeout) })
	return nil
}

// startRouter starts a router in runT and its gRPC server on lis in serveT:
// the server must stop (draining client streams) before the router's peers
// close.
func startRouter(serveT, runT *tier, src membership.Source, lis net.Listener, log *slog.Logger) (*router.Router, error) {
	rt, err := router.New(router.DefaultConfig(), src, log.With("role", "router"))
	if err != nil {
		return nil, fmt.Errorf("router: %w", err)
	}
	srv := serve.New("router", log)
	rt.Register(srv.GRPC)
	runT.goRun(rt.Run)
	serveT.goRun(func(ctx context.Context) error { return srv.Serve(ctx, lis, drainTimeout) })
	return rt, nil
}

// waitForStop blocks until ctx is done or a tier fails, and returns the
// failure, if any.
func waitForStop(ctx context.Context, tiers ...*tier) error {
	cases := make(chan error, len(tiers))
	for _, t := range tiers {
		go func() {
			select {
			case <-t.failed:
				t.mu.Lock()
				cases <- t.err
				t.mu.Unlock()
			case <-ctx.Done():
			}
		}()
	}
	select {
	case <-ctx.Done():
		return nil
	case err := <-cases:
		return err
	}
}

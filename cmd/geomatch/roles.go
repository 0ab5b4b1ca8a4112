package main

import (
	"context"
	"fmt"
	"log/slog"
	"net"

	"github.com/geomatch/geomatch/internal/lifecycle"
	"github.com/geomatch/geomatch/internal/serve"
	"github.com/geomatch/geomatch/matcher"
	"github.com/geomatch/geomatch/membership"
	matcherv1 "github.com/geomatch/geomatch/proto/geomatch/matcher/v1"
	"github.com/geomatch/geomatch/router"
)

// startMatcher starts a matcher node and its gRPC server on lis in g.
func startMatcher(g *lifecycle.Group, cfg matcher.Config, src membership.Source, lis net.Listener, log *slog.Logger) error {
	node, err := matcher.NewNode(cfg, src, log)
	if err != nil {
		return err
	}
	srv := serve.New("matcher "+cfg.NodeID, log)
	matcherv1.RegisterMatcherServiceServer(srv.GRPC, matcher.NewServer(node))
	g.Go(node.Run)
	g.Go(func(ctx context.Context) error { return srv.Serve(ctx, lis, drainTimeout) })
	return nil
}

// startRouter starts a router in runG and its gRPC server on lis in serveG:
// the server must stop (draining client streams) before the router's peers
// close.
func startRouter(serveG, runG *lifecycle.Group, src membership.Source, lis net.Listener, log *slog.Logger) error {
	rt, err := router.New(router.DefaultConfig(), src, log.With("role", "router"))
	if err != nil {
		return fmt.Errorf("router: %w", err)
	}
	srv := serve.New("router", log)
	rt.Register(srv.GRPC)
	runG.Go(rt.Run)
	serveG.Go(func(ctx context.Context) error { return srv.Serve(ctx, lis, drainTimeout) })
	return nil
}

package main

import (
	"context"
	"fmt"
	"log/slog"
	"net"

	"github.com/geomatch/geomatch/dispatch"
	"github.com/geomatch/geomatch/internal/lifecycle"
	"github.com/geomatch/geomatch/internal/serve"
	"github.com/geomatch/geomatch/matcher"
	"github.com/geomatch/geomatch/membership"
	matcherv1 "github.com/geomatch/geomatch/proto/geomatch/matcher/v1"
	"github.com/geomatch/geomatch/router"
	"github.com/geomatch/geomatch/store"
)

// startMatcher starts a matcher node and its gRPC server on lis in g. With a
// store, the node also coordinates the rides of its shards; it searches
// candidates across the cluster through a private router.
func startMatcher(g *lifecycle.Group, cfg matcher.Config, src membership.Source, st store.Store, dcfg dispatch.Config, lis net.Listener, log *slog.Logger) (*matcher.Node, error) {
	node, err := matcher.NewNode(cfg, src, log)
	if err != nil {
		return nil, err
	}
	srv := serve.New("matcher "+cfg.NodeID, log)
	matcherv1.RegisterMatcherServiceServer(srv.GRPC, matcher.NewServer(node))
	if st != nil {
		search, err := router.New(router.DefaultConfig(), src, log.With("role", "search"))
		if err != nil {
			return nil, fmt.Errorf("matcher search client: %w", err)
		}
		coord, err := dispatch.NewCoordinator(dcfg, st, search, node, log.With("node", cfg.NodeID))
		if err != nil {
			return nil, err
		}
		matcherv1.RegisterDispatchServiceServer(srv.GRPC, dispatch.NewServer(coord, node.CheckOwnerOf))
		g.Go(search.Run)
		g.Go(coord.Run)
	}
	g.Go(node.Run)
	g.Go(func(ctx context.Context) error { return srv.Serve(ctx, lis, drainTimeout) })
	return node, nil
}

// startRouter starts a router in runG and its gRPC server on lis in serveG:
// the server must stop (draining client streams) before the router's peers
// close. With a store, the router serves the ride API.
func startRouter(serveG, runG *lifecycle.Group, src membership.Source, st store.Store, lis net.Listener, log *slog.Logger) error {
	cfg := router.DefaultConfig()
	if st != nil {
		ops, err := dispatch.NewOps(st, dispatch.DefaultConfig(), log)
		if err != nil {
			return err
		}
		cfg.Rides = ops
	}
	rt, err := router.New(cfg, src, log.With("role", "router"))
	if err != nil {
		return fmt.Errorf("router: %w", err)
	}
	srv := serve.New("router", log)
	rt.Register(srv.GRPC)
	runG.Go(rt.Run)
	serveG.Go(func(ctx context.Context) error { return srv.Serve(ctx, lis, drainTimeout) })
	return nil
}

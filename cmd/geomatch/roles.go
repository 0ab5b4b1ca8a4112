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
// candidates across the cluster through a private router, which calls this
// node in process.
// obs (may be nil) records its metrics; its gRPC health says NOT_SERVING
// until the node has warmed its shards. With sec, the node serves mutual
// TLS and presents its certificate to the matchers it dials.
func startMatcher(g *lifecycle.Group, cfg matcher.Config, src membership.Source, st store.Store, dcfg dispatch.Config, lis net.Listener, log *slog.Logger, obs *observer, sec nodeTLS) (*matcher.Node, error) {
	cfg.DialOptions = append(cfg.DialOptions, sec.dial...)
	node, err := matcher.NewNode(cfg, src, log)
	if err != nil {
		return nil, err
	}
	opts, err := obs.serverOptions("matcher " + cfg.NodeID)
	if err != nil {
		return nil, err
	}
	srv := serve.New("matcher "+cfg.NodeID, log, append(opts, sec.server...)...)
	var coord *dispatch.Coordinator
	matcherv1.RegisterMatcherServiceServer(srv.GRPC, matcher.NewServer(node))
	if st != nil {
		scfg := router.DefaultConfig()
		scfg.DialOptions = sec.dial
		// Searches of this node's own shards skip the loopback hop.
		scfg.InProcess = map[string]*matcher.Local{cfg.NodeID: matcher.NewLocal(node)}
		search, err := router.New(scfg, src, log.With("role", "search"))
		if err != nil {
			return nil, fmt.Errorf("matcher search client: %w", err)
		}
		if coord, err = dispatch.NewCoordinator(dcfg, st, search, node, log.With("node", cfg.NodeID)); err != nil {
			return nil, err
		}
		matcherv1.RegisterDispatchServiceServer(srv.GRPC, dispatch.NewServer(coord, node.CheckOwnerOf))
		g.Go(search.Run)
		g.Go(coord.Run)
	}
	if err := obs.addMatcher(node, coord); err != nil {
		return nil, err
	}
	g.Go(node.Run)
	g.Go(func(ctx context.Context) error { return srv.Serve(ctx, lis, drainTimeout) })
	g.Go(func(ctx context.Context) error { return reportReadiness(ctx, srv, node.Ready) })
	return node, nil
}

// startRouter starts a router in runG and its gRPC server on lis in serveG:
// the server must stop (draining client streams) before the router's peers
// close. With a store, the router serves the ride API. sec says how it
// serves (TLS, tokens, per-client limits) and dials matchers.
func startRouter(serveG, runG *lifecycle.Group, src membership.Source, st store.Store, lis net.Listener, log *slog.Logger, obs *observer, sec routerSecurity) error {
	cfg := router.DefaultConfig()
	cfg.DialOptions, cfg.Auth, cfg.Limits = sec.tls.dial, sec.keys, sec.limits
	cfg.RingAdmin, _ = src.(router.RingAdmin) // Consul: admin changes go through its settings; a static ring refuses them
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
	if err := obs.addRouter(rt); err != nil {
		return err
	}
	opts, err := obs.serverOptions("router")
	if err != nil {
		return err
	}
	opts = append(append(opts, sec.tls.server...), rt.ServerOptions()...)
	srv := serve.New("router", log, opts...)
	rt.Register(srv.GRPC)
	runG.Go(rt.Run)
	serveG.Go(func(ctx context.Context) error { return srv.Serve(ctx, lis, drainTimeout) })
	return nil
}

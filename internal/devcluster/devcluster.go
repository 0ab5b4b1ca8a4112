// Package devcluster starts a whole geomatch cluster inside one process: N
// matcher nodes and a router, each a real gRPC server on a loopback port,
// sharing an in-process membership. It is what `geomatch dev` runs and what
// the integration tests start, so both exercise the same wiring as separate
// processes would, minus the process boundary. The router searches the
// matchers and sends them updates by function call (matcher.Local) unless
// Config.InternalGRPC asks for loopback gRPC; every other internal call
// (rides, stats, handoff) goes over gRPC.
package devcluster

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"time"

	"google.golang.org/grpc"

	"github.com/geomatch/geomatch/dispatch"
	"github.com/geomatch/geomatch/internal/lifecycle"
	"github.com/geomatch/geomatch/internal/serve"
	"github.com/geomatch/geomatch/internal/tlsconfig"
	"github.com/geomatch/geomatch/matcher"
	"github.com/geomatch/geomatch/membership"
	matcherv1 "github.com/geomatch/geomatch/proto/geomatch/matcher/v1"
	"github.com/geomatch/geomatch/router"
	"github.com/geomatch/geomatch/shardmap"
	"github.com/geomatch/geomatch/store"
)

// Config describes the cluster to start.
type Config struct {
	// RouterAddr is where the router listens; default 127.0.0.1:0 (a free
	// port).
	RouterAddr string
	// MatcherHost is the loopback address matchers listen on (free ports);
	// default 127.0.0.1.
	MatcherHost string
	// Matchers is the number of matcher nodes; default 3.
	Matchers int
	// Doc sets the ring's placement settings (shard resolution, split depth,
	// vnodes, splits); members and epoch are filled in. Zero value: the
	// shardmap defaults.
	Doc shardmap.Doc
	// Matcher adjusts each node's configuration (TTL, bounds); may be nil.
	Matcher func(*matcher.Config)
	// Router is the router configuration; zero fields take defaults.
	Router router.Config
	// Store is the durable state shared by the cluster; default an
	// in-memory store.
	Store store.Store
	// Dispatch configures ride matching on every matcher.
	Dispatch dispatch.Config
	// RouterMembership, when set, wraps the shared membership for the router
	// only (tests use it to give the router a lagging view of the ring).
	RouterMembership func(*membership.Local) membership.Source
	// ServerOptions, when set, gives extra options (interceptors) for the
	// gRPC server named name ("router", "matcher m1", ...).
	ServerOptions func(name string) ([]grpc.ServerOption, error)
	// TLS, when set, serves every server with TLS: the router's public API
	// with Files' certificate, and the matchers' internal API with mutual
	// TLS (client certificates signed by Files.CA required), which the
	// router and the matchers present when they dial matchers. Nil:
	// plaintext loopback.
	TLS *tlsconfig.Files
	// InternalGRPC makes the router call the matchers over loopback gRPC
	// for searches and updates too, as separate processes do, instead of
	// in process.
	InternalGRPC bool
	// Drain bounds graceful shutdown of each server; default 5 s.
	Drain time.Duration
	// Log receives the cluster's logs; default discards them.
	Log *slog.Logger
}

// Cluster is a running in-process cluster.
type Cluster struct {
	// RouterAddr is the address of the public API.
	RouterAddr string
	// Members are the matcher nodes with their addresses.
	Members []shardmap.Member
	// Membership is the shared in-process ring; Update it to move shards.
	Membership *membership.Local
	// Router is the running router.
	Router *router.Router
	// Nodes are the running matcher nodes, in Members order.
	Nodes []*matcher.Node
	// Coordinators dispatch the rides of each node, in Members order.
	Coordinators []*dispatch.Coordinator
	// Store is the cluster's durable state.
	Store store.Store

	// Stop order: router server (drains clients), router peers, matchers.
	routerServe, routerRun, matchers *lifecycle.Group
}

// Start starts the matchers, then the router, and returns when all of them
// listen. Stop it with Stop.
func Start(cfg Config) (*Cluster, error) {
	if cfg.Matchers == 0 {
		cfg.Matchers = 3
	}
	if cfg.Matchers < 1 || cfg.Matchers > 64 {
		return nil, fmt.Errorf("dev cluster: %d matchers, want 1..64", cfg.Matchers)
	}
	if cfg.RouterAddr == "" {
		cfg.RouterAddr = "127.0.0.1:0"
	}
	if cfg.MatcherHost == "" {
		cfg.MatcherHost = "127.0.0.1"
	}
	if cfg.Drain <= 0 {
		cfg.Drain = 5 * time.Second
	}
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	var lis []net.Listener
	closeAll := func() {
		for _, l := range lis {
			l.Close()
		}
	}
	c := &Cluster{routerServe: lifecycle.NewGroup(), routerRun: lifecycle.NewGroup(), matchers: lifecycle.NewGroup()}
	for i := 1; i <= cfg.Matchers; i++ {
		l, err := net.Listen("tcp", net.JoinHostPort(cfg.MatcherHost, "0"))
		if err != nil {
			closeAll()
			return nil, fmt.Errorf("dev cluster: matcher %d listen: %w", i, err)
		}
		lis = append(lis, l)
		c.Members = append(c.Members, shardmap.Member{ID: fmt.Sprintf("m%d", i), Addr: l.Addr().String(), Weight: 1})
	}
	rl, err := net.Listen("tcp", cfg.RouterAddr)
	if err != nil {
		closeAll()
		return nil, fmt.Errorf("dev cluster: router listen: %w", err)
	}
	lis = append(lis, rl)
	c.RouterAddr = rl.Addr().String()

	doc := shardmap.DefaultDoc(c.Members)
	if cfg.Doc.ShardRes != 0 {
		doc.ShardRes = cfg.Doc.ShardRes
		doc.MaxSplitDepth = cfg.Doc.MaxSplitDepth
	}
	if cfg.Doc.VNodes != 0 {
		doc.VNodes = cfg.Doc.VNodes
	}
	doc.Splits, doc.Pins, doc.Drained = cfg.Doc.Splits, cfg.Doc.Pins, cfg.Doc.Drained
	if c.Membership, err = membership.NewLocal(doc); err != nil {
		closeAll()
		return nil, fmt.Errorf("dev cluster: %w", err)
	}
	c.Store = cfg.Store
	if c.Store == nil {
		c.Store = store.NewMemory()
	}
	ops, err := dispatch.NewOps(c.Store, cfg.Dispatch, cfg.Log)
	if err != nil {
		closeAll()
		return nil, err
	}
	var routerSrc membership.Source = c.Membership
	if cfg.RouterMembership != nil {
		routerSrc = cfg.RouterMembership(c.Membership)
	}
	sec, err := cfg.security()
	if err != nil {
		closeAll()
		return nil, err
	}
	c.Nodes = make([]*matcher.Node, len(c.Members))
	for i, m := range c.Members {
		mc := matcher.DefaultConfig(m.ID)
		mc.Store = c.Store
		mc.DialOptions = append(mc.DialOptions, sec.dial...)
		if cfg.Matcher != nil {
			cfg.Matcher(&mc)
		}
		if c.Nodes[i], err = matcher.NewNode(mc, c.Membership, cfg.Log); err != nil {
			closeAll()
			return nil, err
		}
	}
	rcfg := cfg.Router
	rcfg.Rides = ops
	if rcfg.RingAdmin == nil {
		rcfg.RingAdmin = c.Membership // admin changes of the in-process ring
	}
	rcfg.DialOptions = append(rcfg.DialOptions, sec.dial...)
	if !cfg.InternalGRPC {
		rcfg.InProcess = make(map[string]*matcher.Local, len(c.Nodes))
		for i, m := range c.Members {
			rcfg.InProcess[m.ID] = matcher.NewLocal(c.Nodes[i])
		}
	}
	if c.Router, err = router.New(rcfg, routerSrc, cfg.Log.With("role", "router")); err != nil {
		closeAll()
		return nil, err
	}
	for i, m := range c.Members {
		node := c.Nodes[i]
		// Each coordinator searches the whole cluster through the router.
		coord, err := dispatch.NewCoordinator(cfg.Dispatch, c.Store, c.Router, node, cfg.Log.With("node", m.ID))
		if err != nil {
			closeAll()
			c.matchers.Stop()
			return nil, err
		}
		c.Coordinators = append(c.Coordinators, coord)
		opts, err := cfg.serverOptions("matcher " + m.ID)
		if err != nil {
			closeAll()
			c.matchers.Stop()
			return nil, err
		}
		srv := serve.New("matcher "+m.ID, cfg.Log, append(opts, sec.internal...)...)
		matcherv1.RegisterMatcherServiceServer(srv.GRPC, matcher.NewServer(node))
		matcherv1.RegisterDispatchServiceServer(srv.GRPC, dispatch.NewServer(coord, node.CheckOwnerOf))
		c.matchers.Go(node.Run)
		c.matchers.Go(coord.Run)
		c.matchers.Go(func(ctx context.Context) error { return srv.Serve(ctx, lis[i], cfg.Drain) })
	}
	opts, err := cfg.serverOptions("router")
	if err != nil {
		closeAll()
		c.matchers.Stop()
		return nil, err
	}
	opts = append(opts, sec.public...)
	srv := serve.New("router", cfg.Log, append(opts, c.Router.ServerOptions()...)...)
	c.Router.Register(srv.GRPC)
	c.routerRun.Go(c.Router.Run)
	c.routerServe.Go(func(ctx context.Context) error { return srv.Serve(ctx, rl, cfg.Drain) })
	return c, nil
}

// security is what Config.TLS makes of the servers and dials.
type security struct {
	public, internal []grpc.ServerOption
	dial             []grpc.DialOption
}

func (cfg *Config) security() (security, error) {
	if cfg.TLS == nil {
		return security{}, nil
	}
	public, err := tlsconfig.Server(*cfg.TLS, tlsconfig.VerifyIfGiven)
	if err != nil {
		return security{}, fmt.Errorf("dev cluster: %w", err)
	}
	internal, err := tlsconfig.Server(*cfg.TLS, tlsconfig.RequireClientCert)
	if err != nil {
		return security{}, fmt.Errorf("dev cluster: %w", err)
	}
	client, err := tlsconfig.Client(*cfg.TLS)
	if err != nil {
		return security{}, fmt.Errorf("dev cluster: %w", err)
	}
	return security{public: serve.TLS(public), internal: serve.TLS(internal), dial: []grpc.DialOption{serve.DialCreds(client)}}, nil
}

func (cfg *Config) serverOptions(name string) ([]grpc.ServerOption, error) {
	if cfg.ServerOptions == nil {
		return nil, nil
	}
	return cfg.ServerOptions(name)
}

// Wait blocks until ctx is done or a server of the cluster fails on its
// own, and returns that failure.
func (c *Cluster) Wait(ctx context.Context) error {
	return lifecycle.WaitAny(ctx, c.routerServe, c.routerRun, c.matchers)
}

// Stop stops the cluster from the edge inwards (client streams drain first,
// then the router's streams to the matchers, then the matchers) and returns
// the first error any server reported.
func (c *Cluster) Stop() error {
	return errors.Join(c.routerServe.Stop(), c.routerRun.Stop(), c.matchers.Stop())
}

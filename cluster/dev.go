package cluster

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"time"

	"google.golang.org/grpc"

	"github.com/geomatch/geomatch/dispatch"
	"github.com/geomatch/geomatch/events"
	"github.com/geomatch/geomatch/events/hook"
	"github.com/geomatch/geomatch/fleet"
	"github.com/geomatch/geomatch/internal/identity"
	"github.com/geomatch/geomatch/internal/lifecycle"
	"github.com/geomatch/geomatch/internal/serve"
	"github.com/geomatch/geomatch/internal/tlsconfig"
	"github.com/geomatch/geomatch/matcher"
	"github.com/geomatch/geomatch/membership"
	"github.com/geomatch/geomatch/router"
	"github.com/geomatch/geomatch/shardmap"
	"github.com/geomatch/geomatch/shardmap/autosplit"
	"github.com/geomatch/geomatch/store"
)

// DevConfig describes the all-in-one cluster to start.
type DevConfig struct {
	// RouterAddr is where the router listens; default 127.0.0.1:0 (a free
	// port).
	RouterAddr string
	// MatcherHost is the loopback address matchers listen on (free ports);
	// default 127.0.0.1.
	MatcherHost string
	// Matchers is the number of matcher nodes; default 3, at most 64.
	Matchers int
	// Doc sets the ring's placement settings (shard resolution, split depth,
	// vnodes, splits, pins, drains); members and epoch are filled in. Zero
	// value: the shardmap defaults.
	Doc shardmap.Doc
	// Matcher adjusts each node's configuration (TTL, bounds); may be nil.
	Matcher func(*matcher.Config)
	// Router is the router configuration; zero fields take defaults.
	Router router.Config
	// Fleet configures the fleet clients of the router and of the
	// matchers' coordinators; zero fields take defaults.
	Fleet fleet.Config
	// Store is the durable state shared by the cluster; default an
	// in-memory store that keeps no driver positions (the matchers hand
	// shards to each other directly; see store.Memory.WithoutPositions).
	Store store.Store
	// Events is the cluster's event log; default an in-memory log (with
	// the default Store) turning fences and events on.
	Events events.Log
	// Hooks configures the router's hook delivery.
	Hooks hook.Config
	// Dispatch configures ride matching on every matcher.
	Dispatch dispatch.Config
	// RouterMembership, when set, wraps the shared membership for the router
	// only (tests use it to give the router a lagging view of the ring).
	RouterMembership func(*membership.Local) membership.Source
	// Metrics, when set, collects every server's metrics.
	Metrics *Observer
	// TLS, when set, serves every server with TLS: the router's public API
	// with Files' certificate, and the matchers' internal API with mutual
	// TLS (client certificates signed by Files.CA required), which the
	// router and the matchers present when they dial matchers. Nil:
	// plaintext loopback. With InternalCA set, TLS is the public API's
	// only.
	TLS *tlsconfig.Files
	// InternalCA, when set, secures the internal API by identity: every
	// matcher serves mutual TLS with a certificate of its own that this CA
	// issues at start (spiffe://<cluster>/matcher/<id>), the router dials
	// with one of its own (spiffe://<cluster>/router/router), every dial
	// checks that the server is a matcher of the cluster, and matchers
	// admit callers by role (MatcherPolicy). Nothing is written to disk.
	InternalCA *tlsconfig.CA
	// InternalGRPC makes the router and the coordinators call the matchers
	// over loopback gRPC for searches and updates too, as separate
	// processes do, instead of in process.
	InternalGRPC bool
	// Drain bounds graceful shutdown of each server; default DefaultDrain.
	Drain time.Duration
	// Autosplit, when set, runs the autosplit controller on the in-process
	// ring (membership.Autosplit): hot shards are split and merged back
	// automatically. Nil: off.
	Autosplit *autosplit.Config
	// Log receives the cluster's logs; default discards them.
	Log *slog.Logger
}

// Dev is a running all-in-one cluster.
type Dev struct {
	// RouterAddr is the address of the public API.
	RouterAddr string
	// Members are the matcher nodes with their addresses.
	Members []shardmap.Member
	// Membership is the shared in-process ring; Update it to move shards.
	Membership *membership.Local
	// Router is the running router, and Fleet its fleet client.
	Router *router.Router
	Fleet  *fleet.Client
	// Matchers are the running matchers, in Members order; Nodes and
	// Coordinators are their nodes and ride coordinators.
	Matchers     []*Matcher
	Nodes        []*matcher.Node
	Coordinators []*dispatch.Coordinator
	// Autosplit is the autosplit controller; nil unless
	// DevConfig.Autosplit is set.
	Autosplit *membership.Autosplit
	// Store is the cluster's durable state.
	Store store.Store
	// Events is the cluster's event log.
	Events events.Log

	// Stop order: router server (drains clients), router's fleet client,
	// matchers.
	routerServe, routerRun, matchers *lifecycle.Group
}

// StartDev starts the matchers, then the router, each through the same
// StartMatcher and StartRouter a separate process uses, and returns when
// all of them listen. Stop it with Stop.
func StartDev(cfg DevConfig) (*Dev, error) {
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
	cfg.Log = logOrDiscard(cfg.Log)
	var lis []net.Listener
	closeAll := func() {
		for _, l := range lis {
			l.Close()
		}
	}
	c := &Dev{routerServe: lifecycle.NewGroup(), routerRun: lifecycle.NewGroup(), matchers: lifecycle.NewGroup()}
	fail := func(err error) (*Dev, error) {
		closeAll()
		return nil, errors.Join(err, c.Stop())
	}
	for i := 1; i <= cfg.Matchers; i++ {
		l, err := net.Listen("tcp", net.JoinHostPort(cfg.MatcherHost, "0"))
		if err != nil {
			return fail(fmt.Errorf("dev cluster: matcher %d listen: %w", i, err))
		}
		lis = append(lis, l)
		c.Members = append(c.Members, shardmap.Member{ID: fmt.Sprintf("m%d", i), Addr: l.Addr().String(), Weight: 1})
	}
	rl, err := net.Listen("tcp", cfg.RouterAddr)
	if err != nil {
		return fail(fmt.Errorf("dev cluster: router listen: %w", err))
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
		return fail(fmt.Errorf("dev cluster: %w", err))
	}
	c.Store, c.Events = cfg.Store, cfg.Events
	if c.Store == nil {
		// Its matchers hand shards to each other directly and stop
		// together: no later owner would read positions written behind.
		c.Store = store.NewMemory().WithoutPositions()
		if c.Events == nil {
			if c.Events, err = events.NewMemory(events.MemoryConfig{}); err != nil {
				return fail(err)
			}
		}
	}
	sec, err := cfg.security()
	if err != nil {
		return fail(err)
	}
	// Every node first, so that each knows the others' in-process services.
	mcfgs := make([]MatcherConfig, len(c.Members))
	c.Nodes = make([]*matcher.Node, len(c.Members))
	inProcess := map[string]fleet.LocalNode{}
	for i, m := range c.Members {
		nc := matcher.DefaultConfig(m.ID)
		if cfg.Matcher != nil {
			cfg.Matcher(&nc)
		}
		msec, err := sec.matcher(m.ID)
		if err != nil {
			return fail(err)
		}
		mcfgs[i] = MatcherConfig{
			Node: nc, Membership: c.Membership, Store: c.Store, Events: c.Events, Dispatch: cfg.Dispatch, Fleet: cfg.Fleet,
			ServerOptions: msec.internal, DialOptions: msec.dial, TrustDomain: msec.trustDomain, Drain: cfg.Drain, Metrics: cfg.Metrics, Log: cfg.Log,
		}
		if c.Nodes[i], err = NewNode(mcfgs[i]); err != nil {
			return fail(err)
		}
		if !cfg.InternalGRPC {
			inProcess[m.ID] = matcher.NewLocal(c.Nodes[i])
		}
	}
	for i := range c.Members {
		mcfgs[i].Fleet.InProcess = inProcess // empty with InternalGRPC
		m, err := StartMatcher(c.matchers, mcfgs[i], c.Nodes[i], lis[i])
		if err != nil {
			return fail(err)
		}
		c.Matchers = append(c.Matchers, m)
		c.Coordinators = append(c.Coordinators, m.Coordinator)
	}
	var routerSrc membership.Source = c.Membership
	if cfg.RouterMembership != nil {
		routerSrc = cfg.RouterMembership(c.Membership)
	}
	fcfg := cfg.Fleet
	fcfg.InProcess = inProcess
	rcfg := cfg.Router
	if rcfg.RingAdmin == nil {
		rcfg.RingAdmin = c.Membership // admin changes of the in-process ring
	}
	r, err := StartRouter(c.routerServe, c.routerRun, RouterConfig{
		Router: rcfg, Fleet: fcfg, Membership: routerSrc, Store: c.Store, Events: c.Events, Hooks: cfg.Hooks, Dispatch: cfg.Dispatch,
		ServerOptions: sec.public, DialOptions: sec.dial, Drain: cfg.Drain, Metrics: cfg.Metrics, Log: cfg.Log,
	}, rl)
	if err != nil {
		return fail(err)
	}
	c.Router, c.Fleet = r.Router, r.Fleet
	if cfg.Autosplit != nil {
		if c.Autosplit, err = newDevAutosplit(*cfg.Autosplit, c.Membership, r.Fleet, cfg.Metrics, cfg.Log); err != nil {
			return fail(fmt.Errorf("dev cluster: %w", err))
		}
		c.routerRun.Go(c.Autosplit.Run)
	}
	return c, nil
}

// security is what DevConfig.TLS and InternalCA make of the servers and
// dials: the router's (public, dial) and, through matcher, each matcher's.
type security struct {
	public, internal []grpc.ServerOption
	dial             []grpc.DialOption
	trustDomain      string
	ca               *tlsconfig.CA
}

// devNodeValidity is how long the throwaway identities of StartDev last.
const devNodeValidity = 30 * 24 * time.Hour

// matcher returns the server options, dials and trust domain of matcher id.
func (s security) matcher(id string) (security, error) {
	if s.ca == nil {
		return s, nil
	}
	n, err := s.ca.Node(identity.RoleMatcher, id, tlsconfig.DevHosts, devNodeValidity)
	if err != nil {
		return security{}, fmt.Errorf("dev cluster: matcher %s identity: %w", id, err)
	}
	return security{
		internal:    serve.TLS(n.ServerConfig()),
		dial:        []grpc.DialOption{serve.DialCreds(n.ClientConfig(identity.RoleMatcher))},
		trustDomain: s.ca.Cluster,
	}, nil
}

func (cfg *DevConfig) security() (security, error) {
	if cfg.InternalCA != nil {
		var sec security
		if cfg.TLS != nil {
			public, err := tlsconfig.Server(*cfg.TLS, tlsconfig.VerifyIfGiven)
			if err != nil {
				return security{}, fmt.Errorf("dev cluster: %w", err)
			}
			sec.public = serve.TLS(public)
		}
		r, err := cfg.InternalCA.Node(identity.RoleRouter, "router", tlsconfig.DevHosts, devNodeValidity)
		if err != nil {
			return security{}, fmt.Errorf("dev cluster: router identity: %w", err)
		}
		sec.dial = []grpc.DialOption{serve.DialCreds(r.ClientConfig(identity.RoleMatcher))}
		sec.ca, sec.trustDomain = cfg.InternalCA, cfg.InternalCA.Cluster
		return sec, nil
	}
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

// Wait blocks until ctx is done or a server of the cluster fails on its
// own, and returns that failure.
func (c *Dev) Wait(ctx context.Context) error {
	return lifecycle.WaitAny(ctx, c.routerServe, c.routerRun, c.matchers)
}

// Stop stops the cluster from the edge inwards (client streams drain first,
// then the router's streams to the matchers, then the matchers) and returns
// the first error any server reported.
func (c *Dev) Stop() error {
	return errors.Join(c.routerServe.Stop(), c.routerRun.Stop(), c.matchers.Stop())
}

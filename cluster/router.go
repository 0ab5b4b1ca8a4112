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
	"github.com/geomatch/geomatch/internal/lifecycle"
	"github.com/geomatch/geomatch/internal/serve"
	"github.com/geomatch/geomatch/membership"
	"github.com/geomatch/geomatch/router"
	"github.com/geomatch/geomatch/store"
	"github.com/geomatch/geomatch/ui"
)

// RouterConfig describes one router to start.
type RouterConfig struct {
	// Router configures the public front door (auth, limits, timeouts).
	// Its Rides is set from Store.
	Router router.Config
	// Fleet configures the client of the matcher fleet (search timeouts,
	// batching, in-process matchers). Its DialOptions get DialOptions
	// appended.
	Fleet fleet.Config
	// Membership is where the router learns the ring; required.
	Membership membership.Source
	// Store is the durable state; nil turns the ride API off.
	Store store.Store
	// Events is the event log subscriptions and hooks read; with Store
	// set it turns the FenceService, the EventService and hook delivery
	// on.
	Events events.Log
	// Hooks configures hook delivery.
	Hooks hook.Config
	// KeyPrefix starts the Redis keys of hook definitions and progress
	// (with a Redis store); default "gm:".
	KeyPrefix string
	// Dispatch configures the trip operations the router runs itself
	// (GetTrip, CancelTrip, offer answers).
	Dispatch dispatch.Config
	// ServerOptions are the gRPC server's options (TLS); the router's own
	// (authentication, limits) are added.
	ServerOptions []grpc.ServerOption
	// DialOptions are used to reach the matchers (TLS with a client
	// certificate for mutual TLS).
	DialOptions []grpc.DialOption
	// Drain bounds the graceful stop of the server (client streams);
	// default DefaultDrain.
	Drain time.Duration
	// Metrics, when set, collects the router's metrics; the router's
	// live shard map is then served at /ui/ on its listener.
	Metrics *Observer
	// UI tunes the shard map; zero fields take ui.DefaultConfig.
	UI ui.Config
	// Log receives the router's logs; default discards them.
	Log *slog.Logger
}

// Router is a started router.
type Router struct {
	// Router is the public front door.
	Router *router.Router
	// Fleet is the router's client of the matcher fleet.
	Fleet *fleet.Client
	// Addr is where the public API listens.
	Addr string
}

// Wiring describes how the router is put together; it is logged at start
// as "router started".
func (r *Router) Wiring() map[string]string {
	return map[string]string{"via": "cluster.StartRouter", "services": "DriverService,RiderService,AdminService,FenceService,EventService", "matchers": "fleet client"}
}

// StartRouter starts the router of cfg, serving the public API on lis:
// its gRPC server in serveG and its fleet client and event delivery in
// runG. Stop serveG first: the server drains client streams while the
// fleet client still reaches the matchers.
func StartRouter(serveG, runG *lifecycle.Group, cfg RouterConfig, lis net.Listener) (*Router, error) {
	if cfg.Membership == nil {
		return nil, errors.New("cluster: router: a membership source is required")
	}
	log := logOrDiscard(cfg.Log)
	rcfg := cfg.Router
	if rcfg.RingAdmin == nil {
		// Consul: admin changes go through its settings; a static ring
		// refuses them.
		rcfg.RingAdmin, _ = cfg.Membership.(router.RingAdmin)
	}
	if cfg.Store != nil {
		dcfg := cfg.Dispatch
		if dcfg.Events == nil {
			dcfg.Events = cfg.Events
		}
		ops, err := dispatch.NewOps(cfg.Store, dcfg, log)
		if err != nil {
			return nil, err
		}
		rcfg.Rides = ops
	}
	var hooks *hook.Manager
	if cfg.Store != nil && cfg.Events != nil {
		var err error
		if hooks, err = hook.NewManager(cfg.Hooks, cfg.Events, hookStore(cfg.Store, cfg.KeyPrefix), log.With("role", "hooks"), cfg.Metrics.registerer()); err != nil {
			return nil, fmt.Errorf("router: hooks: %w", err)
		}
		rcfg.Fences, rcfg.Events, rcfg.Hooks = cfg.Store, cfg.Events, hooksService{hooks}
	}
	fcfg := cfg.Fleet
	fcfg.DialOptions = append(append([]grpc.DialOption(nil), fcfg.DialOptions...), cfg.DialOptions...)
	fc, err := fleet.New(fcfg, cfg.Membership, log.With("role", "router"))
	if err != nil {
		return nil, fmt.Errorf("router: %w", err)
	}
	rt, err := router.New(rcfg, fc, log.With("role", "router"))
	if err != nil {
		return nil, fmt.Errorf("router: %w", err)
	}
	r := &Router{Router: rt, Fleet: fc, Addr: lis.Addr().String()}
	if err := cfg.Metrics.AddRouter(r); err != nil {
		return nil, err
	}
	opts, err := cfg.Metrics.ServerOptions("router")
	if err != nil {
		return nil, err
	}
	opts = append(append(opts, cfg.ServerOptions...), rt.ServerOptions()...)
	srv := serve.New("router", log, opts...)
	rt.Register(srv.GRPC)
	if cfg.Metrics != nil {
		col, err := ui.NewCollector(rt, cfg.UI, log.With("role", "ui"))
		if err != nil {
			return nil, fmt.Errorf("router: shard map: %w", err)
		}
		cfg.Metrics.Handle(ui.Prefix, ui.NewHandler(col, rt, log.With("role", "ui")))
		runG.Go(col.Run)
	}
	log.Info("router started", WiringAttrs(r.Wiring())...)
	runG.Go(fc.Run)
	runG.Go(rt.Run)
	if hooks != nil {
		runG.Go(hooks.Run)
	}
	drain := cmpOr(cfg.Drain, DefaultDrain)
	serveG.Go(func(ctx context.Context) error { return srv.Serve(ctx, lis, drain) })
	return r, nil
}

package main

import (
	"github.com/geomatch/geomatch/events/hook"

	"github.com/geomatch/geomatch/events"

	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"time"

	"github.com/hashicorp/consul/api"

	"github.com/geomatch/geomatch/cluster"
	"github.com/geomatch/geomatch/dispatch"
	"github.com/geomatch/geomatch/internal/identity"
	"github.com/geomatch/geomatch/internal/lifecycle"
	"github.com/geomatch/geomatch/matcher"
	"github.com/geomatch/geomatch/membership"
	"github.com/geomatch/geomatch/router"
	"github.com/geomatch/geomatch/shardmap"
	"github.com/geomatch/geomatch/store"
)

// clusterFlags are the flags every process of a cluster shares: where the
// membership is (Consul, or a static peer list), the ring settings, the
// store and logging.
type clusterFlags struct {
	peers  string
	consul consulFlags
	log    logFlags
	ring   ringFlags
	store  storeFlags
	tls    tlsFlags
}

func (c *clusterFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&c.peers, "peers", "", "static cluster: matchers as id=host:port,id=host:port (instead of --consul)")
	c.consul.register(fs)
	c.log.register(fs)
	c.ring.register(fs)
	c.store.register(fs)
	c.tls.register(fs)
}

// setupResult is what clusterFlags set up.
type setupResult struct {
	log     *slog.Logger
	members []shardmap.Member // static cluster only
	static  *membership.Local // static cluster only
	consul  *api.Client       // Consul cluster only
	st      store.Store       // nil without --redis
	events  events.Log        // on the store's Redis; nil without --redis
}

// setup builds the logger, the static membership or the Consul client, and
// the store. The caller closes c.st when it is not nil.
func (c *clusterFlags) setup(ctx context.Context, stderr io.Writer) (setupResult, error) {
	var out setupResult
	var err error
	if out.log, err = c.log.logger(stderr); err != nil {
		return out, err
	}
	switch {
	case c.consul.addr != "" && c.peers != "":
		return out, errors.New("--consul and --peers: give one (Consul membership, or a static peer list)")
	case c.consul.addr != "":
		if out.consul, err = membership.NewConsulClient(c.consul.config()); err != nil {
			return out, err
		}
	default:
		if out.members, err = parsePeers(c.peers); err != nil {
			return out, fmt.Errorf("%w (or give --consul)", err)
		}
		if out.static, err = membership.NewStatic(c.ring.doc(out.members)); err != nil {
			return out, err
		}
	}
	if out.st, err = c.store.open(ctx); err != nil || out.st == nil {
		return out, err
	}
	if out.events, err = cluster.EventLogFor(out.st, c.store.prefix); err != nil {
		return out, errors.Join(fmt.Errorf("event log: %w", err), out.st.Close())
	}
	return out, nil
}

func runRouter(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("router", "Runs the stateless public gRPC front door. With --consul it follows the ring the\nmatchers keep in Consul; with --peers it routes to a static list of matchers\n(every router and matcher of a static cluster must be given the same list and\nring flags, so they agree on who owns which shard).", stderr)
	listen := fs.String("listen", "127.0.0.1:50051", "address of the public API")
	respListen := fs.String("resp-listen", "", "also serve the RESP front door (a subset of Tile38's and Redis GEO's commands, for redis-cli, go-redis and Tile38 clients) on this address; empty: off")
	var cf clusterFlags
	var mf metricsFlags
	var af authFlags
	var lf limitFlags
	cf.register(fs)
	mf.register(fs)
	af.register(fs, "on")
	lf.register(fs)
	publicTLS := fs.String("public-tls", "on", "on: serve the public API with TLS with --tls-cert (when given); off: serve it in plaintext, --tls-cert securing the internal hop only (behind a TLS-terminating proxy, or on loopback)")
	var trf traceFlags
	trf.register(fs)
	hcfg := hook.DefaultConfig()
	fs.DurationVar(&hcfg.DeadLetterAfter, "hook-dead-letter-after", hcfg.DeadLetterAfter, "how long a hook's sink may keep failing before its events go to the hook's dead-letter stream")
	fs.DurationVar(&hcfg.LeaseTTL, "hook-lease-ttl", hcfg.LeaseTTL, "how long a router's claim on delivering a hook lasts unrenewed (another router takes a dead one's hooks over after it)")
	if err := parse(fs, args); err != nil {
		return err
	}
	var sec routerSecurity
	var err error
	if sec.keys, err = af.keyring(); err != nil {
		return err
	}
	sec.limits = lf.limits(sec.keys != nil)
	if *publicTLS != "on" && *publicTLS != "off" {
		return fmt.Errorf("--public-tls: %q is neither on nor off", *publicTLS)
	}
	if sec.keys != nil && cf.tls.insecureInternal {
		return errInsecureWithAuth
	}
	if sec.tls, err = cf.tls.node(identity.RoleRouter, *publicTLS == "on"); err != nil {
		return err
	}
	stopTracing, err := trf.start(ctx, "geomatch-router", &cf.log, stderr) // before the store and servers it traces
	if err != nil {
		return err
	}
	defer stopTracing()
	c, err := cf.setup(ctx, stderr)
	if err != nil {
		return err
	}
	if c.st != nil {
		defer c.st.Close()
	} else {
		c.log.Warn("no --redis: the ride API (RequestRide, GetTrip, CancelTrip, offers) is off")
	}
	if sec.keys == nil {
		warnAuthOff(stdout, c.log, "geomatch router")
	} else if sec.tls.server == nil {
		c.log.Warn("tokens travel in plaintext: give --tls-cert, --tls-key and --tls-ca, and --public-tls=on")
	}
	runG, serveG := lifecycle.NewGroup(), lifecycle.NewGroup()
	var src membership.Source = c.static
	if c.consul != nil {
		csrc, err := cluster.FollowConsul(ctx, runG, c.consul, cf.consul.config(), c.log)
		if err != nil {
			return errors.Join(err, runG.Stop())
		}
		src = csrc
	}
	lis, err := net.Listen("tcp", *listen)
	if err != nil {
		return errors.Join(fmt.Errorf("listen: %w", err), runG.Stop())
	}
	obs := mf.newObserver()
	sec.tls.announce(stdout, c.log, obs, "geomatch router")
	if err := obs.Serve(runG, mf.addr, c.log); err != nil {
		lis.Close()
		return errors.Join(err, runG.Stop())
	}
	rcfg := cluster.RouterConfig{
		Router:     router.Config{Auth: sec.keys, Limits: sec.limits},
		Membership: src, Store: c.st, Events: c.events, KeyPrefix: cf.store.prefix, Hooks: hcfg, Dispatch: dispatch.DefaultConfig(),
		ServerOptions: sec.tls.server, DialOptions: sec.tls.dial,
		Drain: drainTimeout, Metrics: obs, Log: c.log,
	}
	rt, err := cluster.StartRouter(serveG, runG, rcfg, lis)
	if err != nil {
		return errors.Join(err, runG.Stop())
	}
	m, _ := src.Current()
	fmt.Fprintf(stdout, "geomatch router: listening on %s (%s membership, %d matchers, epoch %d)\n", lis.Addr(), src.Kind(), len(m.Members()), m.Epoch())
	if a := obs.Addr(); a != "" {
		fmt.Fprintf(stdout, "geomatch router: shard map: http://%s/ui/\n", a)
	}
	if *respListen != "" {
		addr, err := serveRESP(serveG, rt.Router, *respListen, c.log)
		if err != nil {
			return errors.Join(err, serveG.Stop(), runG.Stop())
		}
		fmt.Fprintf(stdout, "geomatch router: RESP (Tile38/Redis GEO) on %s\n", addr)
	}
	runErr := lifecycle.WaitAny(ctx, serveG, runG)
	return errors.Join(runErr, serveG.Stop(), runG.Stop())
}

func runMatcher(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("matcher", "Runs one matcher node: it keeps the drivers of the shards it owns in memory and\nanswers the routers. With --consul it registers itself (with a health check),\ncompetes to be the ring writer, follows the ring, and on SIGTERM hands its\nshards over before it exits. With --peers it is one of a static list of\nmatchers, this one included, given exactly as to the routers.", stderr)
	id := fs.String("id", "", "this node's member id (required; with --peers it must appear there)")
	listen := fs.String("listen", "", "address to serve on (default: this node's address in --peers; required with --consul)")
	advertise := fs.String("advertise", "", "address routers and other matchers reach this node at (default: --listen)")
	weight := fs.Float64("weight", 1, "relative capacity: the node gets about weight times the shards of a weight-1 node (--consul)")
	checkTTL := fs.Duration("check-ttl", membership.DefaultCheckTTL, "TTL of the Consul health check: a dead matcher loses its shards after about this long (--consul)")
	aliveCheck := fs.String("alive-check", "", "address at which the Consul agent can open a TCP connection to this process (with an agent on the same host, the --listen address; not a proxy in front of it): Consul connects every second, so a killed matcher leaves the ring within about a second instead of --check-ttl (--consul)")
	ttl := fs.Duration("ttl", 0, "expire drivers silent for this long (default 30s)")
	maxDrivers := fs.Int("max-drivers", 0, "most drivers held (default 5000000)")
	drainFor := fs.Duration("drain-timeout", 15*time.Second, "on SIGTERM, how long to wait for the node's shards to be handed over (--consul)")
	var cf clusterFlags
	var df dispatchFlags
	var mf metricsFlags
	cf.register(fs)
	df.register(fs)
	mf.register(fs)
	var trf traceFlags
	trf.register(fs)
	var asf autosplitFlags
	asf.register(fs, "off")
	if err := parse(fs, args); err != nil {
		return err
	}
	if *id == "" {
		return errors.New("--id: required")
	}
	autosplitCfg, err := asf.config()
	if err != nil {
		return err
	}
	dcfg, err := df.config()
	if err != nil {
		return err
	}
	sec, err := cf.tls.node(identity.RoleMatcher, false)
	if err != nil {
		return err
	}
	stopTracing, err := trf.start(ctx, "geomatch-matcher", &cf.log, stderr) // before the store and servers it traces
	if err != nil {
		return err
	}
	defer stopTracing()
	c, err := cf.setup(ctx, stderr)
	if err != nil {
		return err
	}
	if c.st != nil {
		defer c.st.Close()
	} else {
		c.log.Warn("no --redis: this matcher does not coordinate rides, and shards of a dead matcher start empty")
	}
	addr := *listen
	if c.static != nil && autosplitCfg != nil {
		return errors.New("--autosplit on: a static ring (--peers) is fixed; automatic splits need --consul")
	}
	if c.static != nil {
		found := false
		for _, m := range c.members {
			if m.ID == *id {
				found = true
				if addr == "" {
					addr = m.Addr
				}
			}
		}
		if !found {
			return fmt.Errorf("--id: %q is not in --peers", *id)
		}
	} else if addr == "" {
		return errors.New("--listen: required with --consul")
	}
	lis, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("listen: %w", err)
	}
	cfg := matcher.DefaultConfig(*id)
	if *ttl > 0 {
		cfg.Index.TTL = *ttl
	}
	if *maxDrivers > 0 {
		cfg.Index.MaxDrivers = *maxDrivers
	}
	log := c.log.With("role", "matcher")
	obs := mf.newObserver()
	sec.announce(stdout, log, obs, "geomatch matcher "+*id)
	if sec.id.Name != "" && sec.id.Name != *id {
		log.Info("the node certificate names another id (one certificate shared by several matchers?); peers see the certificate's", "identity", sec.id.String(), "id", *id)
	}
	mcfg := cluster.MatcherConfig{
		Node: cfg, Store: c.st, Events: c.events, Dispatch: dcfg, ServerOptions: sec.server, DialOptions: sec.dial, TrustDomain: sec.trustDomain,
		Drain: drainTimeout, Metrics: obs, Log: log,
	}
	if c.static != nil {
		g := lifecycle.NewGroup()
		if err := obs.Serve(g, mf.addr, log); err != nil {
			lis.Close()
			return err
		}
		mcfg.Membership = c.static
		if _, err := cluster.StartMatcher(g, mcfg, nil, lis); err != nil {
			return errors.Join(err, g.Stop())
		}
		fmt.Fprintf(stdout, "geomatch matcher %s: listening on %s\n", *id, lis.Addr())
		runErr := lifecycle.WaitAny(ctx, g)
		return errors.Join(runErr, g.Stop())
	}

	// Consul: register, compete for ring writer, follow the ring, serve;
	// on SIGTERM leave the ring and hand the shards over.
	ccfg := cf.consul.config()
	adv := *advertise
	if adv == "" {
		adv = lis.Addr().String()
	}
	settings := membership.DefaultSettings()
	settings.ShardRes, settings.MaxSplitDepth, settings.VNodes = cf.ring.shardRes, cf.ring.splitDepth, cf.ring.vnodes
	return cluster.RunConsulMatcher(ctx, cluster.ConsulMatcher{
		Matcher: mcfg, Client: c.consul, Consul: ccfg,
		Member:   shardmap.Member{ID: *id, Addr: adv, Weight: *weight},
		CheckTTL: *checkTTL, AliveCheckAddr: *aliveCheck, Settings: settings, DrainTimeout: *drainFor, Autosplit: autosplitCfg,
		Serve: func(g *lifecycle.Group) error { return obs.Serve(g, mf.addr, log) },
		Started: func(*cluster.Matcher) {
			fmt.Fprintf(stdout, "geomatch matcher %s: listening on %s (consul %s)\n", *id, lis.Addr(), ccfg.Addr)
		},
		Leaving: func() { fmt.Fprintf(stdout, "geomatch matcher %s: leaving the ring, handing shards over\n", *id) },
	}, lis)
}

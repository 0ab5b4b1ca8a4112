package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"

	"github.com/geomatch/geomatch/internal/lifecycle"
	"github.com/geomatch/geomatch/matcher"
	"github.com/geomatch/geomatch/membership"
	"github.com/geomatch/geomatch/shardmap"
	"github.com/geomatch/geomatch/store"
)

// clusterFlags are the flags every process of a static cluster shares: the
// peer list, the ring settings, the store and logging.
type clusterFlags struct {
	peers string
	log   logFlags
	ring  ringFlags
	store storeFlags
}

func (c *clusterFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&c.peers, "peers", "", "matchers as id=host:port,id=host:port (required)")
	c.log.register(fs)
	c.ring.register(fs)
	c.store.register(fs)
}

// cluster is what clusterFlags set up.
type cluster struct {
	log     *slog.Logger
	members []shardmap.Member
	src     *membership.Local
	st      store.Store // nil without --redis
}

// setup builds the logger, the static membership and the store. The caller
// closes c.st when it is not nil.
func (c *clusterFlags) setup(ctx context.Context, stderr io.Writer) (cluster, error) {
	var out cluster
	var err error
	if out.log, err = c.log.logger(stderr); err != nil {
		return out, err
	}
	if out.members, err = parsePeers(c.peers); err != nil {
		return out, err
	}
	if out.src, err = membership.NewStatic(c.ring.doc(out.members)); err != nil {
		return out, err
	}
	out.st, err = c.store.open(ctx)
	return out, err
}

func runRouter(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("router", "Runs the stateless public gRPC front door. It routes to the matchers listed in\n--peers (every router and matcher of a cluster must be given the same list and\nring flags, so they agree on who owns which shard).", stderr)
	listen := fs.String("listen", "127.0.0.1:50051", "address of the public API")
	var cf clusterFlags
	cf.register(fs)
	if err := parse(fs, args); err != nil {
		return err
	}
	c, err := cf.setup(ctx, stderr)
	if err != nil {
		return err
	}
	if c.st != nil {
		defer c.st.Close()
	} else {
		c.log.Warn("no --redis: the ride API (RequestRide, GetTrip, CancelTrip, offers) is off")
	}
	lis, err := net.Listen("tcp", *listen)
	if err != nil {
		return fmt.Errorf("listen: %w", err)
	}
	runG, serveG := lifecycle.NewGroup(), lifecycle.NewGroup()
	if err := startRouter(serveG, runG, c.src, c.st, lis, c.log); err != nil {
		return err
	}
	m, _ := c.src.Current()
	fmt.Fprintf(stdout, "geomatch router: listening on %s (%d matchers, epoch %d)\n", lis.Addr(), len(c.members), m.Epoch())
	runErr := lifecycle.WaitAny(ctx, serveG, runG)
	return errors.Join(runErr, serveG.Stop(), runG.Stop())
}

func runMatcher(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("matcher", "Runs one matcher node: it keeps the drivers of the shards it owns in memory and\nanswers the routers. --peers lists every matcher of the cluster, this one\nincluded, exactly as the routers are given it.", stderr)
	id := fs.String("id", "", "this node's member id (required; must appear in --peers)")
	listen := fs.String("listen", "", "address to serve on (default: this node's address in --peers)")
	ttl := fs.Duration("ttl", 0, "expire drivers silent for this long (default 30s)")
	maxDrivers := fs.Int("max-drivers", 0, "most drivers held (default 5000000)")
	var cf clusterFlags
	var df dispatchFlags
	cf.register(fs)
	df.register(fs)
	if err := parse(fs, args); err != nil {
		return err
	}
	if *id == "" {
		return errors.New("--id: required")
	}
	dcfg, err := df.config()
	if err != nil {
		return err
	}
	c, err := cf.setup(ctx, stderr)
	if err != nil {
		return err
	}
	if c.st != nil {
		defer c.st.Close()
	} else {
		c.log.Warn("no --redis: this matcher does not coordinate rides")
	}
	addr := *listen
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
	lis, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("listen: %w", err)
	}
	cfg := matcher.DefaultConfig(*id)
	cfg.Store = c.st
	if *ttl > 0 {
		cfg.Index.TTL = *ttl
	}
	if *maxDrivers > 0 {
		cfg.Index.MaxDrivers = *maxDrivers
	}
	g := lifecycle.NewGroup()
	if err := startMatcher(g, cfg, c.src, c.st, dcfg, lis, c.log.With("role", "matcher")); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "geomatch matcher %s: listening on %s\n", *id, lis.Addr())
	runErr := lifecycle.WaitAny(ctx, g)
	return errors.Join(runErr, g.Stop())
}

package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"

	"github.com/geomatch/geomatch/internal/lifecycle"
	"github.com/geomatch/geomatch/matcher"
	"github.com/geomatch/geomatch/membership"
)

func runRouter(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("router", "Runs the stateless public gRPC front door. It routes to the matchers listed in\n--peers (every router and matcher of a cluster must be given the same list and\nring flags, so they agree on who owns which shard).", stderr)
	listen := fs.String("listen", "127.0.0.1:50051", "address of the public API")
	peers := fs.String("peers", "", "matchers as id=host:port,id=host:port (required)")
	var lf logFlags
	var rf ringFlags
	var sf storeFlags
	lf.register(fs)
	rf.register(fs)
	sf.register(fs)
	if err := parse(fs, args); err != nil {
		return err
	}
	log, err := lf.logger(stderr)
	if err != nil {
		return err
	}
	members, err := parsePeers(*peers)
	if err != nil {
		return err
	}
	src, err := membership.NewStatic(rf.doc(members))
	if err != nil {
		return err
	}
	st, err := sf.open(ctx)
	if err != nil {
		return err
	}
	if st != nil {
		defer st.Close()
	} else {
		log.Warn("no --redis: the ride API (RequestRide, GetTrip, CancelTrip, offers) is off")
	}
	lis, err := net.Listen("tcp", *listen)
	if err != nil {
		return fmt.Errorf("listen: %w", err)
	}
	runG, serveG := lifecycle.NewGroup(), lifecycle.NewGroup()
	if err := startRouter(serveG, runG, src, st, lis, log); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "geomatch router: listening on %s (%d matchers, epoch %d)\n", lis.Addr(), len(members), 1)
	runErr := lifecycle.WaitAny(ctx, serveG, runG)
	return errors.Join(runErr, serveG.Stop(), runG.Stop())
}

func runMatcher(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("matcher", "Runs one matcher node: it keeps the drivers of the shards it owns in memory and\nanswers the routers. --peers lists every matcher of the cluster, this one\nincluded, exactly as the routers are given it.", stderr)
	id := fs.String("id", "", "this node's member id (required; must appear in --peers)")
	listen := fs.String("listen", "", "address to serve on (default: this node's address in --peers)")
	peers := fs.String("peers", "", "matchers as id=host:port,id=host:port (required)")
	ttl := fs.Duration("ttl", 0, "expire drivers silent for this long (default 30s)")
	maxDrivers := fs.Int("max-drivers", 0, "most drivers held (default 5000000)")
	var lf logFlags
	var rf ringFlags
	var sf storeFlags
	var df dispatchFlags
	lf.register(fs)
	rf.register(fs)
	sf.register(fs)
	df.register(fs)
	if err := parse(fs, args); err != nil {
		return err
	}
	log, err := lf.logger(stderr)
	if err != nil {
		return err
	}
	members, err := parsePeers(*peers)
	if err != nil {
		return err
	}
	if *id == "" {
		return errors.New("--id: required")
	}
	addr := *listen
	found := false
	for _, m := range members {
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
	src, err := membership.NewStatic(rf.doc(members))
	if err != nil {
		return err
	}
	lis, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("listen: %w", err)
	}
	dcfg, err := df.config()
	if err != nil {
		return err
	}
	st, err := sf.open(ctx)
	if err != nil {
		return err
	}
	if st != nil {
		defer st.Close()
	} else {
		log.Warn("no --redis: this matcher does not coordinate rides")
	}
	cfg := matcher.DefaultConfig(*id)
	cfg.Store = st
	if *ttl > 0 {
		cfg.Index.TTL = *ttl
	}
	if *maxDrivers > 0 {
		cfg.Index.MaxDrivers = *maxDrivers
	}
	g := lifecycle.NewGroup()
	if err := startMatcher(g, cfg, src, st, dcfg, lis, log.With("role", "matcher")); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "geomatch matcher %s: listening on %s\n", *id, lis.Addr())
	runErr := lifecycle.WaitAny(ctx, g)
	return errors.Join(runErr, g.Stop())
}

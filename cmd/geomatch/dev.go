package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"

	"github.com/geomatch/geomatch/matcher"
	"github.com/geomatch/geomatch/membership"
	"github.com/geomatch/geomatch/shardmap"
)

func runDev(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("dev", "Runs a router and N matcher nodes in one process, each a separate gRPC server on\nloopback, with an in-process membership: the whole system on one command.\nStops cleanly on SIGINT/SIGTERM.", stderr)
	listen := fs.String("listen", "127.0.0.1:50051", "address of the router (the public API)")
	matchers := fs.Int("matchers", 3, "number of matcher nodes")
	matcherHost := fs.String("matcher-host", "127.0.0.1", "loopback address the matchers listen on (ports are picked free)")
	ttl := fs.Duration("ttl", 0, "expire drivers silent for this long (default 30s)")
	demo := fs.Int("demo-drivers", 0, "load this many demo drivers over New York, keep them moving, and print a sample query")
	var lf logFlags
	var rf ringFlags
	lf.register(fs)
	rf.register(fs)
	if err := parse(fs, args); err != nil {
		return err
	}
	if *matchers < 1 || *matchers > 64 {
		return fmt.Errorf("--matchers: %d, want 1..64", *matchers)
	}
	log, err := lf.logger(stderr)
	if err != nil {
		return err
	}
	routerLis, err := net.Listen("tcp", *listen)
	if err != nil {
		return fmt.Errorf("router listen: %w", err)
	}
	var (
		members []shardmap.Member
		lis     []net.Listener
	)
	for i := 1; i <= *matchers; i++ {
		l, err := net.Listen("tcp", net.JoinHostPort(*matcherHost, "0"))
		if err != nil {
			routerLis.Close()
			for _, l := range lis {
				l.Close()
			}
			return fmt.Errorf("matcher %d listen: %w", i, err)
		}
		lis = append(lis, l)
		members = append(members, shardmap.Member{ID: fmt.Sprintf("m%d", i), Addr: l.Addr().String(), Weight: 1})
	}
	src, err := membership.NewLocal(rf.doc(members))
	if err != nil {
		return err
	}
	matcherT, routerRunT, routerServeT := newTier(), newTier(), newTier()
	for i, m := range members {
		cfg := matcher.DefaultConfig(m.ID)
		if *ttl > 0 {
			cfg.Index.TTL = *ttl
		}
		if err := startMatcher(matcherT, cfg, src, lis[i], log); err != nil {
			return errors.Join(err, matcherT.stop())
		}
	}
	if _, err := startRouter(routerServeT, routerRunT, src, routerLis, log); err != nil {
		return errors.Join(err, matcherT.stop())
	}
	var addrs []string
	for _, m := range members {
		addrs = append(addrs, m.ID+"="+m.Addr)
	}
	fmt.Fprintf(stdout, "geomatch dev: router listening on %s (matchers: %s; shard resolution %d)\n",
		routerLis.Addr(), strings.Join(addrs, ", "), rf.shardRes)
	demoT := newTier()
	if *demo > 0 {
		demoT.goRun(func(ctx context.Context) error {
			return runDemoFleet(ctx, routerLis.Addr().String(), *demo, stdout, log)
		})
	}
	runErr := waitForStop(ctx, demoT, routerServeT, routerRunT, matcherT)
	fmt.Fprintln(stdout, "geomatch dev: stopping")
	// Stop from the edge inwards: clients first, then the router's streams
	// to the matchers, then the matchers.
	err = errors.Join(runErr, demoT.stop(), routerServeT.stop(), routerRunT.stop(), matcherT.stop())
	fmt.Fprintln(stdout, "geomatch dev: stopped")
	return err
}

package main

import (
	"github.com/geomatch/geomatch/events"

	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"syscall"

	"github.com/geomatch/geomatch/cluster"
	"github.com/geomatch/geomatch/internal/lifecycle"
	"github.com/geomatch/geomatch/matcher"
	"github.com/geomatch/geomatch/router"
	"github.com/geomatch/geomatch/shardmap"
)

func runDev(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("dev", "Runs a router and N matcher nodes in one process, each a separate gRPC server on\nloopback, with an in-process membership (with --consul: membership in\nConsul): the whole system on one command. The router searches the matchers\nand sends them updates by function call (--internal-grpc: over loopback gRPC,\nas separate processes do).\nStops cleanly on SIGINT/SIGTERM.", stderr)
	listen := fs.String("listen", "127.0.0.1:50051", "address of the router (the public API)")
	respListen := fs.String("resp-listen", "", "also serve the RESP front door (a subset of Tile38's and Redis GEO's commands, for redis-cli, go-redis and Tile38 clients) on this address, e.g. 127.0.0.1:9851; empty: off")
	matchers := fs.Int("matchers", 3, "number of matcher nodes")
	matcherHost := fs.String("matcher-host", "127.0.0.1", "loopback address the matchers listen on (ports are picked free)")
	ttl := fs.Duration("ttl", 0, "expire drivers silent for this long (default 30s)")
	demo := fs.Int("demo-drivers", 0, "load this many demo drivers over New York, keep them moving, and print a sample query")
	eventRetention := fs.Int("event-retention", events.DefaultMemoryRetention, "events the in-memory event log keeps per partition (8 partitions; without --redis): a subscriber further behind gets OUT_OF_RANGE")
	eventBytes := fs.Int64("event-retention-bytes", events.DefaultMemoryBytes, "memory the in-memory event log keeps in all (without --redis); past it the oldest events are trimmed even below --event-retention")
	internalGRPC := fs.Bool("internal-grpc", false, "call the matchers over loopback gRPC for searches and updates too, as separate processes do (slower; for comparison)")
	genTLS := fs.Bool("tls", false, "serve TLS with a throwaway CA and certificate generated into a temporary directory (printed, removed on exit); mutual TLS between router and matchers")
	var tf tlsFlags
	var af authFlags
	var lmf limitFlags
	tf.register(fs)
	af.register(fs, "off")
	lmf.register(fs)
	var lf logFlags
	var rf ringFlags
	var sf storeFlags
	var df dispatchFlags
	var cf consulFlags
	var mf metricsFlags
	mf.registerDev(fs)
	lf.register(fs)
	rf.register(fs)
	sf.register(fs)
	df.register(fs)
	cf.register(fs)
	var trf traceFlags
	trf.register(fs)
	var asf autosplitFlags
	asf.register(fs, "off")
	if err := parse(fs, args); err != nil {
		return err
	}
	autosplitCfg, err := asf.config()
	if err != nil {
		return err
	}
	sec, err := prepareDev(&tf, *genTLS, &af)
	if err != nil {
		return err
	}
	defer sec.remove()
	// Before the store and servers it traces; with --consul too, for the
	// router and matchers it runs in this process.
	stopTracing, err := trf.start(ctx, "geomatch-dev", &lf, stderr)
	if err != nil {
		return err
	}
	defer stopTracing()
	if cf.addr != "" {
		if *internalGRPC {
			return errors.New("--internal-grpc: with --consul the router always calls the matchers over gRPC, as separate processes do")
		}
		if *matchers < 1 || *matchers > 64 {
			return fmt.Errorf("--matchers: %d, want 1..64", *matchers)
		}
		if *listen == "" || strings.HasSuffix(*listen, ":0") {
			return errors.New("--listen: give a fixed port with --consul (the demo fleet and clients need it)")
		}
		if mf.addr == devHTTPAddr && !addrFree(devHTTPAddr) {
			mf.addr = "127.0.0.1:0" // another dev cluster holds the default
		}
		return runDevConsul(ctx, devArgs{consul: cf, log: lf, ring: rf, store: sf, disp: df, metrics: mf.addr, sec: sec, limits: lmf, autosplit: asf.args()}, *listen, *matcherHost, *matchers, *ttl, *demo, stdout, stderr)
	}
	dcfg, err := df.config()
	if err != nil {
		return err
	}
	if *matchers < 1 || *matchers > 64 {
		return fmt.Errorf("--matchers: %d, want 1..64", *matchers)
	}
	log, err := lf.logger(stderr)
	if err != nil {
		return err
	}
	st, err := sf.open(ctx)
	if err != nil {
		return err
	}
	storeName := "in-memory store"
	var evlog events.Log
	if *eventRetention < 1 {
		return fmt.Errorf("--event-retention: %d, want at least 1", *eventRetention)
	}
	if *eventBytes < 1 {
		return fmt.Errorf("--event-retention-bytes: %d, want at least 1", *eventBytes)
	}
	if st == nil {
		if evlog, err = events.NewMemory(events.MemoryConfig{Retention: *eventRetention, MaxBytes: *eventBytes}); err != nil {
			return fmt.Errorf("event log: %w", err)
		}
	}
	if st != nil {
		defer st.Close()
		storeName = "Redis at " + sf.addr
		if evlog, err = cluster.EventLogFor(st, sf.prefix); err != nil {
			return fmt.Errorf("event log: %w", err)
		}
	}
	obs := mf.newObserver()
	c, err := cluster.StartDev(cluster.DevConfig{
		Metrics:      obs,
		Store:        st,
		Events:       evlog,
		Dispatch:     dcfg,
		RouterAddr:   *listen,
		MatcherHost:  *matcherHost,
		Matchers:     *matchers,
		InternalGRPC: *internalGRPC,
		Autosplit:    autosplitCfg,
		Doc:          shardmap.Doc{ShardRes: rf.shardRes, MaxSplitDepth: rf.splitDepth, VNodes: rf.vnodes},
		Matcher: func(mc *matcher.Config) {
			if *ttl > 0 {
				mc.Index.TTL = *ttl
			}
		},
		TLS:        sec.tls,
		InternalCA: sec.internalCA,
		Router:     router.Config{Auth: sec.keys, Limits: devLimits(&lmf, sec.keys != nil, *demo, stdout)},
		Drain:      drainTimeout,
		Log:        log,
	})
	if err != nil {
		return err
	}
	obs.AddDetail(sec.internalMode())
	metricsG := lifecycle.NewGroup()
	if err := obs.Serve(metricsG, mf.addr, log); err != nil {
		if mf.addr != devHTTPAddr || !errors.Is(err, syscall.EADDRINUSE) {
			return errors.Join(err, c.Stop())
		}
		// Another dev cluster holds the default: take a free port.
		if err := obs.Serve(metricsG, "127.0.0.1:0", log); err != nil {
			return errors.Join(err, c.Stop())
		}
	}
	defer metricsG.Stop()
	var addrs []string
	for _, m := range c.Members {
		addrs = append(addrs, m.ID+"="+m.Addr)
	}
	fmt.Fprintf(stdout, "geomatch dev: router listening on %s (matchers: %s; shard resolution %d; %s; %s matching)\n",
		c.RouterAddr, strings.Join(addrs, ", "), rf.shardRes, storeName, dcfg.Mode)
	if sec.tls == nil {
		fmt.Fprintln(stdout, "geomatch dev: try `grpcurl -plaintext "+c.RouterAddr+" list`; Ctrl-C stops")
	}
	if a := obs.Addr(); a != "" {
		fmt.Fprintf(stdout, "geomatch dev: shard map: http://%s/ui/ (metrics: http://%s/metrics)\n", a, a)
	}
	respG := lifecycle.NewGroup()
	defer respG.Stop()
	if *respListen != "" {
		addr, err := serveRESP(respG, c.Router, *respListen, log)
		if err != nil {
			return errors.Join(err, c.Stop())
		}
		_, port, _ := net.SplitHostPort(addr)
		fmt.Fprintf(stdout, "geomatch dev: RESP (Tile38/Redis GEO) on %s — redis-cli -p %s\n", addr, port)
	}
	client, err := sec.announce(stdout, c.RouterAddr)
	if err != nil {
		return errors.Join(err, c.Stop())
	}
	if sec.keys == nil {
		warnAuthOff(stdout, log, "geomatch dev")
	}
	if sec.internalCA == nil {
		warnInsecureInternal(stdout, log, "geomatch dev", sec.internalMode())
	}
	demoOpts, err := client.dialOptions(c.RouterAddr)
	if err != nil {
		return errors.Join(err, c.Stop())
	}
	demoG := lifecycle.NewGroup()
	if *demo > 0 {
		demoG.Go(func(ctx context.Context) error {
			return runDemoFleet(ctx, c.RouterAddr, *demo, stdout, log, demoOpts...)
		})
	}
	waitCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	go func() { // ends when the demo fails or the wait is over
		select {
		case <-demoG.Failed():
			cancel()
		case <-respG.Failed():
			cancel()
		case <-waitCtx.Done():
		}
	}()
	runErr := c.Wait(waitCtx)
	fmt.Fprintln(stdout, "geomatch dev: stopping")
	err = errors.Join(runErr, demoG.Stop(), respG.Stop(), c.Stop())
	fmt.Fprintln(stdout, "geomatch dev: stopped")
	return err
}

// devLimits returns the dev router's limits. With authentication off a
// client is its IP address, and the demo fleet (one Connect stream per
// driver app, from this process) shares 127.0.0.1 with everybody else on
// the machine: with --demo-drivers, the per-client limits not given on the
// command line are lifted, and that is said on stdout. With authentication
// on the demo fleet holds an admin token, which no per-client limit
// applies to.
func devLimits(lmf *limitFlags, authOn bool, demo int, stdout io.Writer) router.Limits {
	l := lmf.limits(authOn)
	if authOn || demo <= 0 {
		return l
	}
	lifted := false
	for _, n := range []*autoNumber{&lmf.updates, &lmf.requests, &lmf.streams} {
		if !n.set {
			lifted = true
		}
	}
	if !lifted {
		return l
	}
	if !lmf.updates.set {
		l.UpdatesPerS = 0
	}
	if !lmf.requests.set {
		l.RequestsPerS = 0
	}
	if !lmf.streams.set {
		l.StreamsPerClient = 0
	}
	fmt.Fprintln(stdout, "geomatch dev: per-client limits lifted: the demo fleet and every local client share one address (give --client-update-rate, --client-request-rate or --client-streams to set them)")
	return l
}

// addrFree reports whether addr can be listened on now.
func addrFree(addr string) bool {
	l, err := net.Listen("tcp", addr)
	if err != nil {
		return false
	}
	l.Close()
	return true
}

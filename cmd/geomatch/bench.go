package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/geomatch/geomatch/internal/devcluster"
	"github.com/geomatch/geomatch/loadgen"
	"github.com/geomatch/geomatch/matcher"
)

// benchTTL keeps the embedded cluster's drivers alive for a whole run (the
// default 30 s TTL would expire the loaded fleet during the later phases).
const benchTTL = 30 * time.Minute

// runBench is `geomatch bench`: the load generator of package loadgen
// against an embedded dev cluster, a running cluster (--target) or a RESP
// geo server (--resp-target).
func runBench(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("bench", "Load-test a geomatch cluster through its public gRPC API, or a RESP geo server\n(Redis GEO or Tile38) with the same workload. Loopback targets only. Without\n--target or --resp-target it starts an embedded cluster of 3 matchers.", stderr)
	d := loadgen.DefaultConfig()
	target := fs.String("target", "", "host:port of a geomatch router (loopback); empty: start an embedded cluster with 3 matchers")
	respTarget := fs.String("resp-target", "", "host:port of a RESP geo server (loopback) to run the workload against instead")
	respProto := fs.String("resp-protocol", string(loadgen.RedisGEO), "commands of --resp-target: redis (GEOADD/GEOSEARCH) or tile38 (SET/NEARBY)")
	drivers := fs.Int("drivers", d.Drivers, fmt.Sprintf("simulated drivers, at most %d", loadgen.MaxDrivers))
	dist := fs.String("dist", string(d.Dist), "position distribution: uniform (New York) or hotspot (half within 3 km of Midtown)")
	seed := fs.Uint64("seed", d.Seed, "seed of positions and query points")
	duration := fs.Duration("duration", d.Duration, fmt.Sprintf("length of each measured phase, at most %v", loadgen.MaxDuration))
	conc := fs.String("concurrency", "1,8,32", "client concurrencies of the nearby phases, comma-separated")
	batch := fs.Int("batch", d.Batch, "updates per UpdateLocations call (per pipeline on RESP)")
	jsonOut := fs.String("json", "", "also write the report as JSON to this file")
	if err := parse(fs, args); err != nil {
		return err
	}
	cfg := d
	cfg.Drivers, cfg.Dist, cfg.Seed, cfg.Duration, cfg.Batch = *drivers, loadgen.Distribution(*dist), *seed, *duration, *batch
	cfg.Concurrency = nil
	for _, s := range strings.Split(*conc, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(s))
		if err != nil {
			return fmt.Errorf("--concurrency: %q is not a number", s)
		}
		cfg.Concurrency = append(cfg.Concurrency, n)
	}
	if *target != "" && *respTarget != "" {
		return errors.New("--target and --resp-target: give one or the other")
	}
	if err := cfg.Validate(); err != nil {
		return err
	}

	var t loadgen.Target
	switch {
	case *respTarget != "":
		pool := max(cfg.IngestConcurrency, cfg.StreamApps)
		for _, c := range cfg.Concurrency {
			pool = max(pool, c)
		}
		rt, err := loadgen.NewRESPTarget(*respTarget, loadgen.RESPProtocol(*respProto), pool)
		if err != nil {
			return err
		}
		defer rt.Close()
		if err := rt.Ping(ctx); err != nil {
			return err
		}
		t = rt
	case *target != "":
		gt, err := loadgen.NewGRPCTarget(*target)
		if err != nil {
			return err
		}
		defer gt.Close()
		t = gt
	default:
		c, err := devcluster.Start(devcluster.Config{Matchers: 3, Log: slog.New(slog.DiscardHandler),
			Matcher: func(mc *matcher.Config) { mc.Index.TTL = benchTTL }})
		if err != nil {
			return err
		}
		defer c.Stop()
		gt, err := loadgen.NewGRPCTarget(c.RouterAddr)
		if err != nil {
			return err
		}
		defer gt.Close()
		t = gt
		cfg.MeasureProcess = true
		fmt.Fprintf(stdout, "embedded cluster: router %s, 3 matchers (cpu and rss are this process's: cluster and load generator)\n", c.RouterAddr)
	}

	rep, runErr := loadgen.Run(ctx, cfg, t)
	if err := rep.WriteTable(stdout); err != nil {
		return err
	}
	if *jsonOut != "" {
		f, err := os.Create(*jsonOut)
		if err != nil {
			return err
		}
		if err := rep.WriteJSON(f); err != nil {
			f.Close()
			return err
		}
		if err := f.Close(); err != nil {
			return err
		}
	}
	return runErr
}

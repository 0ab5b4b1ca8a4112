// Command geomatch is the one binary of geomatch, a geo-sharded real-time
// rider/driver matching service. Subcommands:
//
//	geomatch dev       router and matchers in one process, embedded defaults
//	geomatch router    the stateless public gRPC front door
//	geomatch matcher   one matcher node
//	geomatch admin     show and move shards (status, ring, shards, move, drain, split, rebalance)
//	geomatch fence     geofences: put, get, list, delete, counts
//	geomatch events    tail the event stream (fence, trip, driver events) as JSON lines
//	geomatch hook      event hooks: put, list, delete (webhook, NATS JetStream, Redis stream)
//	geomatch sim       city traffic simulator: load-test a cluster, compare matching modes
//	geomatch bench     load generator: ingest, nearby, fences; side by side with Redis GEO and Tile38
//	geomatch chaos     fault-injection harness: faults under load, every client operation checked
//	geomatch ca        the cluster's CA and node certificates (init, issue)
//	geomatch version   print the version
//
// Every flag has an environment twin: --shard-res is GEOMATCH_SHARD_RES.
// `geomatch COMMAND --help` explains each command.
//
// The process runs with GOGC=400 and a soft memory limit of 90% of its
// cgroup's memory limit, unless GOGC or GOMEMLIMIT are set (package
// gcpolicy).
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"

	"github.com/geomatch/geomatch/internal/buildinfo"
	"github.com/geomatch/geomatch/internal/gcpolicy"
)

type command struct {
	name    string
	summary string
	run     func(ctx context.Context, args []string, stdout, stderr io.Writer) error
}

func commands() []command {
	return []command{
		{"dev", "run a router and N matchers in one process on loopback (embedded defaults)", runDev},
		{"router", "run the public gRPC front door against a static list of matchers", runRouter},
		{"matcher", "run one matcher node", runMatcher},
		{"sim", "simulate a city's drivers and riders against a cluster; KPI table, JSON and HTML report", runSim},
		{"admin", "show and move shards of a Consul-backed cluster (status, ring, shards, move, drain, split, rebalance)", runAdmin},
		{"fence", "create, list, count and delete geofences (put, get, list, delete, counts)", runFence},
		{"events", "follow fence, trip and driver events as JSON lines (tail)", runEvents},
		{"hook", "create, list and delete event hooks (put, list, delete)", runHook},
		{"driver", "be a driver: hold a Connect stream, print ride offers, answer them and drive the trips", runDriver},
		{"bench", "load-test a cluster (or Redis GEO / Tile38) with drivers and nearby queries", runBench},
		{"chaos", "inject faults into a loopback cluster under load, check every client operation; verdict table", runChaos},
		{"ca", "make a cluster's certificate authority and issue node certificates (init, issue)", runCA},
		{"version", "print the version", func(_ context.Context, _ []string, stdout, _ io.Writer) error {
			fmt.Fprintln(stdout, buildinfo.String())
			return nil
		}},
	}
}

func usage(w io.Writer) {
	fmt.Fprintf(w, "geomatch: geo-sharded real-time rider/driver matching.\n\nUsage: geomatch COMMAND [flags]\n\nCommands:\n")
	for _, c := range commands() {
		fmt.Fprintf(w, "  %-9s %s\n", c.name, c.summary)
	}
	fmt.Fprintf(w, "\nRun 'geomatch COMMAND --help' for a command's flags. Every flag has an\nenvironment twin: --shard-res is GEOMATCH_SHARD_RES.\n")
}

func main() {
	gcpolicy.Apply()
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	tuner := gcpolicy.StartTuner(ctx)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	tuner.Stop()
	os.Exit(code)
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		usage(stdout)
		if len(args) == 0 {
			return 2
		}
		return 0
	}
	for _, c := range commands() {
		if c.name == args[0] {
			err := c.run(ctx, args[1:], stdout, stderr)
			switch {
			case err == nil:
				return 0
			case errors.Is(err, flag.ErrHelp):
				return 0
			case errors.Is(err, errUsage):
				return 2
			}
			fmt.Fprintf(stderr, "geomatch %s: %v\n", c.name, err)
			return 1
		}
	}
	fmt.Fprintf(stderr, "geomatch: unknown command %q\n\n", args[0])
	usage(stderr)
	return 2
}

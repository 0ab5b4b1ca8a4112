package main

import (
	"flag"

	"github.com/geomatch/geomatch/cluster"
)

// metricsFlags is the --metrics listener of a server command.
type metricsFlags struct {
	addr string
}

func (m *metricsFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&m.addr, "metrics", "", "serve Prometheus /metrics, /debug/pprof/, /readyz (and on a router the live shard map, /ui/) on this address (host:port); off when empty")
}

// devHTTPAddr is where `geomatch dev` serves /metrics and the shard map
// unless told otherwise: next to the router's 50051.
const devHTTPAddr = "127.0.0.1:50080"

// registerDev registers --metrics on by default at devHTTPAddr.
func (m *metricsFlags) registerDev(fs *flag.FlagSet) {
	fs.StringVar(&m.addr, "metrics", devHTTPAddr, "serve the live shard map (/ui/), Prometheus /metrics, /debug/pprof/ and /readyz on this address (host:port); a free port when the default is taken; off when empty")
}

// newObserver returns nil (no metrics) when --metrics is not given.
func (m *metricsFlags) newObserver() *cluster.Observer {
	if m.addr == "" {
		return nil
	}
	return cluster.NewObserver()
}

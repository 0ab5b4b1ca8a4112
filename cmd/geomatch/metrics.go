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
	fs.StringVar(&m.addr, "metrics", "", "serve Prometheus /metrics, /debug/pprof/ and /readyz on this address (host:port); off when empty")
}

// newObserver returns nil (no metrics) when --metrics is not given.
func (m *metricsFlags) newObserver() *cluster.Observer {
	if m.addr == "" {
		return nil
	}
	return cluster.NewObserver()
}

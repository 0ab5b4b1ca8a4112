// Package loadgen is geomatch's load generator: the workload behind
// `geomatch bench` and `make bench-compare`. It loads a fleet of simulated
// drivers into a target, then measures location ingest (unary batches and
// per-driver streams) and nearest-driver queries at several client
// concurrencies, and reports ops/s and latency percentiles per phase.
//
// The same workload runs against two kinds of Target: the public gRPC API of
// a geomatch cluster (NewGRPCTarget) and a RESP geo server, Redis GEO or
// Tile38 (NewRESPTarget), so the figures can be put side by side with the
// same seed, fleet and concurrency.
//
// Everything is bounded: the fleet size (Config.Drivers, at most
// MaxDrivers), every measured phase by Config.Duration and a per-worker
// operation cap, the load phase by Config.LoadTimeout, and every goroutine
// stops with the context. Targets must be on loopback (CheckLoopback): the
// generator is for measuring on one machine, never for hammering a remote
// host.
//
// CPU and memory: with an embedded cluster (Config.MeasureProcess) the
// figures are this process's, load generator included; with the server in
// another process on this machine (Config.ServerPID: geomatch dev,
// redis-server, tile38-server) they are the server's, read from /proc, and
// the load generator's own CPU is reported beside them. The load
// generator's goroutines carry the profile label loadgen=client, so a CPU
// profile of a process that runs both (geomatch bench --cpuprofile) tells
// its share apart.
//
// Latencies are recorded in a per-worker log-bucket Histogram (32 sub-buckets
// per power of two, so a percentile is within about 3% of the exact value)
// and merged at the end of a phase; memory stays constant however many
// operations a phase runs.
//
// Usage:
//
//	t, err := loadgen.NewGRPCTarget("127.0.0.1:50051")
//	...
//	defer t.Close()
//	cfg := loadgen.DefaultConfig()
//	cfg.Drivers = 10_000
//	rep, err := loadgen.Run(ctx, cfg, t)
//	...
//	rep.WriteTable(os.Stdout)
package loadgen

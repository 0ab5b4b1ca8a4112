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
// Targets that can send many searches per round trip (Pipeliner: RESP
// pipelining; geomatch's RiderService.NearbyStream) also get nearby-p16,
// one client with 16 searches per round trip, and on geomatch's gRPC API
// nearbystream-C, C such clients with a stream each.
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
// the load generator's own CPU is reported beside them, with the server's
// peak resident set; Config.ServerMetrics adds a geomatch server's GC share
// of its CPU and its live heap, read from its /metrics. The load
// generator's goroutines carry the profile label loadgen=client, so a CPU
// profile of a process that runs both (geomatch bench --cpuprofile) tells
// its share apart.
//
// Latencies are recorded in a per-worker log-bucket Histogram (32 sub-buckets
// per power of two, so a percentile is within about 3% of the exact value)
// and merged at the end of a phase; memory stays constant however many
// operations a phase runs.
//
// # Fence phases
//
// RunFences (`geomatch bench --fences N`) measures geofences on a geomatch
// target. After the load it runs ingest-unary and ingest-stream without
// fences (the baseline), then fence-put: N fences over the city through
// PutFence in parallel (FenceConfig.PutConcurrency), half district-like
// polygons (star-shaped around a center, 50–500 vertices, 0.3–2 km², a few
// random harmonics plus noise) and half circles (100 m–2 km), drawn by
// GenFence from the seed so a fence is the same in every run. Then the
// same ingest phases with the fences (ingest-unary+fences,
// ingest-stream+fences), then ingest-unary+fence-writes beside
// fence-writes, which replaces fences (same ids, new shapes) at
// FenceConfig.WriteRate, and the nearby phases with the fences in place.
// An EventService.Subscribe stream on the fences' set counts the events of
// each fenced phase. The report (FenceReport) adds the event rates and the
// figures the fence issue sets targets for: fenced ingest in updates/s and
// as a share of the baseline, PutFence/s alone and during ingest, and the
// p99 of ingest with concurrent fence writes over without. The timestamps
// of every ingest phase start after the previous phase's, so no update is
// stale whatever order the phases run in.
//
// CompareFences (`geomatch bench --fence-compare [--tile38-addr A]`)
// replays one deterministic trace (GenTrace: random walks over Midtown)
// against geomatch and, optionally, Tile38 (SETCHAN … FENCE DETECT
// enter,exit per fence, PSUBSCRIBE, pipelined SET … POINT), one step at a
// time, and compares the enter/exit events of each with a brute-force
// oracle (fence.Fence.Eval) and with each other, step by step. Each event
// one side alone reports is classified by the rule that explains it (the
// Earth radius of Tile38's circles, its 64-step circle polygons with
// NEARBY, a point on a polygon's edge) or as unexplained; the report also
// gives each replay's updates/s and their ratio.
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

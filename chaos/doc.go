// Package chaos is the fault-injection harness behind `geomatch chaos`: it
// starts (or attaches to) a real cluster on loopback, drives client load
// through the public API, injects faults on a seeded schedule, records
// every client operation with its outcome and times, and checks the
// history for what clients must never see.
//
// The pieces, each usable on its own:
//
//   - History records client operations (bounded in memory, optionally
//     written as JSON lines).
//   - Check is pure: a history in, violations and figures out. It finds
//     double assignments (a driver on two live trips at once), lost trips
//     (acknowledged, then not found), lost acknowledged updates (a driver
//     whose acknowledged position is neither held nor superseded at the
//     end), stale answers (a nearby answer showing a driver older than an
//     update acknowledged before the query began, by more than the
//     tolerated position age), phantom positions (never written),
//     incomplete answers not flagged partial, rejected updates, failed
//     queries and rides, ended driver streams and stranded trips.
//   - Schedule turns a scenario and a seed into a fault timeline.
//   - Proxy is a loopback TCP proxy that forwards, refuses or blackholes
//     connections: partitions are made by cutting the proxies a process
//     reaches Consul, Redis or its peers through.
//   - Cluster runs Consul, Redis, matchers and routers as child processes
//     (the geomatch binary itself) and signals them.
//   - Load drives drivers on Connect streams (with acknowledgements),
//     nearby queries, and ride requests answered by drivers.
//   - Report prints the verdict table and writes the JSON report.
//
// Run ties them together; a run fails when the checker finds a violation.
package chaos

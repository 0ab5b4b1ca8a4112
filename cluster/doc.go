// Package cluster is geomatch's one composition root: it wires the pieces
// of the system into running servers, the same way for every caller.
//
//   - StartMatcher starts a matcher: its node (package matcher), its ride
//     coordinator (package dispatch) searching the cluster through a fleet
//     client (package fleet) that reaches the node itself by function call,
//     and one gRPC server with the internal services;
//   - StartRouter starts a router: a fleet client and the public front door
//     (package router) on one gRPC server;
//   - StartDev starts the all-in-one cluster of `geomatch dev` and of the
//     integration tests: N matchers and a router in one process, each a
//     real gRPC server on a loopback port, through StartMatcher and
//     StartRouter;
//   - JoinConsul registers a matcher in Consul, runs its share of the ring
//     writer election and follows the ring; Observer collects a process's
//     Prometheus metrics and readiness.
//
// The binary (cmd/geomatch) keeps flags, output and signals; the matcher
// and router processes of a Consul or static cluster call the same
// functions as `geomatch dev`, so the wiring the tests run is the wiring
// production runs.
package cluster

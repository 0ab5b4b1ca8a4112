// Package router is the stateless front door of geomatch. It implements the
// public gRPC API (DriverService, RiderService, AdminService) on top of the
// matcher nodes:
//
//   - location updates are validated, mapped to their H3 shard and the
//     shard's owner on the current ring, and batched per owner over one
//     long-lived internal Apply stream per matcher (never one RPC per
//     update); a driver that lands on a new node has its older copies evicted
//     from the other nodes;
//   - nearby queries cover the search circle with shards (an exact cover:
//     no shard that could hold a closer driver is missed), ask every owner
//     involved in parallel under one deadline, and merge the top k;
//   - a NotOwner answer (the ring moved) makes the router refresh its ring
//     and retry, a bounded number of times; an owner that cannot be reached
//     gives a clear UNAVAILABLE naming the node;
//   - with Config.Auth, every public call carries a signed token (package
//     auth): its role decides the methods it may call (ServerOptions'
//     interceptors, the policy table in auth.go) and its subject the driver
//     or rider it may act for; with Config.Limits, each client (token
//     subject, or IP address without authentication) has token buckets for
//     updates and calls and a bound on its driver streams. A driver stream
//     whose app stops reading is ended rather than buffered without bound.
//
// The router holds no durable state: everything it keeps (connections,
// queues, caches) is rebuilt from the membership source. Its goroutines are
// owned by Run and stop when Run's context is done.
package router

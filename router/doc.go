// Package router is the stateless public front door of geomatch: it
// implements the public gRPC API (DriverService, RiderService,
// AdminService) and nothing of how the matchers are reached, which is the
// fleet client's job (package fleet).
//
//   - every request is validated (InvalidArgument naming the field) before
//     anything changes; location updates are handed to the fleet client,
//     which routes and batches them, and each refusal comes back as the
//     client's Rejection (the outcome vocabulary of package driver meets
//     the public one in one function, rejection);
//   - nearby queries are answered by the fleet client's exact scatter and
//     merge; ride requests are forwarded to the owner of the pickup's shard;
//     trip reads, cancels, offer answers and trip progress run against the
//     store (dispatch.Ops);
//   - driver Connect streams live here: positions and offer answers go up,
//     offers and trip updates (from the store's event bus) come down; a
//     stream whose app stops reading is ended rather than buffered without
//     bound;
//   - the admin API reports the ring and the matchers' load and changes the
//     ring through Config.RingAdmin (the in-process ring or Consul);
//   - with Config.Auth, every public call carries a signed token (package
//     auth): its role decides the methods it may call (ServerOptions'
//     interceptors, the policy table in auth.go) and its subject the driver
//     or rider it may act for; with Config.Limits, each client (token
//     subject, or IP address without authentication) has token buckets for
//     updates and calls and a bound on its driver streams.
//
// The router holds no durable state. Its one goroutine of its own, Run,
// delivers bus events to driver streams and stops when Run's context is
// done; each stream's reader and writer end with the stream.
package router

// Package fleet is the client side of the matcher fleet: everything a
// process needs to talk to the matchers that own the map, and nothing of
// the public API.
//
//   - a peer pool: one client connection per ring member, opened and closed
//     as the ring changes (Run follows the membership source);
//   - location updates, each routed to the owner of its shard on the
//     current ring and batched per owner over one long-lived internal Apply
//     stream, opened when the first update or eviction for that owner
//     arrives (a client that only searches, such as a matcher's ride
//     coordinator, keeps no idle streams); a driver that lands on a new node
//     has its older copies evicted from the others;
//   - nearby searches, covered with shards, asked of every owner involved
//     (the home owner first, then only those that can still hold a closer
//     driver) and merged into the exact global top k;
//   - ride requests forwarded to the owner of the pickup's shard, and the
//     status probe of every member for the admin API;
//   - a NotOwner refusal (the ring moved) makes the client refresh its ring
//     and retry, a bounded number of times; an owner that cannot be reached
//     gives a clear UNAVAILABLE naming the node.
//
// Matchers that run in the same process (`geomatch dev`, a matcher's own
// coordinator searching its own shards) are reached by function call
// through the LocalNode interface, which the matcher's local adapter
// satisfies, instead of over loopback gRPC.
//
// A Client holds no durable state; its goroutines are owned by Run and stop
// when Run's context is done. The public front door (package router) and
// the ride coordinators (package dispatch, through their Searcher) use it;
// it never imports them.
package fleet

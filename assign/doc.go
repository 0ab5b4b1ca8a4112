// Package assign solves batch assignment: given riders, drivers and the
// candidate pairs between them with their pickup distances, it picks the
// pairs that serve as many riders as possible at the least total pickup
// distance.
//
// It is the core of dispatch's batch mode. Instead of offering each request
// its nearest driver the moment it arrives (first-come greedy, which lets an
// early request take the driver a later one needed far more), the matcher
// collects a shard's requests for a short window, finds each request's
// nearest available drivers with the usual exact search, and solves the
// window as one problem with Optimal. Greedy is the first-come baseline,
// kept to measure the gain and as a fallback for problems above MaxSize.
//
// The candidate count per request is bounded (the k nearest drivers within
// a radius), so the graph is sparse and falls apart into local clusters;
// Optimal solves each connected cluster on its own with the Hungarian
// algorithm, so its cost follows the largest cluster, not the window.
//
// The package is pure: indexes in, pairs out; what a pair means (reserve
// the driver, offer the trip) is the caller's business.
//
// Usage:
//
//	edges := []assign.Edge{{Rider: 0, Driver: 0, Cost: 1250}, {Rider: 0, Driver: 1, Cost: 750},
//		{Rider: 1, Driver: 1, Cost: 1000}, {Rider: 1, Driver: 0, Cost: 3000}}
//	pairs, err := assign.Optimal(2, 2, edges) // rider 0 → driver 0, rider 1 → driver 1: 2250 m
//	greedy := assign.Greedy(2, 2, edges)      // rider 0 → driver 1, rider 1 → driver 0: 3750 m
package assign

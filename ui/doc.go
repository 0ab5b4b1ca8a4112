// Package ui is the router's live shard map: a web page served at /ui/ on
// the router's HTTP listener (the one that serves /metrics), with no
// external resource, that shows where every shard lives and how loaded it
// is, and lets an administrator move, drain, split and merge.
//
// One Collector per router gathers what the page shows: the ring the
// router routes by (owners, pins, splits, drained nodes) and the
// matchers' load (the Stats probe the admin API's ListShards and
// GetClusterStatus make), once a second and at once when the ring's epoch
// moves. It turns them into a mapview.Snapshot, encodes it once, and
// every browser gets the same bytes: many open pages cost the matchers
// nothing more than one. Consecutive rings are diffed into a bounded
// timeline of epochs, moves, pins, splits, merges, drains and failovers.
//
// The Handler serves the page (assets embedded in the binary), the
// snapshot as JSON (/ui/api/snapshot), a server-sent event stream of
// snapshots (/ui/api/events; browsers reconnect by themselves, so the page
// survives a router restart), and the actions. An action is first planned
// (/ui/api/plan: the change applied to a copy of the current ring, showing
// which shards would change owner) and then applied (/ui/api/apply, which
// refuses a plan made at an older epoch) through the router's own
// AdminService handlers: the same RPCs as `geomatch admin`, the same
// authentication (the page sends the admin token the operator pastes in
// as `Authorization: Bearer`), limits and audit.
//
// Viewing needs no token, as /metrics needs none: the HTTP listener
// belongs on an operators' network. Acting needs an admin token whenever
// the router checks tokens.
package ui

package cluster

import (
	"github.com/geomatch/geomatch/internal/identity"
	matcherv1 "github.com/geomatch/geomatch/proto/geomatch/matcher/v1"
)

// MatcherPolicy says which nodes may call each method of a matcher's
// internal API, by the role in their certificate's identity: each method
// is open to the roles whose code calls it, and nothing else is.
//
//   - Apply (driver updates), Standby (updates a lost matcher had
//     acknowledged, handed to the nodes taking its shards over), SyncFences, FenceCounts (fence writes and
//     counts) and RequestRide: routers only. No matcher sends updates or
//     rides to another; a forged Apply is how a position is faked.
//   - Nearby: routers (searches) and matchers (a ride coordinator searches
//     the whole cluster for candidates).
//   - Stats: routers (cluster status) and matchers (the Consul ring
//     writer's census of the shards that hold drivers).
//   - Transfer and Holding: matchers only (shard handoff between owners).
//   - Lookup and Scan: routers only (drivers by id, for the RESP door).
//   - Ring: routers and matchers (the ring record, to a process cut off
//     from Consul; a ring is no secret to a member).
//   - Health and reflection: routers and matchers.
var MatcherPolicy = identity.Policy{
	matcherv1.MatcherService_Apply_FullMethodName:        {identity.RoleRouter},
	matcherv1.MatcherService_Standby_FullMethodName:      {identity.RoleRouter},
	matcherv1.MatcherService_Nearby_FullMethodName:       {identity.RoleRouter, identity.RoleMatcher},
	matcherv1.MatcherService_Stats_FullMethodName:        {identity.RoleRouter, identity.RoleMatcher},
	matcherv1.MatcherService_Transfer_FullMethodName:     {identity.RoleMatcher},
	matcherv1.MatcherService_Holding_FullMethodName:      {identity.RoleMatcher},
	matcherv1.MatcherService_Lookup_FullMethodName:       {identity.RoleRouter},
	matcherv1.MatcherService_Scan_FullMethodName:         {identity.RoleRouter},
	matcherv1.MatcherService_Ring_FullMethodName:         {identity.RoleRouter, identity.RoleMatcher},
	matcherv1.MatcherService_SyncFences_FullMethodName:   {identity.RoleRouter},
	matcherv1.MatcherService_FenceCounts_FullMethodName:  {identity.RoleRouter},
	matcherv1.DispatchService_RequestRide_FullMethodName: {identity.RoleRouter},
	"/grpc.health.v1.Health/":                            {identity.RoleRouter, identity.RoleMatcher},
	"/grpc.reflection.v1.ServerReflection/":              {identity.RoleRouter, identity.RoleMatcher},
	"/grpc.reflection.v1alpha.ServerReflection/":         {identity.RoleRouter, identity.RoleMatcher},
}

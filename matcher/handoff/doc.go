// Package handoff decides how a matcher node hands shards over when the
// consistent-hash ring changes: what it gives up, what it warms, whom it
// asks, what it serves to the peers that ask it, and which handed-over
// copies it refuses as stale.
//
// It is pure, in the style of raft's Step and Ready: it does no I/O, starts
// no goroutines, takes no locks and reads no clock (time is an argument).
// Package matcher drives it: the node performs the Transfer and Holding
// calls, reads the store, applies updates to its index and serialises all
// of it with its locks, and asks this package for every decision. The
// decisions are values, so they are tested here with tables, and the whole
// protocol is checked by a property test that runs several nodes over an
// in-memory network against a brute-force model of who must hold which
// driver.
//
// # The protocol
//
// A node's records are its base ring (the last at which it was fully warm,
// nil if none), its retired snapshots (Retired: the drivers of each shard
// it gave up, with the epoch it gave it up at, kept for a grace period) and
// its Log of superseded timestamps. When the ring moves to a target, Plan
// returns the Step:
//
//   - Lose: the held shards the node does not own under the target. Each
//     is snapshotted (Step.Retire), dropped from the index, and its
//     positions recorded in the Log (Log.GiveUp); the drivers of a shard
//     that was split or merged and stays on the node are re-homed
//     (Step.Rehome).
//   - Gains (the gate): the shards the node owns under the target and did
//     not hold at base, including those it gave up after base and owns
//     again (Regained). Searches over them wait for the warm-up.
//
// The warm-up asks every peer (Step.Peers) for the snapshots it keeps
// (Step.Request). A peer answers with Serve: its snapshots of cells
// the requester owns, the newest copy of each driver in the requester's
// shards, minus those it holds live again or whose Log supersedes the copy
// (Withhold). The requester places each copy (Step.Place), re-applies its
// own snapshots of what it gains (Step.Reclaim), and reads the store for
// the shards it gains that no peer covered with a complete snapshot (one
// taken while its node was still warming the shard is Cold)
// (Step.StoreShards, Step.FromStore). Every copy goes through Fence before
// it is applied, and is then checked with the peers that answered
// (Holding): a copy a peer holds newer is dropped. When the warm-up
// completes, the target becomes the base (Step.Next).
//
// # Invariants
//
// The property test checks them whenever the cluster comes to rest (every
// node at the latest ring, every warm-up ended, every eviction delivered),
// over random sequences of joins, leaves, drains, pins, splits, merges,
// quick ring changes that cancel warm-ups, drivers moving between shards
// and evictions:
//
//   - a node holds drivers only in shards it owns under its latest ring;
//   - every live driver is held by the owner of its shard, at its newest
//     position;
//   - any other copy of a driver is older and marked HandedOver, and is
//     gone once the driver has reported again: then every live driver is
//     held by its owner alone.
//
// A copy older than one a node has seen (superseded: the node gave it up,
// or was told of a newer claim) is neither applied from a hand-over nor
// handed over: a node records the positions it gives up and the evictions
// it receives while it keeps snapshots or warms shards (Log), and Fence and
// Withhold refuse older copies. Copies that get through anyway (their
// eviction has not arrived, or went to other nodes) are checked with the
// peers after the warm-up, and the node that applies a handed-over copy
// marks it HandedOver, so that the driver's next own update claims it and
// evicts the copies elsewhere.
//
// What a node that left the ring kept is asked for by the nodes whose base
// or target ring lists it, and is in the store; a member that joins and
// leaves again while another node warms from an older ring, or that leaves
// while nodes still warm from before it, can be asked by nobody. The
// drivers that reported only to it then come back with their next update.
//
// # Usage
//
// A node's ring advance, in outline (the index, the locks and the calls
// are the caller's):
//
//	st := handoff.Plan(target, self, handoff.Records{Base: base, Held: heldShards, Retired: retired, Warming: running})
//	for _, cell := range st.Lose {
//		snap := takeSnapshotAndDrop(cell)
//		apply(st.Rehome(cell, snap))
//		retired[cell] = st.Retire(cell, snap, retired, now, grace)
//		log.GiveUp(snap)
//	}
//	// warm-up, on its own goroutine:
//	for _, peer := range st.Peers() {
//		for _, d := range transfer(peer, st.Request()) {
//			if shard, ok := st.Place(d.Pos); ok {
//				apply(handoff.Fence(cur, self, log, []index.Update{asUpdate(d, shard)}))
//			}
//		}
//	}
//	apply(handoff.Fence(cur, self, log, st.Reclaim(retired, now.Add(-ttl).UnixMilli())))
//	for _, cell := range st.StoreShards(storeShards, covered) {
//		apply(handoff.Fence(cur, self, log, st.FromStore(cell, readStore(cell), oldest)))
//	}
//	base = st.Next(complete)
//
// And its Transfer handler:
//
//	h := handoff.Serve(cur, handoff.Request{To: peer}, retired)
//	for _, d := range h.Drivers() {
//		if !handoff.Withhold(d, holdsLive(d.ID), log) {
//			send(d)
//		}
//	}
//	markServed(h.Served)
//	send(h.Covered)
package handoff

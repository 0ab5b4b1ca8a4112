package handoff

import "github.com/geomatch/geomatch/matcher/index"

// MaxLog is the number of drivers a node's Log records at most: beyond it,
// new drivers are not recorded (those already recorded are still raised).
// It is far more than one node sees superseded while a hand-over is under
// way.
const MaxLog = 1 << 20

// Log records, per driver, the newest timestamp known to supersede older
// copies of the driver: an eviction (another node claimed the driver with
// that update) or a position the node itself gave up with its shard. A copy
// older than the recorded timestamp is stale: it is neither applied from a
// hand-over (Fence) nor handed over from a snapshot (Withhold).
//
// A node keeps a Log while it keeps snapshots of shards it gave up or warms
// shards it gained, and drops it when neither is left (Expire): nothing
// would then consult it. A nil *Log records nothing and supersedes nothing,
// which is how a node that keeps no hand-over state treats evictions.
//
// A Log is bounded: it records at most its limit of drivers. It is a plain
// value, not safe for concurrent use; the caller serialises it with the
// application of handed-over copies.
type Log struct {
	ts    map[string]int64
	limit int
}

// NewLog returns an empty log of at most limit drivers (MaxLog when limit
// is not positive).
func NewLog(limit int) *Log {
	if limit <= 0 {
		limit = MaxLog
	}
	return &Log{ts: map[string]int64{}, limit: limit}
}

// Supersede records that copies of driver id older than ts are stale. The
// recorded timestamp only rises. A full log records no new driver; a nil
// log ignores the call.
func (l *Log) Supersede(id string, ts int64) {
	if l == nil {
		return
	}
	if cur, ok := l.ts[id]; ok || len(l.ts) < l.limit {
		l.ts[id] = max(cur, ts)
	}
}

// GiveUp records the positions of drivers the node stops holding because
// it gave up their shard, as evictions would be recorded: the node has seen
// these positions, so a copy older than one of them, handed over later by a
// node whose snapshot predates the driver's move, is stale. Without it, a
// node that received a driver's newest update (and so was told of no
// eviction, being the claimer) and then gave the shard up would take an
// older copy back from a peer during its next warm-up.
func (l *Log) GiveUp(snap []index.Driver) {
	for i := range snap {
		l.Supersede(snap[i].ID, snap[i].TimestampMs)
	}
}

// Superseded reports whether a copy of driver id at ts is older than the
// newest timestamp recorded for it. A copy as new as the recorded one is
// not superseded: it is the same position.
func (l *Log) Superseded(id string, ts int64) bool {
	if l == nil {
		return false
	}
	ev, ok := l.ts[id]
	return ok && ts < ev
}

// Len returns the number of drivers recorded.
func (l *Log) Len() int {
	if l == nil {
		return 0
	}
	return len(l.ts)
}

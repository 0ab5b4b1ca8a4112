package matcher

import (
	"math"
	"sync"
	"sync/atomic"
	"time"

	"github.com/uber/h3-go/v4"
)

// shardLoad counts the traffic of one shard; rates are exponentially decayed
// averages refreshed once per tick by the node's Run loop.
type shardLoad struct {
	updates atomic.Int64
	queries atomic.Int64

	// Guarded by loads.mu (written by tick, read by snapshot).
	lastUpdates, lastQueries int64
	updateRate, queryRate    float64
}

// loads holds a shardLoad per shard with traffic. Its size is bounded by the
// shards the node owns: loads of dropped shards are removed.
type loads struct {
	mu     sync.RWMutex
	shards map[h3.Cell]*shardLoad
	window time.Duration
}

func newLoads(window time.Duration) *loads {
	return &loads{shards: make(map[h3.Cell]*shardLoad), window: window}
}

// get returns the counters of shard, creating them on first use. The hit
// path takes a read lock only.
func (l *loads) get(shard h3.Cell) *shardLoad {
	l.mu.RLock()
	sl := l.shards[shard]
	l.mu.RUnlock()
	if sl != nil {
		return sl
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if sl = l.shards[shard]; sl == nil {
		sl = &shardLoad{}
		l.shards[shard] = sl
	}
	return sl
}

func (l *loads) drop(shard h3.Cell) {
	l.mu.Lock()
	delete(l.shards, shard)
	l.mu.Unlock()
}

// retain keeps the counters of the shards keep approves and drops the rest.
func (l *loads) retain(keep func(h3.Cell) bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for c := range l.shards {
		if !keep(c) {
			delete(l.shards, c)
		}
	}
}

// tick folds the counts since the previous tick, elapsed ago, into the rates.
func (l *loads) tick(elapsed time.Duration) {
	if elapsed <= 0 {
		return
	}
	alpha := 1 - math.Exp(-elapsed.Seconds()/l.window.Seconds())
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, sl := range l.shards {
		u, q := sl.updates.Load(), sl.queries.Load()
		sl.updateRate += alpha * (float64(u-sl.lastUpdates)/elapsed.Seconds() - sl.updateRate)
		sl.queryRate += alpha * (float64(q-sl.lastQueries)/elapsed.Seconds() - sl.queryRate)
		sl.lastUpdates, sl.lastQueries = u, q
	}
}

// rates returns the update and query rates per second of every shard with
// traffic.
func (l *loads) rates() map[h3.Cell][2]float64 {
	l.mu.RLock()
	defer l.mu.RUnlock()
	out := make(map[h3.Cell][2]float64, len(l.shards))
	for c, sl := range l.shards {
		out[c] = [2]float64{sl.updateRate, sl.queryRate}
	}
	return out
}

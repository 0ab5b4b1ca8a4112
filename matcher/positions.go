package matcher

import (
	"context"
	"sync/atomic"
	"time"

	"github.com/geomatch/geomatch/store"
)

// Positions are written behind: Apply queues each applied position (and
// each move out of a shard) without waiting, and one flusher, owned by Run,
// writes them to the store in per-shard batches. They are warm-up data for a
// shard's next owner, not the truth, so a full queue drops positions (the
// driver's next report brings a fresh one) instead of slowing updates.
//
// The flusher moves queued positions into its pending batch as they come,
// so the queue fills only while a flush (one store round of up to
// positionFlushMax positions, some 10-30 ms on Redis) is under way:
// positionQueueLen holds about 130 ms of a node's updates at 250,000 a
// second, several flushes' worth, for 2.6 MB (80 bytes a position,
// allocated up front and scanned by every collection) instead of the
// 10 MB a queue of 131,072 took.
const (
	positionQueueLen   = 1 << 15
	positionFlushEvery = 500 * time.Millisecond
	positionFlushMax   = 8192
)

// PositionStore keeps the last known position of every driver, grouped by
// shard: what the node needs of the durable store (package store
// implements it, in memory and on Redis).
type PositionStore interface {
	// SavePositions records positions in shard; an older one than the
	// stored one for a driver is ignored.
	SavePositions(ctx context.Context, shard uint64, ps []store.Position) error
	// DeletePositions forgets drivers of shard.
	DeletePositions(ctx context.Context, shard uint64, driverIDs []string) error
	// Positions returns the positions recorded for shard.
	Positions(ctx context.Context, shard uint64) ([]store.Position, error)
	// PositionShards returns up to limit shards with recorded positions,
	// sorted.
	PositionShards(ctx context.Context, limit int) ([]uint64, error)
}

// keepsPositions reports whether st keeps the positions it is given: a
// store may say it does not (store.Memory.WithoutPositions, in a process
// whose matchers hand shards to each other directly), and the node then
// writes none, sparing the queue and the flusher.
func keepsPositions(st PositionStore) bool {
	k, ok := st.(interface{ KeepsPositions() bool })
	return !ok || k.KeepsPositions()
}

// posWrite is one queued position (or, with del, a removal from a shard).
type posWrite struct {
	shard uint64
	pos   store.Position
	del   bool
}

// positionWriter queues and flushes positions.
type positionWriter struct {
	st      PositionStore
	queue   chan posWrite
	dropped atomic.Int64
}

func newPositionWriter(st PositionStore) *positionWriter {
	return &positionWriter{st: st, queue: make(chan posWrite, positionQueueLen)}
}

func (w *positionWriter) put(p posWrite) {
	select {
	case w.queue <- p:
	default:
		w.dropped.Add(1)
	}
}

// run flushes queued positions every positionFlushEvery (or sooner when
// positionFlushMax are waiting) until ctx is done, then flushes what is
// left with a short grace.
func (n *Node) runPositions(ctx context.Context, w *positionWriter) {
	tick := time.NewTicker(positionFlushEvery)
	defer tick.Stop()
	pending := make([]posWrite, 0, positionFlushMax)
	flush := func(ctx context.Context) {
		if len(pending) == 0 {
			return
		}
		saves := map[uint64][]store.Position{}
		dels := map[uint64][]string{}
		for _, p := range pending {
			if p.del {
				dels[p.shard] = append(dels[p.shard], p.pos.DriverID)
			} else {
				saves[p.shard] = append(saves[p.shard], p.pos)
			}
		}
		for shard, ps := range saves {
			if err := w.st.SavePositions(ctx, shard, ps); err != nil {
				n.log.Warn("save positions", "shard", shard, "count", len(ps), "err", err)
			}
		}
		for shard, ids := range dels {
			if err := w.st.DeletePositions(ctx, shard, ids); err != nil {
				n.log.Warn("delete positions", "shard", shard, "count", len(ids), "err", err)
			}
		}
		pending = pending[:0]
		if d := w.dropped.Swap(0); d > 0 {
			n.log.Warn("position queue full, positions dropped", "count", d)
		}
	}
	for {
		select {
		case <-ctx.Done():
			grace, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Second)
			for len(w.queue) > 0 && len(pending) < positionFlushMax {
				pending = append(pending, <-w.queue)
			}
			flush(grace)
			cancel()
			return
		case p := <-w.queue:
			pending = append(pending, p)
			if len(pending) >= positionFlushMax {
				flush(ctx)
			}
		case <-tick.C:
			flush(ctx)
		}
	}
}

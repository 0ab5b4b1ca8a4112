package gcpolicy

import (
	"context"
	"os"
	"runtime/debug"
	"runtime/metrics"
	"sync"
	"time"
)

// Room to grow. GOGC sizes the room the heap may grow into between two
// collections as a share of the live heap, so a fixed GOGC is wrong at
// both ends of a fleet's size: a big index (1M drivers, 250 MB live) gets
// hundreds of megabytes of room it does not need, since the garbage comes
// from the traffic (requests, batches, frames), not from the index; a
// small one gets too little, and the collector runs so often that it
// takes a large share of the CPU. What the traffic needs is a fixed amount
// of room, about what it allocates between two collections at an
// acceptable rate. The tuner therefore sets GOGC after every collection
// so the next one comes once the heap has grown by Headroom, clamped to
// [MinPercent, MaxPercent] of the live heap:
//
//	GOGC = clamp(100 × Headroom / live heap, MinPercent, MaxPercent)
//
// Measured with geomatch bench against geomatch dev (3 matchers, 2 cores):
// at 1M drivers, GOGC 200 gave a peak RSS of 889–917 MiB, GOGC 100
// 642 MiB and GOGC 50 490 MiB, the collector's share of the CPU in the
// ingest phases 0.5–1.2%, 1.1–2.4% and 2.6–4.2%; at 100k drivers GOGC 50
// took 6.3–10.5% and GOGC 100 3.5–4.6%. The tuner lands near GOGC 50 at
// 1M and near 160 at 100k: the low resident set of the first with the low
// collector share of the second.
const (
	// DefaultHeadroom is the room the heap may grow by between two
	// collections, in bytes.
	DefaultHeadroom = 128 << 20
	// MinPercent and MaxPercent bound the GOGC the tuner sets.
	MinPercent = 50
	MaxPercent = 200
)

// tunePoll is how often the tuner looks for a finished collection. A
// collection comes every few hundred milliseconds under load; reading the
// two runtime/metrics samples costs about a microsecond.
const tunePoll = 50 * time.Millisecond

// PercentFor returns the GOGC that gives a heap of live bytes headroom
// bytes of room, within [MinPercent, MaxPercent].
func PercentFor(live, headroom uint64) int {
	if live == 0 {
		return MaxPercent
	}
	p := float64(headroom) * 100 / float64(live) // no overflow at any size
	return int(min(max(p, MinPercent), MaxPercent))
}

// Tuner adjusts GOGC after each collection (see PercentFor). Start it
// with StartTuner.
type Tuner struct {
	headroom uint64
	cancel   context.CancelFunc
	wg       sync.WaitGroup
}

// StartTuner starts a tuner with DefaultHeadroom under ctx unless the
// environment sets GOGC (the operator's setting wins; then it returns a
// tuner that does nothing). Stop it with Stop.
func StartTuner(ctx context.Context) *Tuner {
	t := &Tuner{headroom: DefaultHeadroom}
	if _, ok := os.LookupEnv("GOGC"); ok {
		return t
	}
	ctx, t.cancel = context.WithCancel(ctx)
	t.wg.Add(1)
	go func() {
		defer t.wg.Done()
		t.run(ctx)
	}()
	return t
}

// Stop stops the tuner and waits for it; GOGC stays as last set.
func (t *Tuner) Stop() {
	if t.cancel != nil {
		t.cancel()
	}
	t.wg.Wait()
}

func (t *Tuner) run(ctx context.Context) {
	samples := []metrics.Sample{{Name: "/gc/cycles/total:gc-cycles"}, {Name: "/gc/heap/live:bytes"}}
	tick := time.NewTicker(tunePoll)
	defer tick.Stop()
	var cycles uint64
	current := Current().Percent
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		metrics.Read(samples)
		if samples[0].Value.Kind() != metrics.KindUint64 || samples[1].Value.Kind() != metrics.KindUint64 {
			return // not this runtime's metrics: leave GOGC alone
		}
		if n := samples[0].Value.Uint64(); n != cycles {
			cycles = n
			// Changes under a tenth are left alone: setting GOGC makes
			// the runtime recompute its pacing, which is not worth a
			// small correction.
			if p := PercentFor(samples[1].Value.Uint64(), t.headroom); p*10 < current*9 || p*10 > current*11 {
				debug.SetGCPercent(p)
				current = p
			}
		}
	}
}

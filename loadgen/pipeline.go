package loadgen

import (
	"context"
	"fmt"
	"math/rand/v2"
	"time"
)

// PipelineDepth is the number of nearby searches a pipelined phase sends
// in one round trip.
const PipelineDepth = 16

// PipelinedPhase is the name of the pipelined nearby phase: one client
// sending PipelineDepth searches per round trip.
var PipelinedPhase = fmt.Sprintf("nearby-p%d", PipelineDepth)

// NearbyQuery is one search of a pipeline.
type NearbyQuery struct {
	Lat, Lng, RadiusM float64
	Limit             int
}

// Pipeliner is a target that can send several searches in one round trip
// (RESP pipelining); Run adds the PipelinedPhase for it.
type Pipeliner interface {
	// NearbyPipelined sends qs in one round trip and returns the first
	// error and how many of the searches failed.
	NearbyPipelined(ctx context.Context, qs []NearbyQuery) (failed int, err error)
}

// NearbyStreamPhase is the name of the phase of c clients, each with its
// own RiderService.NearbyStream sending PipelineDepth searches per round
// trip: what a dispatch back end with c workers does.
func NearbyStreamPhase(c int) string { return fmt.Sprintf("nearbystream-%d", c) }

// StreamPipeliner is a Pipeliner whose pipelining is a stream per client
// (geomatch's NearbyStream), so several clients pipeline at once; Run adds
// a NearbyStreamPhase for each concurrency above 1 for it.
type StreamPipeliner interface {
	Pipeliner
	StreamsNearby()
}

// nearbyPipelined runs clients each sending PipelineDepth searches of
// random positions per round trip for cfg.Duration (and at least one
// round trip each); the phase is name. An operation is one search;
// latency is that of the round trip.
func (r *runner) nearbyPipelined(run context.Context, name string, clients int) PhaseResult {
	p, ok := r.t.(Pipeliner)
	if !ok {
		return PhaseResult{Phase: name, FirstError: "the target has no pipelining"}
	}
	ctx, cancel := context.WithTimeout(run, r.cfg.Duration)
	defer cancel()
	return phase(name, clients, func(w *worker, wi int) {
		rng := rand.New(rand.NewPCG(r.cfg.Seed, uint64(wi)+3<<32))
		qs := make([]NearbyQuery, PipelineDepth)
		for ops := 0; ops < MaxOpsPerWorker && (ops == 0 || !over(ctx)); ops += PipelineDepth {
			for i := range qs {
				pt := sample(rng, r.cfg.Dist)
				qs[i] = NearbyQuery{Lat: pt.lat, Lng: pt.lng, RadiusM: r.cfg.RadiusM, Limit: r.cfg.Limit}
			}
			// Calls run to their end under the run's context: the phase's
			// end only stops new ones, so no answer is cut short.
			cctx, ccancel := context.WithTimeout(run, callTimeout)
			start := time.Now()
			failed, err := p.NearbyPipelined(cctx, qs)
			d := time.Since(start)
			ccancel()
			if err != nil && over(run) {
				return // the run was cancelled mid-call: not a target error
			}
			w.h.Record(d)
			w.calls++
			w.ops += PipelineDepth
			if err != nil {
				w.fail(int64(max(failed, 1)), err)
			}
		}
	})
}

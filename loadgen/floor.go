package loadgen

import (
	"context"
	"fmt"
	"time"

	healthpb "google.golang.org/grpc/health/grpc_health_v1"
)

// The floor. A query cannot answer faster than the target's most trivial
// round trip over the same connection and client: gRPC's health check,
// RESP's PING. Each nearby-C phase is preceded by a floor-C phase of those
// calls at the same concurrency, so a report shows in the same run how
// much of a query's latency is the transport and how much the search.

// Floorer is a target with a trivial round trip.
type Floorer interface {
	// Floor makes one trivial call.
	Floor(ctx context.Context) error
}

// FloorPhase is the name of the floor phase at concurrency c.
func FloorPhase(c int) string { return fmt.Sprintf("floor-%d", c) }

// Floor implements Floorer with a gRPC health check.
func (t *GRPCTarget) Floor(ctx context.Context) error {
	_, err := healthpb.NewHealthClient(t.conn.GRPC()).Check(ctx, &healthpb.HealthCheckRequest{})
	return err
}

// Floor implements Floorer with PING.
func (t *RESPTarget) Floor(ctx context.Context) error {
	return t.c.Ping(ctx).Err()
}

// floor runs c workers making trivial calls for cfg.Duration (and at
// least one each).
func (r *runner) floor(run context.Context, fl Floorer, c int) PhaseResult {
	ctx, cancel := context.WithTimeout(run, r.cfg.Duration)
	defer cancel()
	return phase(FloorPhase(c), c, func(w *worker, _ int) {
		for ops := 0; ops < MaxOpsPerWorker && (ops == 0 || !over(ctx)); ops++ {
			cctx, ccancel := context.WithTimeout(run, callTimeout)
			start := time.Now()
			err := fl.Floor(cctx)
			d := time.Since(start)
			ccancel()
			if err != nil && over(run) {
				return // the run was cancelled mid-call: not a target error
			}
			w.h.Record(d)
			w.calls++
			w.ops++
			if err != nil {
				w.fail(1, err)
			}
		}
	})
}

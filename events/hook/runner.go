package hook

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	"github.com/geomatch/geomatch/events"
	geomatchv1 "github.com/geomatch/geomatch/proto/geomatch/v1"
)

// idleSaveInterval bounds how often a runner stores a cursor that only
// moved past events its filter dropped (a cursor after a delivery is
// stored at once).
const idleSaveInterval = time.Second

// runner delivers one hook while its manager holds the hook's lease.
type runner struct {
	def    *geomatchv1.Hook
	filter events.Filter
	cfg    *Config
	log    events.Log
	store  Store
	deps   sinkDeps
	logger *slog.Logger

	delivered, retried, deadLettered prometheus.Counter

	// failingSince[w] is when worker w's deliveries started failing (zero
	// while they succeed); only worker w touches it.
	failingSince []time.Time
	lastSave     time.Time // only the Follow goroutine touches it

	// oldestPendingMs is the TimeMs of the oldest event being delivered,
	// 0 when none is.
	oldestPendingMs atomic.Int64

	mu    sync.Mutex
	prog  Progress      // counters, last error, stored cursor
	acked events.Cursor // done with everything up to here (stored or not yet)
}

func newRunner(def *geomatchv1.Hook, cfg *Config, log events.Log, st Store, deps sinkDeps, met *metrics) *runner {
	id := def.GetHookId()
	f := events.Filter{Sets: def.GetSets(), FenceIDs: def.GetFenceIds()}
	for _, k := range def.GetKinds() {
		f.Kinds = append(f.Kinds, events.Kind(k))
	}
	return &runner{
		def:          def,
		filter:       f,
		cfg:          cfg,
		log:          log,
		store:        st,
		deps:         deps,
		logger:       deps.logger.With("hook", id),
		delivered:    met.delivered.WithLabelValues(id),
		retried:      met.retried.WithLabelValues(id),
		deadLettered: met.deadLettered.WithLabelValues(id),
		failingSince: make([]time.Time, cfg.Concurrency),
	}
}

func (r *runner) id() string { return r.def.GetHookId() }

// run delivers until ctx ends (nil) or the lease is lost or the hook
// deleted (an error). Other failures are retried with backoff.
func (r *runner) run(ctx context.Context) error {
	start, err := r.resume(ctx)
	if err != nil {
		return err
	}
	r.setAcked(start)
	var sink Sink
	for attempt := 0; sink == nil; attempt++ {
		if sink, err = newSink(r.def, r.deps); err != nil {
			r.setError(err)
			r.logger.Warn("hook sink unavailable", "err", err)
			if err := sleep(ctx, r.backoff(attempt)); err != nil {
				return nil
			}
		}
	}
	defer func() {
		if err := sink.Close(); err != nil {
			r.logger.Warn("close hook sink", "err", err)
		}
	}()

	fetch := r.cfg.BatchSize * r.cfg.Concurrency
	for attempt := 0; ; attempt++ {
		err := events.Follow(ctx, r.log, r.ackedCursor(), events.Filter{}, fetch, func(es []events.Entry) error {
			attempt = 0
			return r.handle(ctx, sink, es)
		})
		var trimmed *events.TrimmedError
		switch {
		case ctx.Err() != nil:
			return nil
		case errors.Is(err, ErrLeaseLost):
			return err
		case errors.As(err, &trimmed):
			// Never silently: the log's retention ran out before the sink
			// took these events. They cannot be counted or dead-lettered.
			r.logger.Error("events trimmed from the log before the hook delivered them: resuming at the oldest retained", "from", r.ackedCursor().String(), "to", trimmed.Oldest.String())
			r.setError(err)
			r.setAcked(trimmed.Oldest)
			r.save(ctx, true)
			continue
		case errors.Is(err, events.ErrCursorAhead):
			r.logger.Error("hook cursor is ahead of the event log (log lost events?): resuming at its oldest event", "err", err)
			oldest, oerr := r.log.Oldest(ctx)
			if oerr == nil {
				r.setAcked(oldest)
				continue
			}
			err = oerr
		}
		r.setError(err)
		r.logger.Warn("hook reading the event log failed; retrying", "err", err)
		if err := sleep(ctx, r.backoff(attempt)); err != nil {
			return nil
		}
	}
}

// resume loads the stored progress and returns the cursor to start after.
func (r *runner) resume(ctx context.Context) (events.Cursor, error) {
	for attempt := 0; ; attempt++ {
		p, err := r.store.Progress(ctx, r.id())
		if errors.Is(err, ErrNotFound) {
			return events.Cursor{}, fmt.Errorf("hook %s: %w", r.id(), err)
		}
		if err == nil {
			r.mu.Lock()
			r.prog = p
			r.mu.Unlock()
			c, err := events.ParseCursor(p.Cursor, r.log.Partitions())
			if err == nil {
				return c, nil
			}
			r.logger.Error("stored hook cursor does not fit the event log: starting at its oldest event", "err", err)
			if c, err = r.log.Oldest(ctx); err == nil {
				return c, nil
			}
		}
		r.setError(err)
		r.logger.Warn("hook cannot load its progress; retrying", "err", err)
		if err := sleep(ctx, r.backoff(attempt)); err != nil {
			return events.Cursor{}, err
		}
	}
}

// handle delivers one batch read from the log: the entries the filter
// keeps, grouped by worker (partition modulo Concurrency) so that no two
// concurrent deliveries share a partition, then stores the cursor after
// the batch. It returns only when every kept entry is delivered or
// dead-lettered, or when ctx ends.
func (r *runner) handle(ctx context.Context, sink Sink, entries []events.Entry) error {
	last := entries[len(entries)-1].Cursor
	n, conc := r.log.Partitions(), r.cfg.Concurrency
	groups := make([][]events.Entry, conc)
	oldest, kept := int64(0), 0
	for _, e := range entries {
		if !r.filter.Match(&e.Record) {
			continue
		}
		w := events.PartitionOf(e.Key, n) % conc
		groups[w] = append(groups[w], e)
		if kept == 0 || e.TimeMs < oldest {
			oldest = e.TimeMs
		}
		kept++
	}
	if kept == 0 {
		r.setAcked(last)
		return r.save(ctx, false)
	}
	r.oldestPendingMs.Store(max(oldest, 1))
	defer r.oldestPendingMs.Store(0)

	errs := make([]error, conc)
	var wg sync.WaitGroup
	for w, g := range groups {
		if len(g) > 0 {
			wg.Go(func() { errs[w] = r.deliverGroup(ctx, sink, w, g) })
		}
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return err
	}
	r.setAcked(last)
	return r.save(ctx, true)
}

// deliverGroup delivers worker w's entries in order, in batches of at most
// BatchSize events and BatchBytes of JSON.
func (r *runner) deliverGroup(ctx context.Context, sink Sink, w int, entries []events.Entry) error {
	batch := make([]Delivery, 0, min(len(entries), r.cfg.BatchSize))
	bytes := 0
	var bad []DeadLetter
	for _, e := range entries {
		d, err := toDelivery(e)
		if err != nil {
			bad = append(bad, DeadLetter{EventID: e.ID, Key: e.Key, Error: err.Error(), TimeMs: time.Now().UnixMilli()})
			continue
		}
		if len(batch) > 0 && (len(batch) == r.cfg.BatchSize || bytes+len(d.JSON) > r.cfg.BatchBytes) {
			if err := r.deliver(ctx, sink, w, batch); err != nil {
				return err
			}
			batch, bytes = batch[:0], 0
		}
		batch = append(batch, d)
		bytes += len(d.JSON)
	}
	if len(batch) > 0 {
		if err := r.deliver(ctx, sink, w, batch); err != nil {
			return err
		}
	}
	if len(bad) > 0 {
		r.logger.Error("hook events with undecodable payloads", "events", len(bad), "first", bad[0].EventID, "err", bad[0].Error)
		return r.deadLetter(ctx, bad)
	}
	return nil
}

// deliver sends one batch until the sink takes it, retrying with backoff,
// or dead-letters it once worker w's deliveries have been failing for
// DeadLetterAfter. It fails only when ctx ends.
func (r *runner) deliver(ctx context.Context, sink Sink, w int, batch []Delivery) error {
	for attempt := 0; ; attempt++ {
		err := sink.Deliver(ctx, batch)
		if err == nil {
			r.failingSince[w] = time.Time{}
			r.mu.Lock()
			r.prog.Delivered += int64(len(batch))
			r.prog.LastDeliveredMs = time.Now().UnixMilli()
			r.prog.LastError = ""
			r.mu.Unlock()
			r.delivered.Add(float64(len(batch)))
			return nil
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		r.setError(err)
		now := time.Now()
		if r.failingSince[w].IsZero() {
			r.failingSince[w] = now
		}
		if failing := now.Sub(r.failingSince[w]); failing >= r.cfg.DeadLetterAfter {
			r.logger.Warn("hook gives up on a batch: dead-lettering it", "events", len(batch), "first", batch[0].ID, "failing_for", failing.Round(time.Millisecond), "err", err)
			letters := make([]DeadLetter, len(batch))
			for i, d := range batch {
				letters[i] = DeadLetter{EventID: d.ID, Key: d.Key, JSON: d.JSON, Error: err.Error(), TimeMs: now.UnixMilli()}
			}
			return r.deadLetter(ctx, letters)
		}
		r.mu.Lock()
		r.prog.Retried++
		r.mu.Unlock()
		r.retried.Inc()
		if attempt == 0 {
			r.logger.Info("hook delivery failed; retrying with backoff", "events", len(batch), "err", err)
		}
		if err := sleep(ctx, r.backoff(attempt)); err != nil {
			return err
		}
	}
}

// deadLetter appends letters to the store's dead-letter stream, retrying
// until the store takes them (or ctx ends): an event is never dropped
// without a trace.
func (r *runner) deadLetter(ctx context.Context, letters []DeadLetter) error {
	for attempt := 0; ; attempt++ {
		err := r.store.DeadLetter(ctx, r.id(), letters)
		if err == nil {
			r.mu.Lock()
			r.prog.DeadLettered += int64(len(letters))
			r.mu.Unlock()
			r.deadLettered.Add(float64(len(letters)))
			return nil
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		r.logger.Error("hook cannot store dead letters; retrying", "events", len(letters), "err", err)
		if err := sleep(ctx, r.backoff(attempt)); err != nil {
			return err
		}
	}
}

// save stores the progress: always after a delivery, at most every
// idleSaveInterval when the cursor only moved past filtered-out events.
// Only a lost lease is returned (it stops the runner); other failures are
// logged, and the next save catches up.
func (r *runner) save(ctx context.Context, delivered bool) error {
	if !delivered && time.Since(r.lastSave) < idleSaveInterval {
		return nil
	}
	r.mu.Lock()
	r.prog.Cursor = r.acked.String()
	p := r.prog
	r.mu.Unlock()
	err := r.store.SaveProgress(ctx, r.id(), r.deps.cfg.Owner, p)
	switch {
	case err == nil:
		r.lastSave = time.Now()
		return nil
	case errors.Is(err, ErrLeaseLost):
		return err
	case ctx.Err() != nil:
		return ctx.Err()
	}
	r.setError(err)
	r.logger.Warn("hook cannot store its progress (duplicates after a restart, no loss)", "err", err)
	return nil
}

func (r *runner) setAcked(c events.Cursor) {
	r.mu.Lock()
	r.acked = c
	r.mu.Unlock()
}

func (r *runner) ackedCursor() events.Cursor {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.acked
}

func (r *runner) setError(err error) {
	r.mu.Lock()
	r.prog.LastError = err.Error()
	r.mu.Unlock()
}

// snapshot returns the progress, the acked cursor and the age of the
// oldest event being delivered.
func (r *runner) snapshot(now time.Time) (Progress, events.Cursor, time.Duration) {
	r.mu.Lock()
	p, c := r.prog, r.acked
	r.mu.Unlock()
	var lag time.Duration
	if ms := r.oldestPendingMs.Load(); ms > 0 {
		lag = max(now.Sub(time.UnixMilli(ms)), 0)
	}
	return p, c, lag
}

// backoff is full jitter: uniform in [0, min(BackoffMax, BackoffMin·2^attempt)).
func (r *runner) backoff(attempt int) time.Duration {
	return backoff(r.cfg.BackoffMin, r.cfg.BackoffMax, attempt)
}

func backoff(lo, hi time.Duration, attempt int) time.Duration {
	ceil := hi
	if attempt < 32 && lo<<attempt < hi && lo<<attempt > 0 {
		ceil = lo << attempt
	}
	if ceil <= 0 {
		return 0
	}
	return rand.N(ceil)
}

// sleep waits d or until ctx ends (then returning its error).
func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// toDelivery turns a log entry into what a sink sends: the event with its
// cursor, as protojson.
func toDelivery(e events.Entry) (Delivery, error) {
	var ev geomatchv1.Event
	if err := proto.Unmarshal(e.Payload, &ev); err != nil {
		return Delivery{}, fmt.Errorf("decode event %s: %w", e.ID, err)
	}
	ev.Cursor = e.Cursor.String()
	if ev.EventId == "" {
		ev.EventId = e.ID
	}
	b, err := protojson.Marshal(&ev)
	if err != nil {
		return Delivery{}, fmt.Errorf("encode event %s: %w", e.ID, err)
	}
	return Delivery{ID: e.ID, Key: e.Key, JSON: b}, nil
}

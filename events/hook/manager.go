package hook

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/protobuf/proto"

	"github.com/geomatch/geomatch/events"
	geomatchv1 "github.com/geomatch/geomatch/proto/geomatch/v1"
)

// secretBytes is the size of a generated webhook secret (hex-encoded:
// 64 characters).
const secretBytes = 32

// releaseTimeout bounds the lease releases of a stopping Manager.
const releaseTimeout = 2 * time.Second

// ErrInvalid is matched (errors.Is) by the errors of Put and Delete that
// reject their input; the message names the field. The gRPC layer maps it
// to InvalidArgument.
var ErrInvalid = errors.New("invalid hook")

// invalidError marks a validation error without changing its message.
type invalidError struct{ err error }

func (e *invalidError) Error() string        { return e.err.Error() }
func (e *invalidError) Unwrap() error        { return e.err }
func (e *invalidError) Is(target error) bool { return target == ErrInvalid }

// Manager runs the hooks of a Store: every router runs one, and the lease
// of each hook lets exactly one of them deliver it at a time. Put, Delete
// and List serve the EventService's hook calls.
type Manager struct {
	cfg    Config
	log    events.Log
	store  Store
	logger *slog.Logger
	met    *metrics
	deps   sinkDeps

	wake    chan struct{} // Put and Delete nudge Run (buffer of 1)
	started atomic.Bool

	mu      sync.Mutex
	running map[string]*running // hooks this manager delivers
}

// running is one runner of a Manager.
type running struct {
	r       *runner
	cancel  context.CancelFunc
	done    chan struct{} // closed when the runner's goroutine ends
	renewed time.Time     // last successful lease renewal
}

// NewManager returns a manager of the hooks in st, delivering events of
// log. logger may be nil (slog.Default()); reg may be nil (metrics kept
// but not registered).
func NewManager(cfg Config, log events.Log, st Store, logger *slog.Logger, reg prometheus.Registerer) (*Manager, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	if logger == nil {
		logger = slog.Default()
	}
	met, err := newMetrics(reg)
	if err != nil {
		return nil, err
	}
	m := &Manager{
		cfg:     cfg,
		log:     log,
		store:   st,
		logger:  logger,
		met:     met,
		wake:    make(chan struct{}, 1),
		running: map[string]*running{},
	}
	m.deps = sinkDeps{http: newHTTPClient(), cfg: &m.cfg, logger: logger}
	return m, nil
}

// Owner is the name this manager holds leases under.
func (m *Manager) Owner() string { return m.cfg.Owner }

// Run delivers hooks until ctx ends: every PollInterval (and at once after
// a Put or Delete here) it reads the hook definitions, stops the runners
// of deleted or changed hooks and of lost leases, renews its leases,
// acquires free ones and starts their runners, and updates the lag
// gauges. It returns nil after every runner has stopped and its leases are
// released. Run may be called once.
func (m *Manager) Run(ctx context.Context) error {
	if m.started.Swap(true) {
		return errors.New("hook manager: Run called twice")
	}
	var wg sync.WaitGroup
	defer func() {
		m.mu.Lock()
		all := make(map[string]*running, len(m.running))
		for id, h := range m.running {
			h.cancel()
			all[id] = h
		}
		m.mu.Unlock()
		wg.Wait()
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), releaseTimeout)
		defer cancel()
		for id := range all {
			m.remove(rctx, id, false)
		}
		m.deps.http.CloseIdleConnections()
	}()
	t := time.NewTicker(m.cfg.PollInterval)
	defer t.Stop()
	for {
		m.reconcile(ctx, &wg)
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		case <-m.wake:
		}
	}
}

// reconcile is one round of Run.
func (m *Manager) reconcile(ctx context.Context, wg *sync.WaitGroup) {
	defs, err := m.store.Hooks(ctx)
	if err != nil {
		if ctx.Err() == nil {
			m.logger.Warn("hook manager cannot list hooks", "err", err)
		}
	}
	want := make(map[string]*geomatchv1.Hook, len(defs))
	for _, d := range defs {
		want[d.GetHookId()] = d
	}
	now := time.Now()

	m.mu.Lock()
	ids := make([]string, 0, len(m.running))
	for id := range m.running {
		ids = append(ids, id)
	}
	m.mu.Unlock()

	// Stop what must stop, renew the rest.
	for _, id := range ids {
		h := m.get(id)
		def, ok := want[id]
		switch {
		case isDone(h.done):
			m.logger.Info("hook runner ended; restarting it if the lease allows", "hook", id)
			m.stop(ctx, id, false)
			continue
		case err == nil && !ok:
			m.logger.Info("hook deleted: stopping its runner", "hook", id)
			m.stop(ctx, id, true)
			continue
		case err == nil && !proto.Equal(def, h.r.def):
			m.logger.Info("hook changed: restarting its runner", "hook", id)
			m.stop(ctx, id, false)
			continue
		}
		held, lerr := m.store.Lease(ctx, id, m.cfg.Owner, m.cfg.LeaseTTL)
		switch {
		case lerr == nil && held:
			h.renewed = now
		case lerr == nil:
			m.logger.Warn("hook lease taken by another manager: stopping its runner", "hook", id)
			m.stop(ctx, id, false)
		case now.Sub(h.renewed) > m.cfg.LeaseTTL-m.cfg.PollInterval:
			m.logger.Warn("hook lease not renewed in time: stopping its runner", "hook", id, "err", lerr)
			m.stop(ctx, id, false)
		}
	}

	// Start the hooks whose lease is free.
	for id, def := range want {
		if ctx.Err() != nil {
			return
		}
		m.mu.Lock()
		_, busy := m.running[id]
		full := len(m.running) >= m.cfg.MaxHooks
		m.mu.Unlock()
		if busy || full {
			continue
		}
		held, lerr := m.store.Lease(ctx, id, m.cfg.Owner, m.cfg.LeaseTTL)
		if lerr != nil {
			m.logger.Warn("hook lease", "hook", id, "err", lerr)
			continue
		}
		if held {
			m.start(ctx, wg, def, now)
		}
	}
	m.updateLag(ctx, now)
}

// start runs a runner for def, whose lease this manager holds.
func (m *Manager) start(ctx context.Context, wg *sync.WaitGroup, def *geomatchv1.Hook, now time.Time) {
	rctx, cancel := context.WithCancel(ctx)
	h := &running{r: newRunner(def, &m.cfg, m.log, m.store, m.deps, m.met), cancel: cancel, done: make(chan struct{}), renewed: now}
	m.mu.Lock()
	m.running[def.GetHookId()] = h
	m.mu.Unlock()
	m.logger.Info("hook runner started", "hook", def.GetHookId(), "endpoint", endpointForLog(def.GetEndpoint()))
	wg.Go(func() {
		defer close(h.done)
		if err := h.r.run(rctx); err != nil {
			m.logger.Warn("hook runner stopped", "hook", def.GetHookId(), "err", err)
		}
	})
}

// stop cancels a runner, waits for it and releases its lease (forgetting
// the hook's series when it was deleted).
func (m *Manager) stop(ctx context.Context, id string, deleted bool) {
	h := m.get(id)
	h.cancel()
	<-h.done
	m.remove(ctx, id, deleted)
}

// remove forgets a stopped runner and releases its lease.
func (m *Manager) remove(ctx context.Context, id string, deleted bool) {
	m.mu.Lock()
	delete(m.running, id)
	m.mu.Unlock()
	if err := m.store.Release(ctx, id, m.cfg.Owner); err != nil && !deleted {
		m.logger.Warn("hook lease release", "hook", id, "err", err)
	}
	if deleted {
		m.met.forget(id)
	}
}

func (m *Manager) get(id string) *running {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.running[id]
}

// updateLag sets the lag gauges of the hooks running here.
func (m *Manager) updateLag(ctx context.Context, now time.Time) {
	head, err := m.log.Head(ctx)
	if err != nil {
		return
	}
	m.mu.Lock()
	rs := make([]*runner, 0, len(m.running))
	for _, h := range m.running {
		rs = append(rs, h.r)
	}
	m.mu.Unlock()
	for _, r := range rs {
		_, acked, age := r.snapshot(now)
		m.met.lagEvents.WithLabelValues(r.id()).Set(float64(m.lagEvents(ctx, acked, head)))
		m.met.lagSeconds.WithLabelValues(r.id()).Set(age.Seconds())
	}
}

// LagCounter is implemented by a log that can count its entries between
// two cursors; the lag of hooks on other logs is estimated (see the
// package doc).
type LagCounter interface {
	// CountBetween returns the number of entries after from up to to.
	CountBetween(ctx context.Context, from, to events.Cursor) (int64, error)
}

// lagEvents returns the events between acked and head: counted by the log
// when it can, exact on a log numbering its entries (the in-memory log),
// and otherwise 1 per partition behind (a lower bound).
func (m *Manager) lagEvents(ctx context.Context, acked, head events.Cursor) int64 {
	if lc, ok := m.log.(LagCounter); ok {
		if n, err := lc.CountBetween(ctx, acked, head); err == nil {
			return n
		}
	}
	var n int64
	for p := range head.Partitions() {
		a, h := acked.Position(p), head.Position(p)
		switch {
		case !a.Less(h):
		case a.Ms == 0 && h.Ms == 0:
			n += int64(h.Seq - a.Seq)
		default:
			n++
		}
	}
	return n
}

// Put validates h and creates or replaces it, returning the stored
// definition. A webhook without a secret gets a generated one (32 random
// bytes, hex), returned here only: List does not show secrets. A new hook
// starts after the log's newest event, or before its oldest retained one
// when from_oldest is set; a replaced hook keeps its progress. Errors:
// ErrInvalid (naming the field), ErrTooManyHooks, or the store's.
func (m *Manager) Put(ctx context.Context, h *geomatchv1.Hook) (*geomatchv1.Hook, error) {
	if err := Validate(h); err != nil {
		return nil, &invalidError{err}
	}
	h = proto.Clone(h).(*geomatchv1.Hook)
	h.Stats = nil
	if isWebhook(h.GetEndpoint()) && h.GetSecret() == "" {
		var b [secretBytes]byte
		if _, err := rand.Read(b[:]); err != nil {
			return nil, fmt.Errorf("put hook %s: generate a secret: %w", h.GetHookId(), err)
		}
		h.Secret = hex.EncodeToString(b[:])
	}
	var start events.Cursor
	var err error
	if h.GetFromOldest() {
		start, err = m.log.Oldest(ctx)
	} else {
		start, err = m.log.Head(ctx)
	}
	if err != nil {
		return nil, fmt.Errorf("put hook %s: start cursor: %w", h.GetHookId(), err)
	}
	if err := m.store.PutHook(ctx, h, Progress{Cursor: start.String()}, m.cfg.MaxHooks); err != nil {
		return nil, err
	}
	m.nudge()
	return h, nil
}

// Delete removes a hook; its runner stops at once (on the router running
// it: within a PollInterval). Errors: ErrInvalid, ErrNotFound, or the
// store's.
func (m *Manager) Delete(ctx context.Context, id string) error {
	if err := validateID(id); err != nil {
		return &invalidError{err}
	}
	if err := m.store.DeleteHook(ctx, id); err != nil {
		return err
	}
	m.nudge()
	if m.get(id) == nil {
		m.met.forget(id)
	}
	return nil
}

// List returns every hook, sorted by id, without secrets, with its stats:
// live from the runner when this manager delivers it, as last stored
// otherwise (lag_seconds is then 0).
func (m *Manager) List(ctx context.Context) ([]*geomatchv1.Hook, error) {
	defs, err := m.store.Hooks(ctx)
	if err != nil {
		return nil, err
	}
	head, err := m.log.Head(ctx)
	if err != nil {
		return nil, fmt.Errorf("list hooks: log head: %w", err)
	}
	now := time.Now()
	out := make([]*geomatchv1.Hook, 0, len(defs))
	for _, d := range defs {
		d.Secret = ""
		var (
			p     Progress
			acked events.Cursor
			age   time.Duration
		)
		if h := m.get(d.GetHookId()); h != nil {
			p, acked, age = h.r.snapshot(now)
		} else {
			p, err = m.store.Progress(ctx, d.GetHookId())
			if errors.Is(err, ErrNotFound) {
				continue // deleted meanwhile
			}
			if err != nil {
				return nil, err
			}
			acked, _ = events.ParseCursor(p.Cursor, m.log.Partitions())
		}
		d.Stats = &geomatchv1.HookStats{
			Delivered:       p.Delivered,
			Retried:         p.Retried,
			DeadLettered:    p.DeadLettered,
			LagEvents:       m.lagEvents(ctx, acked, head),
			LagSeconds:      age.Seconds(),
			LastError:       p.LastError,
			LastDeliveredMs: p.LastDeliveredMs,
		}
		out = append(out, d)
	}
	slices.SortFunc(out, func(a, b *geomatchv1.Hook) int { return strings.Compare(a.GetHookId(), b.GetHookId()) })
	return out, nil
}

// nudge wakes Run without blocking.
func (m *Manager) nudge() {
	select {
	case m.wake <- struct{}{}:
	default:
	}
}

func isDone(c <-chan struct{}) bool {
	select {
	case <-c:
		return true
	default:
		return false
	}
}

func isWebhook(endpoint string) bool {
	ep, err := ParseEndpoint(endpoint)
	return err == nil && (ep.Scheme == SchemeHTTP || ep.Scheme == SchemeHTTPS)
}

// endpointForLog is the endpoint without credentials.
func endpointForLog(s string) string {
	ep, err := ParseEndpoint(s)
	if err != nil {
		return "?"
	}
	return ep.String()
}

package membership

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/consul/api"

	"github.com/geomatch/geomatch/shardmap"
)

// WriterConfig configures a ring writer candidate.
type WriterConfig struct {
	// Consul locates the cluster's keys and service.
	Consul ConsulConfig
	// NodeID is the candidate's member id (recorded as the writer).
	NodeID string
	// CheckIDs are the candidate's own health checks (Registration.CheckIDs):
	// its writer session is tied to them, so a writer that dies loses the
	// lock as soon as one goes critical (within a second with an alive
	// check, the check's TTL without), not after a session TTL.
	CheckIDs []string
	// Defaults are written as the settings when there are none yet.
	Defaults Settings
	// Active returns the shards that hold drivers under m (nil m: none
	// known yet), for bounded-load placement; recorded are those the ring
	// record in force lists (Record.Active), for the members that do not
	// answer. May be nil.
	Active func(ctx context.Context, m *shardmap.Map, recorded []shardmap.Cell) ([]shardmap.Cell, error)
	// KnownEpoch, when set, returns the newest epoch this process has seen
	// (its ring watch): the writer never writes an epoch at or below it, so
	// a Consul that lost its data does not send the cluster back to epoch
	// 1, which every router and matcher would ignore.
	KnownEpoch func() uint64
	// Settle is how long the writer waits after a change for more changes
	// before it writes (one epoch for a burst); default 500 ms.
	Settle time.Duration
	// LockDelay is the Consul lock-delay of the writer session: how long
	// the lock stays unavailable after its holder died; default 200 ms.
	LockDelay time.Duration
	// CensusQuiet is how long after a ring was written a change that only
	// the census of active shards calls for (the same members and
	// settings; bounded-load placement moved) waits; default 10 s. Warm-ups
	// that follow a ring change make the census flicker (a shard just
	// gained shows no drivers until its first update), and a second ring
	// change in the middle of them moves shards for that alone.
	CensusQuiet time.Duration
	// DepartureGrace is how long members that went critical together, half
	// of the ring or more, are kept on it (see holdBack: more likely a
	// Consul pause than half the fleet dying); default 3 s, longer than a
	// check TTL so that their next passes come first.
	DepartureGrace time.Duration
}

// Writer is one candidate for ring writer. Every matcher runs one; the one
// holding the Consul lock (a session tied to its health check) composes the
// ring document from the settings and the healthy matchers whenever either
// changes, and writes it with check-and-set and a new epoch.
type Writer struct {
	client  *api.Client
	cfg     WriterConfig
	log     *slog.Logger
	leading atomic.Bool

	mu      sync.Mutex
	session string

	goneSince map[string]time.Time // members missing from the healthy list, since when (lead's goroutine only)
	recheck   chan struct{}        // a held-back departure's grace or the census quiet ended
	// scheduleRecheck signals recheck after a delay (set by lead).
	scheduleRecheck func(time.Duration)
}

// NewWriter returns a writer candidate.
func NewWriter(client *api.Client, cfg WriterConfig, log *slog.Logger) *Writer {
	cfg.Consul.fill()
	if cfg.Settle <= 0 {
		cfg.Settle = 500 * time.Millisecond
	}
	if cfg.LockDelay <= 0 {
		cfg.LockDelay = 200 * time.Millisecond
	}
	if cfg.DepartureGrace <= 0 {
		cfg.DepartureGrace = 3 * time.Second
	}
	if cfg.CensusQuiet <= 0 {
		cfg.CensusQuiet = 10 * time.Second
	}
	return &Writer{client: client, cfg: cfg, log: log.With("role", "ring-writer"),
		goneSince: make(map[string]time.Time), recheck: make(chan struct{}, 1)}
}

// Leading reports whether this candidate holds the writer lock.
func (w *Writer) Leading() bool { return w.leading.Load() }

// Run competes for the writer lock and, while holding it, keeps the ring
// current, until ctx is done. It then releases the lock.
func (w *Writer) Run(ctx context.Context) error {
	backoff := 200 * time.Millisecond
	for ctx.Err() == nil {
		sid, err := w.createSession(ctx)
		if err != nil {
			if ctx.Err() == nil {
				w.log.Debug("writer session", "err", err)
			}
			sleep(ctx, backoff)
			backoff = min(2*backoff, 2*time.Second)
			continue
		}
		backoff = 200 * time.Millisecond
		if w.acquire(ctx, sid) {
			w.lead(ctx, sid)
		}
		w.destroySession(sid)
	}
	return nil
}

func (w *Writer) createSession(ctx context.Context) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, w.cfg.Consul.Timeout)
	defer cancel()
	se := &api.SessionEntry{
		Name:          "geomatch ring writer " + w.cfg.NodeID,
		Behavior:      api.SessionBehaviorRelease,
		LockDelay:     w.cfg.LockDelay,
		NodeChecks:    []string{"serfHealth"},
		ServiceChecks: serviceChecks(w.cfg.CheckIDs),
	}
	sid, _, err := w.client.Session().Create(se, (&api.WriteOptions{}).WithContext(ctx))
	if err != nil {
		return "", fmt.Errorf("create writer session: %w", err)
	}
	w.mu.Lock()
	w.session = sid
	w.mu.Unlock()
	return sid, nil
}

func serviceChecks(ids []string) []api.ServiceCheck {
	out := make([]api.ServiceCheck, len(ids))
	for i, id := range ids {
		out[i] = api.ServiceCheck{ID: id}
	}
	return out
}

// destroySession ends sid, which releases the lock if it is held.
func (w *Writer) destroySession(sid string) {
	ctx, cancel := context.WithTimeout(context.Background(), w.cfg.Consul.Timeout)
	defer cancel()
	if _, err := w.client.Session().Destroy(sid, (&api.WriteOptions{}).WithContext(ctx)); err != nil {
		w.log.Debug("destroy writer session", "err", err)
	}
	w.mu.Lock()
	w.session = ""
	w.mu.Unlock()
}

// acquire takes the lock with sid, waiting while another candidate holds
// it. It returns false when ctx is done or sid became invalid.
func (w *Writer) acquire(ctx context.Context, sid string) bool {
	key := w.cfg.Consul.WriterKey()
	for ctx.Err() == nil {
		actx, cancel := context.WithTimeout(ctx, w.cfg.Consul.Timeout)
		ok, _, err := w.client.KV().Acquire(&api.KVPair{Key: key, Value: []byte(w.cfg.NodeID), Session: sid}, (&api.WriteOptions{}).WithContext(actx))
		cancel()
		if err != nil {
			if strings.Contains(err.Error(), "invalid session") {
				return false
			}
			sleep(ctx, time.Second)
			continue
		}
		if ok {
			return true
		}
		// Held (or in its lock-delay): wait until the holder goes.
		var index uint64
		for ctx.Err() == nil {
			q, cancel := blockingQuery(ctx, index, false)
			pair, meta, err := w.client.KV().Get(key, q)
			cancel()
			if err != nil {
				sleep(ctx, time.Second)
				break
			}
			index = meta.LastIndex
			if pair == nil || pair.Session == "" {
				sleep(ctx, w.cfg.LockDelay)
				break
			}
		}
	}
	return false
}

// lead keeps the ring current while the lock is held.
func (w *Writer) lead(ctx context.Context, sid string) {
	w.leading.Store(true)
	defer w.leading.Store(false)
	w.log.Info("elected ring writer", "node", w.cfg.NodeID)
	defer w.log.Info("no longer ring writer", "node", w.cfg.NodeID)
	clear(w.goneSince) // a new writer judges departures afresh
	var recheckTimer *time.Timer
	defer func() {
		if recheckTimer != nil {
			recheckTimer.Stop()
		}
	}()
	var recheckDue time.Time
	w.scheduleRecheck = func(d time.Duration) {
		due := time.Now().Add(d)
		if recheckTimer != nil {
			if time.Now().Before(recheckDue) && recheckDue.Before(due) {
				return // an earlier recheck is pending: it recomputes everything
			}
			recheckTimer.Stop()
		}
		recheckDue = due
		recheckTimer = time.AfterFunc(d, func() {
			select {
			case w.recheck <- struct{}{}:
			default:
			}
		})
	}

	lctx, cancel := context.WithCancel(ctx)
	reasons := make(chan string, 3)
	signal := func(r string) {
		select {
		case reasons <- r:
		default: // a recompute is pending anyway
		}
	}
	// exits carries "a member's process is gone" (its alive check is
	// critical): the ring is written at once, without the settle, since
	// every moment its shards stay on a dead node is a moment no one
	// serves them.
	exits := make(chan string, 1)
	var wg sync.WaitGroup
	defer wg.Wait()
	defer cancel() // first: the watchers stop, then they are waited for
	watch := func(name string, get func(q *api.QueryOptions) (uint64, bool, error)) {
		defer wg.Done()
		var index uint64
		for lctx.Err() == nil {
			q, qcancel := blockingQuery(lctx, index, false)
			next, lost, err := get(q)
			qcancel()
			if lost {
				w.log.Warn("writer lock lost")
				cancel()
				return
			}
			if err != nil {
				sleep(lctx, time.Second)
				continue
			}
			if next < index {
				next = 0
			}
			if index != 0 && next != index {
				signal(name)
			}
			index = next
		}
	}
	wg.Add(3)
	exited := map[string]bool{} // members seen exited (the watcher's own)
	go watch("matchers changed", func(q *api.QueryOptions) (uint64, bool, error) {
		entries, meta, err := w.client.Health().Service(w.cfg.Consul.Service, "", false, q)
		if err != nil {
			return 0, false, err
		}
		_, now := readHealth(entries)
		for id := range now {
			if !exited[id] {
				select {
				case exits <- "matcher process gone: " + id:
				default:
				}
			}
		}
		exited = now
		return meta.LastIndex, false, nil
	})
	go watch("settings changed", func(q *api.QueryOptions) (uint64, bool, error) {
		_, meta, err := w.client.KV().Get(w.cfg.Consul.SettingsKey(), q)
		if err != nil {
			return 0, false, err
		}
		return meta.LastIndex, false, nil
	})
	go watch("lock", func(q *api.QueryOptions) (uint64, bool, error) {
		pair, meta, err := w.client.KV().Get(w.cfg.Consul.WriterKey(), q)
		if err != nil {
			return 0, false, err
		}
		return meta.LastIndex, pair == nil || pair.Session != sid, nil
	})

	reason := "writer elected"
	for lctx.Err() == nil {
		if err := w.recompute(lctx, reason); err != nil && lctx.Err() == nil {
			w.log.Warn("ring recompute failed; retrying", "reason", reason, "err", err)
			signal(reason)
			sleep(lctx, time.Second)
		}
		select {
		case <-lctx.Done():
			return
		case reason = <-reasons:
		case reason = <-exits:
			continue // no settle
		case <-w.recheck:
			reason = "recheck (held-back departures, census)"
		}
		// Settle: one epoch for a burst of changes.
		t := time.NewTimer(w.cfg.Settle)
	settle:
		for {
			select {
			case <-lctx.Done():
				t.Stop()
				return
			case r := <-reasons:
				if !strings.Contains(reason, r) {
					reason += ", " + r
				}
			case r := <-exits:
				reason += ", " + r
				t.Stop()
				break settle
			case <-t.C:
				break settle
			}
		}
	}
}

// recompute composes the ring from the settings and the healthy matchers
// and writes it if anything changed.
func (w *Writer) recompute(ctx context.Context, reason string) error {
	cfg := w.cfg.Consul
	settings, sIndex, found, err := ReadSettings(ctx, w.client, cfg)
	if err != nil {
		return err
	}
	if !found {
		if err := w.cfg.Defaults.Validate(); err != nil {
			return fmt.Errorf("default ring settings: %w", err)
		}
		val, err := json.Marshal(w.cfg.Defaults)
		if err != nil {
			return fmt.Errorf("encode ring settings: %w", err)
		}
		wctx, cancel := context.WithTimeout(ctx, cfg.Timeout)
		_, _, err = w.client.KV().CAS(&api.KVPair{Key: cfg.SettingsKey(), Value: val, ModifyIndex: 0}, (&api.WriteOptions{}).WithContext(wctx))
		cancel()
		if err != nil {
			return fmt.Errorf("create ring settings: %w", err)
		}
		if settings, sIndex, _, err = ReadSettings(ctx, w.client, cfg); err != nil {
			return err
		}
		w.log.Info("created ring settings", "key", cfg.SettingsKey())
	}
	healthy, exited, err := matcherHealth(ctx, w.client, cfg)
	if err != nil {
		return err
	}
	rec, rIndex, haveRing, err := ReadRing(ctx, w.client, cfg)
	if err != nil {
		return err
	}
	if len(healthy) == 0 {
		if haveRing {
			w.log.Error("no healthy matcher: keeping the current ring", "epoch", rec.Doc.Epoch)
		}
		return nil
	}
	var cur *shardmap.Map
	if haveRing {
		if cur, err = shardmap.NewMap(rec.Doc); err != nil {
			w.log.Error("current ring record is invalid; replacing it", "err", err)
			cur = nil
		}
	}
	if cur != nil {
		keep, recheck := holdBack(cur.Members(), healthy, exited, w.goneSince, time.Now(), w.cfg.DepartureGrace)
		if len(keep) > 0 {
			w.log.Warn("many matchers went critical at once (a Consul pause?): keeping them on the ring for a grace",
				"held_back", len(keep), "members", len(cur.Members()), "grace", w.cfg.DepartureGrace)
			healthy = append(healthy, keep...)
			if w.scheduleRecheck != nil {
				w.scheduleRecheck(recheck)
			}
		}
	}
	var active []shardmap.Cell
	if w.cfg.Active != nil && settings.Balance >= 1 {
		if active, err = w.cfg.Active(ctx, cur, rec.Active); err != nil {
			w.log.Warn("active shards unknown; placing by the ring alone", "err", err)
		}
	}
	epoch := rec.Doc.Epoch + 1
	if w.cfg.KnownEpoch != nil {
		epoch = max(epoch, w.cfg.KnownEpoch()+1)
	}
	slices.Sort(active)
	active = slices.Compact(active)
	doc, err := Compose(settings, healthy, active, epoch)
	if err != nil {
		return err
	}
	if wait := censusWait(doc, rec, haveRing, sIndex, w.cfg.CensusQuiet, time.Now()); wait > 0 {
		if w.scheduleRecheck != nil {
			w.scheduleRecheck(wait)
		}
		return nil
	}
	if haveRing && sameRing(doc, rec.Doc) && rec.Doc.Epoch+1 == epoch {
		if rec.SettingsIndex >= sIndex {
			return nil
		}
		doc.Epoch = rec.Doc.Epoch // nothing moves: acknowledge the settings only
	}
	next := Record{Doc: doc, Writer: w.cfg.NodeID, SettingsIndex: sIndex, Reason: reason, WrittenAt: time.Now().UTC(), Active: active}
	val, err := json.Marshal(next)
	if err != nil {
		return fmt.Errorf("encode ring record: %w", err)
	}
	wctx, cancel := context.WithTimeout(ctx, cfg.Timeout)
	defer cancel()
	ok, _, err := w.client.KV().CAS(&api.KVPair{Key: cfg.RingKey(), Value: val, ModifyIndex: rIndex}, (&api.WriteOptions{}).WithContext(wctx))
	if err != nil {
		return fmt.Errorf("write ring: %w", err)
	}
	if !ok {
		return errors.New("write ring: the ring changed concurrently (check-and-set failed)")
	}
	w.log.Info("ring written", "epoch", doc.Epoch, "members", len(doc.Members), "drained", len(doc.Drained),
		"pins", len(doc.Pins), "overrides", len(doc.Overrides), "active_shards", len(active), "reason", reason)
	return nil
}

// censusWait says how long the writer holds back doc, composed with
// settings of Consul index sIndex, against rec, the ring in force (if
// haveRing): when only the census of active shards moves shards (the
// same members, drains and settings, a different placement), until quiet
// has passed since rec was written; otherwise 0, write now.
func censusWait(doc shardmap.Doc, rec Record, haveRing bool, sIndex uint64, quiet time.Duration, now time.Time) time.Duration {
	if !haveRing || rec.SettingsIndex < sIndex || !sameMembers(doc, rec.Doc) || sameRing(doc, rec.Doc) {
		return 0
	}
	return max(quiet-now.Sub(rec.WrittenAt), 0)
}

// matcherHealth lists the matchers whose every health check passes, and
// the ids of those whose alive check is critical (Consul could not
// connect to the process: it is gone).
func matcherHealth(ctx context.Context, c *api.Client, cfg ConsulConfig) ([]shardmap.Member, map[string]bool, error) {
	cfg.fill()
	ctx, cancel := context.WithTimeout(ctx, cfg.Timeout)
	defer cancel()
	entries, _, err := c.Health().Service(cfg.Service, "", false, (&api.QueryOptions{RequireConsistent: true}).WithContext(ctx))
	if err != nil {
		return nil, nil, fmt.Errorf("list matchers in consul: %w", err)
	}
	healthy, exited := readHealth(entries)
	return healthy, exited, nil
}

// readHealth splits the matchers' service entries into the healthy
// members (every check passing) and the ids of the exited ones (an alive
// check critical).
func readHealth(entries []*api.ServiceEntry) (healthy []shardmap.Member, exited map[string]bool) {
	exited = map[string]bool{}
	for _, e := range entries {
		if e.Checks.AggregatedStatus() == api.HealthPassing {
			healthy = append(healthy, memberOf(e.Service))
			continue
		}
		for _, ch := range e.Checks {
			if strings.HasSuffix(ch.CheckID, aliveCheckSuffix) && ch.Status == api.HealthCritical {
				exited[e.Service.ID] = true
			}
		}
	}
	return healthy, exited
}

func memberOf(s *api.AgentService) shardmap.Member {
	w, err := strconv.ParseFloat(s.Meta["weight"], 64)
	if err != nil || !(w > 0 && w <= shardmap.MaxWeight) {
		w = 1
	}
	return shardmap.Member{ID: s.ID, Addr: net.JoinHostPort(s.Address, strconv.Itoa(s.Port)), Weight: w}
}

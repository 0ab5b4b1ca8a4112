package membership_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/consul/api"

	"github.com/geomatch/geomatch/internal/consultest"
	"github.com/geomatch/geomatch/membership"
	"github.com/geomatch/geomatch/shardmap"
)

// candidate is one simulated matcher: registration and writer candidate.
type candidate struct {
	reg    *membership.Registration
	writer *membership.Writer
	cancel context.CancelFunc
	done   chan struct{}
}

func startCandidate(t *testing.T, agentAddr string, cfg membership.ConsulConfig, id, addr string) *candidate {
	t.Helper()
	return startCandidateWith(t, cfg, id, addr, time.Second, "")
}

// startCandidateWith starts a candidate whose check has the given TTL and,
// when alive is set, an alive check of that address.
func startCandidateWith(t *testing.T, cfg membership.ConsulConfig, id, addr string, ttl time.Duration, alive string) *candidate {
	t.Helper()
	return startCandidateConfig(t, cfg, id, addr, ttl, alive, nil)
}

// startCandidateConfig is startCandidateWith with the writer's census
// (WriterConfig.Active; nil: none).
func startCandidateConfig(t *testing.T, cfg membership.ConsulConfig, id, addr string, ttl time.Duration, alive string,
	active func(context.Context, *shardmap.Map, []shardmap.Cell) ([]shardmap.Cell, error)) *candidate {
	t.Helper()
	client, err := membership.NewConsulClient(cfg)
	if err != nil {
		t.Fatal(err)
	}
	log := slog.New(slog.NewTextHandler(testWriter{t}, nil)).With("node", id)
	reg := membership.NewRegistration(client, cfg, shardmap.Member{ID: id, Addr: addr, Weight: 1}, ttl, log)
	reg.SetAliveCheck(alive)
	ctx, cancel := context.WithCancel(context.Background())
	if err := reg.Register(ctx); err != nil {
		t.Fatal(err)
	}
	w := membership.NewWriter(client, membership.WriterConfig{
		Consul: cfg, NodeID: id, CheckIDs: reg.CheckIDs(), Defaults: membership.DefaultSettings(), Settle: 100 * time.Millisecond,
		Active: active,
	}, log)
	c := &candidate{reg: reg, writer: w, cancel: cancel, done: make(chan struct{})}
	go func() {
		defer close(c.done)
		done := make(chan struct{})
		go func() { defer close(done); _ = reg.Run(ctx) }()
		_ = w.Run(ctx)
		<-done
	}()
	t.Cleanup(c.stop)
	return c
}

func (c *candidate) stop() { c.cancel(); <-c.done }

// ringHas reports whether src's ring has exactly the members ids.
func ringHas(src *membership.Consul, ids ...string) bool {
	m, _ := src.Current()
	return slices.Equal(memberIDs(m), ids)
}

func memberIDs(m *shardmap.Map) []string {
	var ids []string
	for _, mem := range m.Members() {
		ids = append(ids, mem.ID)
	}
	return ids
}

// TestConsulRingFollowsMatchers runs the ring writer election, the ring
// composition and the watch against a real Consul: the ring lists the
// healthy matchers, a matcher that stops passing its check (dead) leaves the
// ring within about its TTL even when it was the writer, an admin drain
// reaches the ring, and epochs only grow.
func TestConsulRingFollowsMatchers(t *testing.T) {
	agent := consultest.Start(t)
	cfg := membership.ConsulConfig{Addr: agent.Addr, Prefix: "test", Service: "test-matcher"}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()

	a := startCandidate(t, agent.Addr, cfg, "m1", "127.0.0.1:7001")
	b := startCandidate(t, agent.Addr, cfg, "m2", "127.0.0.1:7002")
	client, src := followRing(t, ctx, cfg)
	has := func(ids ...string) func() bool { return func() bool { return ringHas(src, ids...) } }
	if !consultest.WaitFor(ctx, 10*time.Second, has("m1", "m2")) {
		m, _ := src.Current()
		t.Fatalf("ring members %v, want m1 and m2", memberIDs(m))
	}
	m, _ := src.Current()
	epoch := m.Epoch()
	writer := src.Record().Writer

	// The writer stops: its session ends and its check, no longer passed,
	// goes critical (it does not deregister).
	dead, alive := a, "m2"
	if writer == "m2" {
		dead, alive = b, "m1"
	}
	start := time.Now()
	dead.stop()
	if !consultest.WaitFor(ctx, 10*time.Second, has(alive)) {
		m, _ := src.Current()
		t.Fatalf("after the writer %s died the ring has %v", writer, memberIDs(m))
	}
	t.Logf("writer %s died (check TTL 1s): ring without it %v later, written by %s", writer, time.Since(start).Round(time.Millisecond), src.Record().Writer)
	m, _ = src.Current()
	if m.Epoch() <= epoch || src.Record().Writer != alive {
		t.Fatalf("epoch %d after %d, writer %q; want a newer epoch by %s", m.Epoch(), epoch, src.Record().Writer, alive)
	}

	// It comes back, and an operator drains it.
	back := startCandidate(t, agent.Addr, cfg, writer, "127.0.0.1:7003")
	_ = back
	if !consultest.WaitFor(ctx, 10*time.Second, has("m1", "m2")) {
		t.Fatal("restarted matcher did not rejoin the ring")
	}
	_, idx, err := membership.UpdateSettings(ctx, client, cfg, func(s *membership.Settings) error {
		s.Drained = append(s.Drained, writer)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if !consultest.WaitFor(ctx, 10*time.Second, func() bool {
		m, _ := src.Current()
		return src.Record().SettingsIndex >= idx && slices.Equal(m.Doc().Drained, []string{writer})
	}) {
		t.Fatalf("drain not in the ring: %+v", src.Record())
	}
}

// TestConsulAliveCheckTakesAKilledMatcherOffAtOnce: with an alive check, a
// matcher whose process is gone (its listener closed, its check no longer
// passed, no deregistration) leaves the ring within a couple of seconds
// although its TTL is 30 s; the survivor, whose process accepts Consul's
// connections, stays, and is the writer that removes it.
func TestConsulAliveCheckTakesAKilledMatcherOffAtOnce(t *testing.T) {
	agent := consultest.Start(t)
	cfg := membership.ConsulConfig{Addr: agent.Addr, Prefix: "alive", Service: "alive-matcher"}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	const ttl = 30 * time.Second
	var lis [2]net.Listener
	var cands [2]*candidate
	for i := range lis {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { l.Close() })
		go func() { // accept and drop, as a serving process does to Consul's check
			for {
				c, err := l.Accept()
				if err != nil {
					return
				}
				c.Close()
			}
		}()
		lis[i] = l
		cands[i] = startCandidateWith(t, cfg, fmt.Sprintf("m%d", i+1), l.Addr().String(), ttl, l.Addr().String())
	}
	_, src := followRing(t, ctx, cfg)
	has := func(ids ...string) func() bool { return func() bool { return ringHas(src, ids...) } }
	if !consultest.WaitFor(ctx, 10*time.Second, has("m1", "m2")) {
		m, _ := src.Current()
		t.Fatalf("ring members %v, want m1 and m2", memberIDs(m))
	}
	// Let a few alive checks pass: the live members must stay.
	time.Sleep(2500 * time.Millisecond)
	if !has("m1", "m2")() {
		m, _ := src.Current()
		t.Fatalf("ring members %v with both processes alive", memberIDs(m))
	}
	epoch := src.Record().Doc.Epoch
	dead, alive := 0, "m2"
	if src.Record().Writer == "m2" {
		dead, alive = 1, "m1"
	}
	start := time.Now()
	cands[dead].stop() // no deregistration: a SIGKILL
	lis[dead].Close()
	if !consultest.WaitFor(ctx, 8*time.Second, has(alive)) {
		m, _ := src.Current()
		t.Fatalf("%v after the process went away, ring %v; want it gone long before its %v TTL", time.Since(start), memberIDs(m), ttl)
	}
	took := time.Since(start)
	t.Logf("process gone (TTL %v, alive check every %v): ring without it %v later, epoch %d -> %d, reason %q",
		ttl, membership.AliveCheckInterval, took.Round(time.Millisecond), epoch, src.Record().Doc.Epoch, src.Record().Reason)
	if src.Record().Writer != alive {
		t.Fatalf("ring written by %q, want the survivor %s", src.Record().Writer, alive)
	}
}

// TestConsulRecordCarriesTheCensusToTheNextWriter: the ring record lists
// the active shards its writer placed by, and a writer elected after it
// is given them (for the members its own census cannot reach).
func TestConsulRecordCarriesTheCensusToTheNextWriter(t *testing.T) {
	agent := consultest.Start(t)
	cfg := membership.ConsulConfig{Addr: agent.Addr, Prefix: "census", Service: "census-matcher"}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cells := []shardmap.Cell{0x852a1073fffffff, 0x852a100bfffffff}
	var mu sync.Mutex
	given := map[string][]shardmap.Cell{} // by candidate: the recorded shards it was last given
	census := func(id string) func(context.Context, *shardmap.Map, []shardmap.Cell) ([]shardmap.Cell, error) {
		return func(_ context.Context, m *shardmap.Map, recorded []shardmap.Cell) ([]shardmap.Cell, error) {
			mu.Lock()
			defer mu.Unlock()
			if m != nil {
				given[id] = slices.Clone(recorded)
			}
			if id == "m1" {
				return cells, nil
			}
			return recorded, nil // m2 knows nothing of its own
		}
	}
	a := startCandidateConfig(t, cfg, "m1", "127.0.0.1:7001", time.Second, "", census("m1"))
	_, src := followRing(t, ctx, cfg)
	if !consultest.WaitFor(ctx, 10*time.Second, func() bool {
		return src.Record().Writer == "m1" && slices.Equal(src.Record().Active, cells)
	}) {
		t.Fatalf("record %+v: want m1's census %v in it", src.Record(), cells)
	}
	startCandidateConfig(t, cfg, "m2", "127.0.0.1:7002", time.Second, "", census("m2"))
	if !consultest.WaitFor(ctx, 10*time.Second, func() bool { m, _ := src.Current(); return len(m.Members()) == 2 }) {
		t.Fatal("m2 never joined the ring")
	}
	a.stop()
	if !consultest.WaitFor(ctx, 15*time.Second, func() bool { return src.Record().Writer == "m2" }) {
		t.Fatalf("m2 never wrote the ring after m1 stopped: %+v", src.Record())
	}
	mu.Lock()
	got := given["m2"]
	mu.Unlock()
	if !slices.Equal(got, cells) {
		t.Fatalf("m2's census was given %v from the record, want %v", got, cells)
	}
	if !slices.Equal(src.Record().Active, cells) {
		t.Fatalf("m2's record lists %v active, want %v carried on", src.Record().Active, cells)
	}
}

func TestComposeIsPureAndFiltersDeadMembers(t *testing.T) {
	s := membership.DefaultSettings()
	s.Drained = []string{"m2", "gone"}
	cells := []shardmap.Cell{0x872a1072bffffff, 0x872a10729ffffff}
	s.Pins = map[shardmap.Cell]string{cells[0]: "m1", cells[1]: "gone"}
	s.Weights = map[string]float64{"m3": 2}
	healthy := []shardmap.Member{{ID: "m3", Addr: "c:1"}, {ID: "m1", Addr: "a:1"}, {ID: "m2", Addr: "b:1"}}
	d, err := membership.Compose(s, healthy, cells, 7)
	if err != nil {
		t.Fatal(err)
	}
	if d.Epoch != 7 || !slices.Equal(d.Drained, []string{"m2"}) || len(d.Pins) != 1 || d.Pins[cells[0]] != "m1" {
		t.Fatalf("Compose = %+v", d)
	}
	if d.Members[0].ID != "m1" || d.Members[2].Weight != 2 {
		t.Fatalf("members %+v: want sorted, m3 weighted 2", d.Members)
	}
	again, _ := membership.Compose(s, []shardmap.Member{healthy[2], healthy[0], healthy[1]}, cells, 7)
	if !slices.Equal(again.Members, d.Members) {
		t.Fatal("Compose depends on the order of the healthy matchers")
	}
	bad := s
	bad.Balance = 0.5
	if _, err := membership.Compose(bad, healthy, nil, 1); err == nil {
		t.Fatal("balance 0.5 accepted")
	}
}

// testWriter sends logs to the test's log.
type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) { w.t.Log(string(p)); return len(p), nil }

// TestConsulChangeSettings applies admin changes through Consul: each
// returns once the writer published the ring that has it, which the
// source routes by at once; a refused change writes nothing; a change
// that moves nothing is acknowledged at the same epoch; without a writer,
// the change is written but reported not applied.
func TestConsulChangeSettings(t *testing.T) {
	agent := consultest.Start(t)
	cfg := membership.ConsulConfig{Addr: agent.Addr, Prefix: "apply", Service: "apply-matcher"}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	a := startCandidate(t, agent.Addr, cfg, "m1", "127.0.0.1:7001")
	b := startCandidate(t, agent.Addr, cfg, "m2", "127.0.0.1:7002")
	client, src := followRing(t, ctx, cfg)
	if !consultest.WaitFor(ctx, 10*time.Second, func() bool { m, _ := src.Current(); return len(m.Members()) == 2 }) {
		t.Fatal("ring never listed m1 and m2")
	}

	cur, _ := src.Current()
	o, _ := cur.Owner(shard)
	to := map[string]string{"m1": "m2", "m2": "m1"}[o.ID]
	before, after, err := src.ChangeSettings(ctx, membership.Move(shard, to))
	if err != nil {
		t.Fatal(err)
	}
	if after.Epoch() <= before.Epoch() {
		t.Fatalf("move: epoch %d -> %d", before.Epoch(), after.Epoch())
	}
	if now, _ := src.Current(); now.Epoch() != after.Epoch() {
		t.Fatalf("source at epoch %d on return, want %d", now.Epoch(), after.Epoch())
	}
	if o, _ := after.Owner(shard); o.ID != to {
		t.Fatalf("owner %s after the move, want %s", o.ID, to)
	}

	// Refused: nothing written.
	_, idx, _, err := membership.ReadSettings(ctx, client, cfg)
	if err != nil {
		t.Fatal(err)
	}
	_, _, err = src.ChangeSettings(ctx, membership.Drain("zz"))
	if !errors.Is(err, membership.ErrInvalid) {
		t.Fatalf("drain of an unknown node: %v", err)
	}
	if _, again, _, _ := membership.ReadSettings(ctx, client, cfg); again != idx {
		t.Fatalf("a refused change wrote the settings (index %d -> %d)", idx, again)
	}

	// The same pin again moves nothing: acknowledged at the same epoch.
	before, after, err = src.ChangeSettings(ctx, membership.Move(shard, to))
	if err != nil || after.Epoch() != before.Epoch() {
		t.Fatalf("repeated move: %v, epoch %d -> %d", err, before.Epoch(), after.Epoch())
	}

	// No writer: written, not applied, and said so in time.
	a.stop()
	b.stop()
	short := cfg
	short.ApplyTimeout = time.Second
	start := time.Now()
	_, _, err = membership.ApplySettings(ctx, client, short, membership.Unpin(shard))
	if !errors.Is(err, membership.ErrNotApplied) || time.Since(start) > 5*time.Second {
		t.Fatalf("change without a writer: %v after %v", err, time.Since(start))
	}
}

// followRing follows the ring in Consul under cfg until ctx is done (the
// test waits for the watch to stop) and returns once the first ring is
// there, with the client it reads through.
func followRing(t *testing.T, ctx context.Context, cfg membership.ConsulConfig) (*api.Client, *membership.Consul) {
	t.Helper()
	client, err := membership.NewConsulClient(cfg)
	if err != nil {
		t.Fatal(err)
	}
	src := membership.NewConsul(client, cfg, slog.New(slog.NewTextHandler(io.Discard, nil)))
	ctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { defer close(done); _ = src.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
	if err := src.Wait(ctx); err != nil {
		t.Fatal(err)
	}
	return client, src
}

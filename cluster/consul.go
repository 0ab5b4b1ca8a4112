package cluster

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/consul/api"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/geomatch/geomatch/internal/lifecycle"
	"github.com/geomatch/geomatch/membership"
	matcherv1 "github.com/geomatch/geomatch/proto/geomatch/matcher/v1"
	"github.com/geomatch/geomatch/shardmap"
	"github.com/geomatch/geomatch/shardmap/autosplit"
)

// ringWait bounds how long a process waits for the first ring in Consul
// (the writer writes it as soon as one matcher is registered).
const RingWait = 60 * time.Second

// FollowConsul starts following the ring in Consul in g and waits (at most
// RingWait) for the first one.
func FollowConsul(ctx context.Context, g *lifecycle.Group, client *api.Client, cfg membership.ConsulConfig, log *slog.Logger) (*membership.Consul, error) {
	src := membership.NewConsul(client, cfg, logOrDiscard(log).With("role", "ring-watch"))
	g.Go(src.Run)
	wctx, cancel := context.WithTimeout(ctx, RingWait)
	defer cancel()
	if err := src.Wait(wctx); err != nil {
		return nil, fmt.Errorf("%w (is a matcher with --consul %s running?)", err, cfg.Addr)
	}
	return src, nil
}

// shardCensus tells the ring writer which shards hold drivers (for
// bounded-load placement): it asks every member for its stats and
// remembers the last answer of members that do not answer, so the shards
// of a dead matcher still count when its shards are placed again. A
// member it never heard from (this writer was just elected, and the
// member is dead) counts with the shards the ring record lists as active
// for it: what the previous writer placed by. Without that, a writer
// elected because the old one died placed the dead writer's shards as if
// they held no drivers, and wrote a ring that moved shards between the
// live members too, then moved them again once it knew better: two warm-
// ups racing each other in the middle of a failover.
type shardCensus struct {
	mu    sync.Mutex
	opts  []grpc.DialOption
	conns map[string]*grpc.ClientConn
	last  map[string][]shardmap.Cell
}

// newShardCensus returns a census that dials matchers with opts (transport
// credentials: plaintext unless they say otherwise).
func newShardCensus(opts ...grpc.DialOption) *shardCensus {
	return &shardCensus{opts: append([]grpc.DialOption{grpc.WithTransportCredentials(insecure.NewCredentials())}, opts...),
		conns: map[string]*grpc.ClientConn{}, last: map[string][]shardmap.Cell{}}
}

func (s *shardCensus) conn(addr string) (matcherv1.MatcherServiceClient, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	c, ok := s.conns[addr]
	if !ok {
		var err error
		if c, err = grpc.NewClient(addr, s.opts...); err != nil {
			return nil, err
		}
		s.conns[addr] = c
	}
	return matcherv1.NewMatcherServiceClient(c), nil
}

// Active implements membership.WriterConfig.Active.
func (s *shardCensus) Active(ctx context.Context, m *shardmap.Map, recorded []shardmap.Cell) ([]shardmap.Cell, error) {
	if m == nil {
		return nil, nil
	}
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	var wg sync.WaitGroup
	for _, mem := range m.Members() {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c, err := s.conn(mem.Addr)
			if err != nil {
				return
			}
			st, err := c.Stats(ctx, &matcherv1.StatsRequest{})
			if err != nil {
				return
			}
			var cells []shardmap.Cell
			for _, sh := range st.GetShards() {
				if sh.GetDrivers() > 0 {
					cells = append(cells, shardmap.Cell(sh.GetCell()))
				}
			}
			s.mu.Lock()
			s.last[mem.ID] = cells
			s.mu.Unlock()
		}()
	}
	wg.Wait()
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []shardmap.Cell
	for _, mem := range m.Members() {
		cells, ok := s.last[mem.ID]
		if !ok {
			cells = recordedOf(m, mem.ID, recorded)
		}
		out = append(out, cells...)
	}
	return out, nil
}

// recordedOf returns the cells of recorded that m gives to member id.
func recordedOf(m *shardmap.Map, id string, recorded []shardmap.Cell) []shardmap.Cell {
	var out []shardmap.Cell
	for _, c := range recorded {
		if o, ok := m.Owner(c); ok && o.ID == id {
			out = append(out, c)
		}
	}
	return out
}

// close closes the census connections.
func (s *shardCensus) close() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, c := range s.conns {
		_ = c.Close()
	}
	s.conns = map[string]*grpc.ClientConn{}
}

// ConsulMatcher describes a matcher whose membership is in Consul.
type ConsulMatcher struct {
	// Matcher is the matcher to start; its Membership is the ring followed
	// in Consul.
	Matcher MatcherConfig
	// Client and Consul locate the cluster in Consul.
	Client *api.Client
	Consul membership.ConsulConfig
	// Member is the matcher as registered: id, advertised address, weight.
	Member shardmap.Member
	// CheckTTL is the TTL of the Consul health check; default
	// membership.DefaultCheckTTL.
	CheckTTL time.Duration
	// AliveCheckAddr, when set, adds a Consul TCP check of this address
	// (Registration.SetAliveCheck): a killed matcher leaves the ring within
	// about a second instead of CheckTTL.
	AliveCheckAddr string
	// Settings are the ring settings the writer starts from when Consul has
	// none yet.
	Settings membership.Settings
	// DrainTimeout bounds the graceful leave: how long the matcher keeps
	// serving while its shards are handed over; default 15 s.
	DrainTimeout time.Duration
	// Serve, when set, is started with the matcher in its group (a metrics
	// listener).
	Serve func(g *lifecycle.Group) error
	// Autosplit, when set, runs the autosplit controller beside the ring
	// writer: it decides only while this matcher holds the writer's lock,
	// and keeps its record in Consul (membership.ConsulRecords). Nil: off.
	Autosplit *autosplit.Config
	// Started and Leaving, when set, are told when the matcher serves and
	// when it starts its graceful leave (the binary prints them).
	Started func(*Matcher)
	Leaving func()
}

// RunConsulMatcher runs a matcher in a Consul cluster until ctx is done:
// it registers the matcher (with a TTL health check), competes to be the
// ring writer, follows the ring, starts the matcher through StartMatcher,
// and on the way out leaves the ring first, hands its shards over while
// still serving (bounded by DrainTimeout) and stops.
func RunConsulMatcher(ctx context.Context, cfg ConsulMatcher, lis net.Listener) error {
	log := logOrDiscard(cfg.Matcher.Log)
	if cfg.CheckTTL <= 0 {
		cfg.CheckTTL = membership.DefaultCheckTTL
	}
	if cfg.DrainTimeout <= 0 {
		cfg.DrainTimeout = 15 * time.Second
	}
	reg := membership.NewRegistration(cfg.Client, cfg.Consul, cfg.Member, cfg.CheckTTL, log)
	reg.SetAliveCheck(cfg.AliveCheckAddr)
	if err := reg.Register(ctx); err != nil {
		lis.Close()
		return err
	}
	census := newShardCensus(cfg.Matcher.DialOptions...)
	defer census.close()
	var watched atomic.Pointer[membership.Consul] // set once the ring watch runs
	knownEpoch := func() uint64 {
		if w := watched.Load(); w != nil {
			m, _ := w.Current()
			return m.Epoch()
		}
		return 0
	}
	writer := membership.NewWriter(cfg.Client, membership.WriterConfig{
		Consul: cfg.Consul, NodeID: cfg.Member.ID, CheckIDs: reg.CheckIDs(), Defaults: cfg.Settings, Active: census.Active, KnownEpoch: knownEpoch,
	}, log)
	memberG := lifecycle.NewGroup() // registration and writer: stopped first on shutdown
	memberG.Go(reg.Run)
	memberG.Go(writer.Run)
	ringG, g := lifecycle.NewGroup(), lifecycle.NewGroup()
	stopAll := func() error { return errors.Join(memberG.Stop(), g.Stop(), ringG.Stop()) }
	fail := func(err error) error {
		lis.Close()
		return errors.Join(err, reg.Leave(context.WithoutCancel(ctx)), stopAll())
	}
	src, err := FollowConsul(ctx, ringG, cfg.Client, cfg.Consul, log)
	if err != nil {
		return fail(err)
	}
	watched.Store(src)
	if cfg.Serve != nil {
		if err := cfg.Serve(g); err != nil {
			return fail(err)
		}
	}
	if cfg.Autosplit != nil {
		as, err := membership.NewAutosplit(membership.AutosplitConfig{
			Planner: *cfg.Autosplit, Source: src, Ring: src, Loads: census.loads, Leading: writer.Leading,
			Records: membership.NewConsulRecords(cfg.Client, cfg.Consul), Metrics: cfg.Matcher.Metrics.registerer(),
		}, log.With("node", cfg.Member.ID))
		if err != nil {
			return fail(err)
		}
		g.Go(as.Run)
	}
	lease := reg.Lease()
	g.Go(func(ctx context.Context) error {
		return runVouching(ctx, cfg.Member.ID, lease, src, census, cfg.CheckTTL/4, log.With("node", cfg.Member.ID))
	})
	mcfg := cfg.Matcher
	mcfg.Membership = src
	mcfg.Node.Lease = lease
	m, err := StartMatcher(g, mcfg, nil, lis)
	if err != nil {
		return fail(err)
	}
	if cfg.Started != nil {
		cfg.Started(m)
	}
	runErr := lifecycle.WaitAny(ctx, g, ringG, memberG)

	// Graceful leave: out of the ring first, then hand the shards over while
	// still serving, then stop.
	if cfg.Leaving != nil {
		cfg.Leaving()
	}
	bg := context.WithoutCancel(ctx)
	leaveErr := reg.Leave(bg)
	stopErr := memberG.Stop() // resigns as writer: another matcher recomputes the ring
	dctx, cancel := context.WithTimeout(bg, cfg.DrainTimeout)
	drainErr := m.Node.Drain(dctx)
	cancel()
	if drainErr != nil {
		log.Warn("shards not all handed over", "err", drainErr)
	}
	return errors.Join(runErr, leaveErr, stopErr, g.Stop(), ringG.Stop())
}

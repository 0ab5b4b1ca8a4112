package cluster

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net"
	"slices"
	"time"

	"google.golang.org/grpc"

	"github.com/geomatch/geomatch/dispatch"
	"github.com/geomatch/geomatch/driver"
	"github.com/geomatch/geomatch/events"
	"github.com/geomatch/geomatch/fleet"
	"github.com/geomatch/geomatch/internal/geo"
	"github.com/geomatch/geomatch/internal/identity"
	"github.com/geomatch/geomatch/internal/lifecycle"
	"github.com/geomatch/geomatch/internal/serve"
	"github.com/geomatch/geomatch/internal/tracing"
	"github.com/geomatch/geomatch/matcher"
	"github.com/geomatch/geomatch/membership"
	matcherv1 "github.com/geomatch/geomatch/proto/geomatch/matcher/v1"
	"github.com/geomatch/geomatch/store"
)

// DefaultDrain bounds the graceful stop of a server: open streams get this
// long to finish before they are cut.
const DefaultDrain = 5 * time.Second

// MatcherConfig describes one matcher to start.
type MatcherConfig struct {
	// Node configures the node; Node.NodeID is required. Its DialOptions
	// get DialOptions appended, and its Store is set to Store.
	Node matcher.Config
	// Membership is where the node learns the ring; required.
	Membership membership.Source
	// Store is the durable state; nil runs the matcher without rides (no
	// coordinator) and without positions written behind.
	Store store.Store
	// Events is the event log fence events go to; with Store set, it turns
	// fences on (the node follows Store's fence definitions).
	Events events.Log
	// Dispatch configures the ride coordinator.
	Dispatch dispatch.Config
	// Fleet configures the coordinator's search client. Its InProcess map
	// gets the node itself; add other matchers of this process there.
	Fleet fleet.Config
	// ServerOptions are the gRPC server's options (TLS, interceptors).
	ServerOptions []grpc.ServerOption
	// DialOptions are used to reach other matchers (handoff transfers and
	// the coordinator's searches): TLS with a client certificate for
	// mutual TLS.
	DialOptions []grpc.DialOption
	// TrustDomain, when set, authorizes the callers of the internal API by
	// identity: a call is admitted only from a node of this cluster whose
	// verified client certificate names a role MatcherPolicy allows for the
	// method (UNAUTHENTICATED without a certificate, PERMISSION_DENIED
	// otherwise). Empty admits every caller the transport lets in
	// (--insecure-internal).
	TrustDomain string
	// Drain bounds the graceful stop of the server; default DefaultDrain.
	Drain time.Duration
	// Metrics, when set, collects the matcher's metrics and readiness.
	Metrics *Observer
	// Log receives the matcher's logs; default discards them.
	Log *slog.Logger
}

// Matcher is a started matcher.
type Matcher struct {
	// Node is the matcher node.
	Node *matcher.Node
	// Local is the node's in-process service (fleet.LocalNode).
	Local *matcher.Local
	// Coordinator drives the rides of the node's shards; nil without a
	// store.
	Coordinator *dispatch.Coordinator
	// Fleet is the client the coordinator searches through; nil without a
	// store.
	Fleet *fleet.Client
	// Addr is where the matcher's gRPC server listens.
	Addr string
}

// NewNode builds a matcher node for cfg without starting anything, so that
// matchers of one process can know each other's in-process services
// before they start (StartDev); StartMatcher builds it when not given.
func NewNode(cfg MatcherConfig) (*matcher.Node, error) {
	nc := cfg.Node
	nc.DialOptions = append(append([]grpc.DialOption(nil), nc.DialOptions...), cfg.DialOptions...)
	nc.DialOptions = append(nc.DialOptions, tracing.DialOptions()...) // hand-overs carry the trace context; nil unless tracing
	nc.Store = cfg.Store
	if cfg.Store != nil && cfg.Events != nil {
		nc.Fences, nc.FenceStates, nc.Events = cfg.Store, cfg.Store, cfg.Events
	}
	return matcher.NewNode(nc, cfg.Membership, logOrDiscard(cfg.Log))
}

// StartMatcher starts the matcher of cfg in g, serving its internal gRPC
// API (MatcherService, and DispatchService with a store) on lis. node may
// be nil (built from cfg) or a node NewNode built for cfg. The gRPC health
// says NOT_SERVING until the node has warmed its shards.
func StartMatcher(g *lifecycle.Group, cfg MatcherConfig, node *matcher.Node, lis net.Listener) (*Matcher, error) {
	if cfg.Membership == nil {
		return nil, errors.New("cluster: matcher: a membership source is required")
	}
	log := logOrDiscard(cfg.Log)
	if node == nil {
		var err error
		if node, err = NewNode(cfg); err != nil {
			return nil, err
		}
	}
	id := node.ID()
	m := &Matcher{Node: node, Local: matcher.NewLocal(node), Addr: lis.Addr().String()}
	opts, err := cfg.Metrics.ServerOptions("matcher " + id)
	if err != nil {
		return nil, err
	}
	opts = append(opts, cfg.ServerOptions...)
	if cfg.TrustDomain != "" {
		authz, err := identity.NewAuthorizer(cfg.TrustDomain, MatcherPolicy, log.With("node", id))
		if err != nil {
			return nil, fmt.Errorf("matcher %s: %w", id, err)
		}
		opts = append(opts, authz.ServerOptions()...)
	}
	srv := serve.New("matcher "+id, log, opts...)
	matcherv1.RegisterMatcherServiceServer(srv.GRPC, matcher.NewServer(node))
	if cfg.Store != nil {
		fc := cfg.Fleet
		fc.InProcess = maps.Clone(fc.InProcess)
		if fc.InProcess == nil {
			fc.InProcess = map[string]fleet.LocalNode{}
		}
		fc.InProcess[id] = m.Local // searches of its own shards skip the loopback hop
		fc.DialOptions = append(append([]grpc.DialOption(nil), fc.DialOptions...), cfg.DialOptions...)
		if m.Fleet, err = fleet.New(fc, cfg.Membership, log.With("role", "search", "node", id)); err != nil {
			return nil, fmt.Errorf("matcher %s search client: %w", id, err)
		}
		dcfg := cfg.Dispatch
		if dcfg.Events == nil {
			dcfg.Events = cfg.Events
		}
		if m.Coordinator, err = dispatch.NewCoordinator(dcfg, cfg.Store, Searcher{Fleet: m.Fleet}, node, log.With("node", id)); err != nil {
			return nil, err
		}
		check := func(ctx context.Context, epoch, shard uint64) error {
			return matcher.StatusError(node.CheckOwnerOf(ctx, epoch, shard))
		}
		matcherv1.RegisterDispatchServiceServer(srv.GRPC, dispatch.NewServer(m.Coordinator, check))
	}
	if err := cfg.Metrics.AddMatcher(m); err != nil {
		return nil, err
	}
	log.Info("matcher started", WiringAttrs(m.Wiring())...)
	g.Go(node.Run)
	if m.Fleet != nil {
		g.Go(m.Fleet.Run)
		g.Go(m.Coordinator.Run)
	}
	drain := cmpOr(cfg.Drain, DefaultDrain)
	g.Go(func(ctx context.Context) error { return srv.Serve(ctx, lis, drain) })
	g.Go(func(ctx context.Context) error { return reportReadiness(ctx, srv, node.Ready) })
	return m, nil
}

// Wiring describes how the matcher is put together (the same in every
// mode that starts it through StartMatcher); it is logged at start as
// "matcher started".
func (m *Matcher) Wiring() map[string]string {
	services, search := "MatcherService", "none"
	if m.Coordinator != nil {
		services, search = "MatcherService,DispatchService", "fleet client, own shards in process"
	}
	return map[string]string{"node": m.Node.ID(), "via": "cluster.StartMatcher", "services": services, "search": search}
}

// WiringAttrs turns a wiring description into log attributes, sorted by
// key.
func WiringAttrs(w map[string]string) []any {
	var out []any
	for _, k := range slices.Sorted(maps.Keys(w)) {
		out = append(out, k, w[k])
	}
	return out
}

// Searcher is dispatch's search through a fleet client: the exact nearby
// search over the cluster, available drivers only, and only those whose
// last update came on their Connect stream: an offer reaches a driver on
// that stream alone, so a driver that only calls UpdateLocations is never
// offered a ride it cannot see.
type Searcher struct {
	Fleet *fleet.Client
}

// Available implements dispatch.Searcher.
func (s Searcher) Available(ctx context.Context, q geo.LatLng, radiusM float64, k int, class string) ([]dispatch.Candidate, error) {
	found, err := s.Fleet.Nearby(ctx, fleet.Query{Pos: q, RadiusM: radiusM, K: k, Status: driver.StatusAvailable, VehicleClass: class, OnStreamOnly: true})
	if err != nil {
		return nil, err
	}
	out := make([]dispatch.Candidate, len(found))
	for i, n := range found {
		out[i] = dispatch.Candidate{DriverID: n.GetDriverId(), DistanceM: n.GetDistanceM()}
	}
	return out, nil
}

// reportReadiness keeps the gRPC health of srv NOT_SERVING until ready()
// is true (a matcher warming its shards), then leaves it SERVING.
func reportReadiness(ctx context.Context, srv *serve.Server, ready func() bool) error {
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for {
		if ready() {
			srv.SetServing(true)
			return nil
		}
		srv.SetServing(false)
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
		}
	}
}

func logOrDiscard(l *slog.Logger) *slog.Logger {
	if l == nil {
		return slog.New(slog.DiscardHandler)
	}
	return l
}

func cmpOr(d, def time.Duration) time.Duration {
	if d <= 0 {
		return def
	}
	return d
}

package router

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"

	"google.golang.org/grpc"

	"github.com/geomatch/geomatch/fleet"
	"github.com/geomatch/geomatch/membership"
	geomatchv1 "github.com/geomatch/geomatch/proto/geomatch/v1"
)

// Router is the public API front door. Create it with New, start Run, and
// register its services on a gRPC server with Register.
type Router struct {
	cfg   Config
	fleet *fleet.Client
	src   membership.Source // the fleet client's: what the admin API reports
	log   *slog.Logger

	sessMu   sync.Mutex
	sessions map[string]*driverSession // driver Connect streams, by driver id

	limits        *clientLimits // per-client rates and streams (ServerOptions)
	subscriptions atomic.Int64  // open event subscriptions
	fenceWrites   chan struct{} // slots of concurrent fence writes (Config.MaxFenceWrites)
	tokens        *tokenCache   // recently verified tokens (ServerOptions)
}

// New returns a router that reaches the matchers through fc. The caller
// runs fc (fleet.Client.Run) for as long as the router serves.
func New(cfg Config, fc *fleet.Client, log *slog.Logger) (*Router, error) {
	if err := cfg.fill(); err != nil {
		return nil, err
	}
	if fc == nil {
		return nil, errors.New("router: a fleet client is required")
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Router{cfg: cfg, fleet: fc, src: fc.Membership(), log: log, sessions: make(map[string]*driverSession),
		limits: newClientLimits(cfg.Limits, log), tokens: newTokenCache(), fenceWrites: make(chan struct{}, cfg.MaxFenceWrites)}, nil
}

// Register registers the public services on s. Authentication and
// per-client limits (Config.Auth, Config.Limits) need s to be built with
// ServerOptions.
func (r *Router) Register(s *grpc.Server) {
	geomatchv1.RegisterDriverServiceServer(s, &driverService{r: r})
	geomatchv1.RegisterRiderServiceServer(s, &riderService{r: r})
	geomatchv1.RegisterAdminServiceServer(s, &adminService{r: r})
	geomatchv1.RegisterFenceServiceServer(s, &fenceService{r: r})
	geomatchv1.RegisterEventServiceServer(s, &eventService{r: r})
}

// Run carries offers and trip updates from the store's event bus to the
// driver streams held here, until ctx is done. Without rides it only waits.
func (r *Router) Run(ctx context.Context) error {
	if r.cfg.Rides == nil {
		<-ctx.Done()
		return nil
	}
	events, err := r.cfg.Rides.Store().Subscribe(ctx)
	if err != nil {
		if ctx.Err() != nil {
			return nil // stopped while starting
		}
		return fmt.Errorf("router: subscribe to offers and trip events: %w", err)
	}
	for {
		select {
		case <-ctx.Done():
			return nil
		case ev, ok := <-events:
			if !ok {
				if ctx.Err() == nil {
					r.log.Error("offer and trip event subscription ended; offers reach drivers only when they reconnect")
				}
				<-ctx.Done()
				return nil
			}
			r.deliver(ev)
		}
	}
}

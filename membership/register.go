package membership

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/hashicorp/consul/api"

	"github.com/geomatch/geomatch/shardmap"
)

// Registration keeps one matcher registered as a Consul service with a TTL
// health check that the matcher itself passes every TTL/4: a matcher that
// dies or hangs goes critical within TTL, and the ring writer moves its
// shards away. With an alive check (SetAliveCheck) the agent also opens a
// TCP connection to the matcher every second, so a process that is gone
// (killed, crashed) goes critical within about a second, sooner than the
// TTL; a hung process still answers the kernel's handshake, which is what
// the TTL check is for.
type Registration struct {
	client    *api.Client
	cfg       ConsulConfig
	member    shardmap.Member
	ttl       time.Duration
	aliveAddr string
	log       *slog.Logger
	lease     *Lease

	left atomic.Bool
}

// DefaultCheckTTL is the TTL of a matcher's health check: the longest a
// dead matcher keeps its shards before the writer notices.
const DefaultCheckTTL = 2 * time.Second

// NewRegistration returns the registration of member (its ID, gRPC Addr
// and Weight) with a health check of the given TTL (DefaultCheckTTL if 0).
func NewRegistration(client *api.Client, cfg ConsulConfig, member shardmap.Member, ttl time.Duration, log *slog.Logger) *Registration {
	cfg.fill()
	if ttl <= 0 {
		ttl = DefaultCheckTTL
	}
	return &Registration{client: client, cfg: cfg, member: member, ttl: ttl, log: log, lease: NewLease(ttl)}
}

// Lease returns the matcher's ownership lease, renewed by every
// registration and check pass that succeeds.
func (r *Registration) Lease() *Lease { return r.lease }

// AliveCheckInterval is how often the Consul agent connects to a matcher
// with an alive check (Consul's shortest check interval), and
// AliveCheckTimeout how long it waits for the connection.
const (
	AliveCheckInterval = time.Second
	AliveCheckTimeout  = time.Second
)

// SetAliveCheck adds, from the next registration on, a TCP check of addr:
// the address at which the Consul agent that holds the registration
// reaches this process (with an agent on the same host, the --listen
// address; never a proxy or load balancer in front of it, which would
// accept the connection for a dead process). Empty: the TTL check only.
func (r *Registration) SetAliveCheck(addr string) { r.aliveAddr = addr }

// CheckID is the id of the member's TTL health check in Consul.
func (r *Registration) CheckID() string { return "service:" + r.member.ID }

// CheckIDs are the ids of all the member's health checks: the TTL check,
// and the alive check if there is one. A writer session tied to them ends
// as soon as either goes critical.
func (r *Registration) CheckIDs() []string {
	if r.aliveAddr == "" {
		return []string{r.CheckID()}
	}
	return []string{r.CheckID(), r.aliveCheckID()}
}

func (r *Registration) aliveCheckID() string { return "service:" + r.member.ID + aliveCheckSuffix }

// aliveCheckSuffix ends the id of every alive check, which is how the
// writer tells one from the TTL check.
const aliveCheckSuffix = ":alive"

func (r *Registration) register(ctx context.Context) error {
	host, portStr, err := net.SplitHostPort(r.member.Addr)
	if err != nil {
		return fmt.Errorf("register %s: address %q: %w", r.member.ID, r.member.Addr, err)
	}
	port, err := strconv.Atoi(portStr)
	if err != nil {
		return fmt.Errorf("register %s: port %q: %w", r.member.ID, portStr, err)
	}
	w := r.member.Weight
	if w == 0 {
		w = 1
	}
	reg := &api.AgentServiceRegistration{
		ID:      r.member.ID,
		Name:    r.cfg.Service,
		Address: host,
		Port:    port,
		Meta:    map[string]string{"weight": strconv.FormatFloat(w, 'g', -1, 64)},
		Checks: api.AgentServiceChecks{{
			CheckID:                        r.CheckID(),
			Name:                           "matcher serving",
			TTL:                            r.ttl.String(),
			Status:                         api.HealthPassing,
			DeregisterCriticalServiceAfter: "10m",
		}},
	}
	if r.aliveAddr != "" {
		reg.Checks = append(reg.Checks, &api.AgentServiceCheck{
			CheckID:  r.aliveCheckID(),
			Name:     "matcher process alive",
			TCP:      r.aliveAddr,
			Interval: AliveCheckInterval.String(),
			Timeout:  AliveCheckTimeout.String(),
			Status:   api.HealthPassing,
		})
	}
	ctx, cancel := context.WithTimeout(ctx, r.cfg.Timeout)
	defer cancel()
	sent := time.Now()
	if err := r.client.Agent().ServiceRegisterOpts(reg, api.ServiceRegisterOpts{}.WithContext(ctx)); err != nil {
		return fmt.Errorf("register matcher %s in consul: %w", r.member.ID, err)
	}
	r.lease.Renewed(sent)
	return nil
}

// Register registers the member once (Run keeps it registered).
func (r *Registration) Register(ctx context.Context) error { return r.register(ctx) }

// Run passes the health check every TTL/4 until ctx is done or Leave is
// called, re-registering when Consul lost the registration (a restarted
// agent). It does not deregister: call Leave for that.
func (r *Registration) Run(ctx context.Context) error {
	tick := time.NewTicker(r.ttl / 4)
	defer tick.Stop()
	failing := false
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
		}
		if r.left.Load() {
			return nil
		}
		err := r.pass(ctx)
		if err != nil && ctx.Err() == nil {
			// Unknown check: the agent forgot us; register again.
			if rerr := r.register(ctx); rerr == nil {
				err = r.pass(ctx)
			}
		}
		switch {
		case err != nil && !failing && ctx.Err() == nil:
			r.log.Warn("consul health check not passed; the matcher will lose its shards if this lasts", "err", err)
			failing = true
		case err == nil && failing:
			r.log.Info("consul health check passing again")
			failing = false
		}
	}
}

func (r *Registration) pass(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, r.cfg.Timeout)
	defer cancel()
	q := (&api.QueryOptions{}).WithContext(ctx)
	sent := time.Now()
	if err := r.client.Agent().UpdateTTLOpts(r.CheckID(), "serving", api.HealthPassing, q); err != nil {
		return fmt.Errorf("pass health check %s: %w", r.CheckID(), err)
	}
	r.lease.Renewed(sent)
	return nil
}

// Leave deregisters the member: the writer removes it from the ring and
// its shards move to the others. Run stops passing the check.
func (r *Registration) Leave(ctx context.Context) error {
	r.left.Store(true)
	ctx, cancel := context.WithTimeout(ctx, r.cfg.Timeout)
	defer cancel()
	if err := r.client.Agent().ServiceDeregisterOpts(r.member.ID, (&api.QueryOptions{}).WithContext(ctx)); err != nil {
		return fmt.Errorf("deregister matcher %s from consul: %w", r.member.ID, err)
	}
	return nil
}

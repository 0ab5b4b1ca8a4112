package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/hashicorp/consul/api"

	"github.com/geomatch/geomatch/membership"
	matcherv1 "github.com/geomatch/geomatch/proto/geomatch/matcher/v1"
	"github.com/geomatch/geomatch/shardmap"
)

// consulFlags locate the cluster's membership in Consul.
type consulFlags struct {
	addr    string
	token   string
	prefix  string
	service string
	ca      string
	cert    string
	key     string
}

func (c *consulFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&c.addr, "consul", "", "Consul HTTP address (host:port): membership and the ring live there; without it, --peers gives a static cluster")
	fs.StringVar(&c.token, "consul-token", "", "Consul ACL token")
	fs.StringVar(&c.prefix, "consul-prefix", "geomatch", "Consul KV folder of this cluster (ring, settings, writer lock)")
	fs.StringVar(&c.service, "consul-service", "geomatch-matcher", "Consul service name of this cluster's matchers")
	fs.StringVar(&c.ca, "consul-ca", "", "PEM CA bundle of Consul's HTTPS certificate; turns HTTPS on")
	fs.StringVar(&c.cert, "consul-cert", "", "PEM client certificate for Consul (verify_incoming); with --consul-key")
	fs.StringVar(&c.key, "consul-key", "", "PEM private key of --consul-cert")
}

func (c *consulFlags) config() membership.ConsulConfig {
	return membership.ConsulConfig{Addr: c.addr, Token: c.token, Prefix: c.prefix, Service: c.service,
		CAFile: c.ca, CertFile: c.cert, KeyFile: c.key}
}

// args passes the Consul TLS flags that were set on to another command.
func (c *consulFlags) tlsArgs() []string {
	var a []string
	for _, f := range [][2]string{{"--consul-ca", c.ca}, {"--consul-cert", c.cert}, {"--consul-key", c.key}} {
		if f[1] != "" {
			a = append(a, f[0], f[1])
		}
	}
	return a
}

// ringWait bounds how long a process waits for the first ring in Consul
// (the writer writes it as soon as one matcher is registered).
const ringWait = 60 * time.Second

// consulSource starts following the ring in g and waits for the first one.
func consulSource(ctx context.Context, runStart func(func(context.Context) error), client *api.Client, cfg membership.ConsulConfig, log *slog.Logger) (*membership.Consul, error) {
	src := membership.NewConsul(client, cfg, log.With("role", "ring-watch"))
	runStart(src.Run)
	wctx, cancel := context.WithTimeout(ctx, ringWait)
	defer cancel()
	if err := src.Wait(wctx); err != nil {
		return nil, fmt.Errorf("%w (is a matcher with --consul %s running?)", err, cfg.Addr)
	}
	return src, nil
}

// shardCensus tells the ring writer which shards hold drivers (for
// bounded-load placement): it asks every member for its stats and
// remembers the last answer of members that do not answer, so the shards
// of a dead matcher still count when its shards are placed again.
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
func (s *shardCensus) Active(ctx context.Context, m *shardmap.Map) ([]shardmap.Cell, error) {
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
	for _, cells := range s.last {
		out = append(out, cells...)
	}
	return out, nil
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

package chaos

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"
)

// ClusterConfig is the cluster the harness starts.
type ClusterConfig struct {
	// Binary is the geomatch executable (the harness's own, usually).
	Binary string
	// ConsulBinary and RedisBinary are the Consul and redis-server
	// executables.
	ConsulBinary, RedisBinary string
	// Matchers and Routers are how many of each.
	Matchers, Routers int
	// Dir receives each process's log (<id>.log).
	Dir string
	// MatcherArgs are extra flags for every matcher.
	MatcherArgs []string
	// LogLevel is the matchers' and routers' --log-level (default warn).
	LogLevel string
	Logger   *slog.Logger
}

// Process is one child process of the cluster: a matcher, a router,
// Consul or Redis.
type Process struct {
	ID     string
	Listen string
	// Advertise is the address others dial (a matcher's inbound proxy).
	Advertise string
	// Inbound is the proxy routers and peers reach a matcher through;
	// ConsulProxy and RedisProxy are the ones it reaches Consul and Redis
	// through (nil for Consul and Redis themselves).
	Inbound, ConsulProxy, RedisProxy *Proxy

	path string
	args []string
	log  *os.File

	mu   sync.Mutex
	cmd  *exec.Cmd
	done chan struct{}
}

// start starts the process (again).
func (p *Process) start() error {
	cmd := exec.Command(p.path, p.args...)
	cmd.Stdout, cmd.Stderr = p.log, p.log
	// Its own process group (a terminal's ^C reaches the harness, which
	// tears down in order), and killed if the harness dies.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start %s: %w", p.ID, err)
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	p.mu.Lock()
	p.cmd, p.done = cmd, done
	p.mu.Unlock()
	return nil
}

// Signal sends sig to the process.
func (p *Process) Signal(sig syscall.Signal) error {
	p.mu.Lock()
	cmd := p.cmd
	p.mu.Unlock()
	if cmd == nil || cmd.Process == nil {
		return fmt.Errorf("%s: not started", p.ID)
	}
	if err := cmd.Process.Signal(sig); err != nil {
		return fmt.Errorf("signal %s %v: %w", p.ID, sig, err)
	}
	return nil
}

// Wait waits up to d for the process to exit and reports whether it did.
func (p *Process) Wait(d time.Duration) bool {
	p.mu.Lock()
	done := p.done
	p.mu.Unlock()
	if done == nil {
		return true
	}
	select {
	case <-done:
		return true
	case <-time.After(d):
		return false
	}
}

// Running reports whether the process is alive.
func (p *Process) Running() bool {
	p.mu.Lock()
	done := p.done
	p.mu.Unlock()
	if done == nil {
		return false
	}
	select {
	case <-done:
		return false
	default:
		return true
	}
}

// stop ends the process: SIGCONT (if stopped), SIGTERM, SIGKILL after
// grace.
func (p *Process) stop(grace time.Duration) {
	if !p.Running() {
		return
	}
	_ = p.Signal(syscall.SIGCONT)
	_ = p.Signal(syscall.SIGTERM)
	if !p.Wait(grace) {
		_ = p.Signal(syscall.SIGKILL)
		p.Wait(5 * time.Second)
	}
}

// Cluster is Consul, Redis, matchers and routers running on loopback.
type Cluster struct {
	cfg      ClusterConfig
	log      *slog.Logger
	Consul   *Process
	Redis    *Process
	Matchers []*Process
	Routers  []*Process
	proxies  []*Proxy
}

// StartCluster starts Consul and Redis, then the matchers (each reaching
// Consul and Redis through proxies of its own and reached through an
// inbound proxy), then the routers. On error, what was started is stopped.
func StartCluster(ctx context.Context, cfg ClusterConfig) (_ *Cluster, err error) {
	if cfg.Matchers < 1 || cfg.Routers < 1 {
		return nil, errors.New("a cluster needs at least one matcher and one router")
	}
	if err := os.MkdirAll(cfg.Dir, 0o755); err != nil {
		return nil, fmt.Errorf("log dir: %w", err)
	}
	c := &Cluster{cfg: cfg, log: cfg.Logger}
	if c.log == nil {
		c.log = slog.New(slog.DiscardHandler)
	}
	defer func() {
		if err != nil {
			c.Close()
		}
	}()
	if err := c.startConsul(ctx); err != nil {
		return nil, err
	}
	if err := c.startRedis(ctx); err != nil {
		return nil, err
	}
	level := cfg.LogLevel
	if level == "" {
		level = "warn"
	}
	for i := range cfg.Matchers {
		id := fmt.Sprintf("m%d", i+1)
		p, err := c.newProcess(id, fmt.Sprintf("127.0.0.%d", 11+i), true)
		if err != nil {
			return nil, err
		}
		p.args = append([]string{"matcher", "--id", id, "--listen", p.Listen, "--advertise", p.Advertise,
			"--alive-check", p.Listen, "--consul", p.ConsulProxy.Addr(), "--redis", p.RedisProxy.Addr(), "--insecure-internal",
			"--offer-timeout", "2s", "--log-format", "json", "--log-level", level}, cfg.MatcherArgs...)
		c.Matchers = append(c.Matchers, p)
	}
	for _, p := range c.Matchers {
		if err := c.run(ctx, p); err != nil {
			return nil, err
		}
	}
	for i := range cfg.Routers {
		id := fmt.Sprintf("r%d", i+1)
		p, err := c.newProcess(id, fmt.Sprintf("127.0.0.%d", 21+i), false)
		if err != nil {
			return nil, err
		}
		p.args = []string{"router", "--listen", p.Listen, "--consul", p.ConsulProxy.Addr(), "--redis", p.RedisProxy.Addr(),
			"--auth=off", "--insecure-internal", "--client-streams", "0", "--client-update-rate", "0",
			"--client-request-rate", "0", "--log-format", "json", "--log-level", level}
		c.Routers = append(c.Routers, p)
		if err := c.run(ctx, p); err != nil {
			return nil, err
		}
	}
	return c, nil
}

// newProcess makes a geomatch process with a listen address on host and
// its proxies (an inbound one for matchers).
func (c *Cluster) newProcess(id, host string, inbound bool) (*Process, error) {
	listen, err := freeAddr(host)
	if err != nil {
		return nil, err
	}
	f, err := os.OpenFile(filepath.Join(c.cfg.Dir, id+".log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, fmt.Errorf("log of %s: %w", id, err)
	}
	p := &Process{ID: id, Listen: listen, Advertise: listen, path: c.cfg.Binary, log: f}
	if p.ConsulProxy, err = c.proxy(id+"→consul", c.Consul.Listen); err != nil {
		return nil, err
	}
	if p.RedisProxy, err = c.proxy(id+"→redis", c.Redis.Listen); err != nil {
		return nil, err
	}
	if inbound {
		if p.Inbound, err = c.proxy("→"+id, listen); err != nil {
			return nil, err
		}
		p.Advertise = p.Inbound.Addr()
	}
	return p, nil
}

func (c *Cluster) proxy(name, target string) (*Proxy, error) {
	p, err := NewProxy(name, "127.0.0.1:0", target)
	if err != nil {
		return nil, err
	}
	c.proxies = append(c.proxies, p)
	return p, nil
}

// run starts p and waits until it accepts connections.
func (c *Cluster) run(ctx context.Context, p *Process) error {
	if err := p.start(); err != nil {
		return err
	}
	return waitListening(ctx, p, 60*time.Second)
}

// Restart starts a process again on the same address and waits until it
// listens.
func (c *Cluster) Restart(ctx context.Context, p *Process) error {
	if p.Running() {
		return fmt.Errorf("restart %s: still running", p.ID)
	}
	return c.run(ctx, p)
}

// Matcher returns the matcher with id.
func (c *Cluster) Matcher(id string) (*Process, error) {
	for _, m := range c.Matchers {
		if m.ID == id {
			return m, nil
		}
	}
	return nil, fmt.Errorf("no matcher %q", id)
}

// RouterAddrs returns the routers' public addresses.
func (c *Cluster) RouterAddrs() []string {
	out := make([]string, len(c.Routers))
	for i, r := range c.Routers {
		out[i] = r.Listen
	}
	return out
}

// ConsulProxies returns every proxy to Consul.
func (c *Cluster) ConsulProxies() []*Proxy {
	var out []*Proxy
	for _, p := range slices.Concat(c.Matchers, c.Routers) {
		out = append(out, p.ConsulProxy)
	}
	return out
}

// Close ends routers and matchers (SIGKILL: the run is over and its state
// is thrown away, so there is nothing to hand over), then Redis and
// Consul, and the proxies.
func (c *Cluster) Close() {
	for _, p := range slices.Concat(c.Routers, c.Matchers) {
		if p.Running() {
			_ = p.Signal(syscall.SIGKILL)
		}
	}
	for _, p := range slices.Concat(c.Routers, c.Matchers) {
		p.Wait(5 * time.Second)
	}
	for _, p := range []*Process{c.Redis, c.Consul} {
		if p != nil {
			p.stop(5 * time.Second)
		}
	}
	for _, pr := range c.proxies {
		_ = pr.Close()
	}
	for _, group := range [][]*Process{c.Routers, c.Matchers, {c.Redis, c.Consul}} {
		for _, p := range group {
			if p != nil && p.log != nil {
				_ = p.log.Close()
			}
		}
	}
}

// startConsul runs a dev agent on loopback ports.
func (c *Cluster) startConsul(ctx context.Context) error {
	ports := make([]string, 4)
	for i := range ports {
		a, err := freeAddr("127.0.0.1")
		if err != nil {
			return err
		}
		_, ports[i], _ = net.SplitHostPort(a)
	}
	f, err := os.OpenFile(filepath.Join(c.cfg.Dir, "consul.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return fmt.Errorf("consul log: %w", err)
	}
	p := &Process{ID: "consul", Listen: "127.0.0.1:" + ports[0], path: c.cfg.ConsulBinary, log: f,
		args: []string{"agent", "-dev", "-bind", "127.0.0.1", "-client", "127.0.0.1",
			"-http-port", ports[0], "-dns-port", "-1", "-grpc-port", "-1", "-server-port", ports[1],
			"-serf-lan-port", ports[2], "-serf-wan-port", ports[3], "-log-level", "warn"}}
	c.Consul = p
	if err := p.start(); err != nil {
		return err
	}
	client := &http.Client{Timeout: time.Second}
	return waitFor(ctx, p, 30*time.Second, func() bool {
		resp, err := client.Get("http://" + p.Listen + "/v1/status/leader")
		if err != nil {
			return false
		}
		defer resp.Body.Close()
		line, _ := bufio.NewReader(resp.Body).ReadString('\n')
		return resp.StatusCode == 200 && len(strings.Trim(line, "\" \n")) > 0
	})
}

// startRedis runs redis-server on a loopback port without persistence.
func (c *Cluster) startRedis(ctx context.Context) error {
	addr, err := freeAddr("127.0.0.1")
	if err != nil {
		return err
	}
	_, port, _ := net.SplitHostPort(addr)
	f, err := os.OpenFile(filepath.Join(c.cfg.Dir, "redis.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return fmt.Errorf("redis log: %w", err)
	}
	p := &Process{ID: "redis", Listen: addr, path: c.cfg.RedisBinary, log: f,
		args: []string{"--port", port, "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"}}
	c.Redis = p
	if err := p.start(); err != nil {
		return err
	}
	return waitFor(ctx, p, 20*time.Second, func() bool {
		conn, err := net.DialTimeout("tcp", addr, time.Second)
		if err != nil {
			return false
		}
		defer conn.Close()
		_ = conn.SetDeadline(time.Now().Add(time.Second))
		if _, err := conn.Write([]byte("PING\r\n")); err != nil {
			return false
		}
		line, _ := bufio.NewReader(conn).ReadString('\n')
		return strings.HasPrefix(line, "+PONG")
	})
}

// waitListening waits until p accepts TCP connections.
func waitListening(ctx context.Context, p *Process, d time.Duration) error {
	return waitFor(ctx, p, d, func() bool {
		conn, err := net.DialTimeout("tcp", p.Listen, time.Second)
		if err != nil {
			return false
		}
		conn.Close()
		return true
	})
}

// waitFor polls cond until it holds, p exits, ctx ends or d passes.
func waitFor(ctx context.Context, p *Process, d time.Duration, cond func() bool) error {
	deadline := time.Now().Add(d)
	for {
		if cond() {
			return nil
		}
		if !p.Running() {
			return fmt.Errorf("%s exited before it was ready (see its log)", p.ID)
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s not ready within %v", p.ID, d)
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("waiting for %s: %w", p.ID, ctx.Err())
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// freeAddr asks the kernel for a free port on a loopback host.
func freeAddr(host string) (string, error) {
	if ip := net.ParseIP(host); ip == nil || !ip.IsLoopback() {
		return "", fmt.Errorf("%s is not a loopback address", host)
	}
	l, err := net.Listen("tcp", net.JoinHostPort(host, "0"))
	if err != nil {
		return "", fmt.Errorf("pick a port on %s: %w", host, err)
	}
	defer l.Close()
	return l.Addr().String(), nil
}

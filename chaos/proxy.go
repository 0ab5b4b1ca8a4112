package chaos

import (
	"fmt"
	"net"
	"sync"
)

// ProxyMode is what a Proxy does with connections.
type ProxyMode int

// Proxy modes.
const (
	// Forward passes connections through.
	Forward ProxyMode = iota
	// Refuse closes existing connections and every new one at once, like
	// a host that answers with resets.
	Refuse
	// Blackhole accepts connections and drops everything sent either way,
	// like a link that silently loses packets; on Heal the connections it
	// held are closed (their streams lost bytes).
	Blackhole
)

func (m ProxyMode) String() string {
	switch m {
	case Forward:
		return "forward"
	case Refuse:
		return "refuse"
	case Blackhole:
		return "blackhole"
	}
	return fmt.Sprintf("ProxyMode(%d)", int(m))
}

// Proxy is a loopback TCP proxy the harness controls: processes are
// configured to reach Consul, Redis or a matcher through one, and cutting
// it partitions them.
type Proxy struct {
	Name   string
	target string
	ln     net.Listener

	mu    sync.Mutex
	mode  ProxyMode
	conns map[*proxyConn]struct{}
	wg    sync.WaitGroup
	done  bool
}

// proxyConn is one proxied connection.
type proxyConn struct {
	client, server net.Conn
	once           sync.Once
}

func (c *proxyConn) close() {
	c.once.Do(func() {
		c.client.Close()
		c.server.Close()
	})
}

// maxProxyConns bounds the connections one proxy holds.
const maxProxyConns = 4096

// NewProxy listens on listen (a loopback host:port; port 0 picks one)
// and forwards to target.
func NewProxy(name, listen, target string) (*Proxy, error) {
	ln, err := net.Listen("tcp", listen)
	if err != nil {
		return nil, fmt.Errorf("proxy %s: %w", name, err)
	}
	p := &Proxy{Name: name, target: target, ln: ln, conns: map[*proxyConn]struct{}{}}
	p.wg.Add(1)
	go p.accept()
	return p, nil
}

// Addr is the address to dial instead of the target.
func (p *Proxy) Addr() string { return p.ln.Addr().String() }

// Target is where the proxy forwards to.
func (p *Proxy) Target() string { return p.target }

// Mode returns the current mode.
func (p *Proxy) Mode() ProxyMode {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.mode
}

// Cut refuses or blackholes connections until Heal.
func (p *Proxy) Cut(mode ProxyMode) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.mode = mode
	if mode == Refuse {
		for c := range p.conns {
			c.close()
		}
	}
}

// Heal forwards again. Connections held while blackholed are closed.
func (p *Proxy) Heal() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.mode == Blackhole {
		for c := range p.conns {
			c.close()
		}
	}
	p.mode = Forward
}

// Close stops the proxy and closes its connections.
func (p *Proxy) Close() error {
	p.mu.Lock()
	p.done = true
	for c := range p.conns {
		c.close()
	}
	p.mu.Unlock()
	err := p.ln.Close()
	p.wg.Wait()
	return err
}

func (p *Proxy) accept() {
	defer p.wg.Done()
	for {
		client, err := p.ln.Accept()
		if err != nil {
			return // closed
		}
		p.mu.Lock()
		mode, done, full := p.mode, p.done, len(p.conns) >= maxProxyConns
		p.mu.Unlock()
		if done || full || mode == Refuse {
			client.Close()
			continue
		}
		p.wg.Add(1)
		go p.serve(client)
	}
}

// serve dials the target and copies both ways; in Blackhole mode the
// bytes read are dropped.
func (p *Proxy) serve(client net.Conn) {
	defer p.wg.Done()
	server, err := net.Dial("tcp", p.target)
	if err != nil {
		client.Close()
		return
	}
	c := &proxyConn{client: client, server: server}
	p.mu.Lock()
	if p.done || p.mode == Refuse {
		p.mu.Unlock()
		c.close()
		return
	}
	p.conns[c] = struct{}{}
	p.mu.Unlock()
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { defer wg.Done(); p.pipe(c, server, client) }()
	go func() { defer wg.Done(); p.pipe(c, client, server) }()
	wg.Wait()
	p.mu.Lock()
	delete(p.conns, c)
	p.mu.Unlock()
}

// pipe copies src to dst until either side fails, dropping what it reads
// while the proxy blackholes.
func (p *Proxy) pipe(c *proxyConn, dst, src net.Conn) {
	defer c.close()
	buf := make([]byte, 32<<10)
	for {
		n, err := src.Read(buf)
		if n > 0 && p.Mode() == Forward {
			if _, werr := dst.Write(buf[:n]); werr != nil {
				return
			}
		}
		if err != nil {
			return // EOF or closed: the other direction ends with it
		}
	}
}

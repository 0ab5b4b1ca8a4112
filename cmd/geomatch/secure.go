package main

import (
	"crypto/rand"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"google.golang.org/grpc"

	"github.com/geomatch/geomatch/auth"
	"github.com/geomatch/geomatch/internal/serve"
	"github.com/geomatch/geomatch/internal/tlsconfig"
	"github.com/geomatch/geomatch/router"
)

// tlsFlags are the TLS files of a router or matcher: its certificate and
// key, and the CA of the cluster. All three go together: a process that
// serves TLS also dials matchers, which require a client certificate of
// that CA (mutual TLS).
type tlsFlags struct {
	cert, key, ca string
}

func (t *tlsFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&t.cert, "tls-cert", "", "PEM certificate (chain) to serve with and to present to matchers; with --tls-key and --tls-ca, turns TLS on (off: plaintext)")
	fs.StringVar(&t.key, "tls-key", "", "PEM private key of --tls-cert")
	fs.StringVar(&t.ca, "tls-ca", "", "PEM CA bundle of the cluster: matchers require client certificates it signed, and servers dialled are verified against it")
}

func (t *tlsFlags) files() tlsconfig.Files {
	return tlsconfig.Files{Cert: t.cert, Key: t.key, CA: t.ca}
}

// nodeTLS is what tlsFlags make of a server and of its dials to matchers;
// all empty (plaintext) without TLS.
type nodeTLS struct {
	server []grpc.ServerOption
	dial   []grpc.DialOption
}

// node returns the TLS setup of a router (internal false: its public API
// takes clients without certificates) or a matcher (internal true: mutual
// TLS).
func (t *tlsFlags) node(internal bool) (nodeTLS, error) {
	f := t.files()
	if !f.Enabled() {
		return nodeTLS{}, nil
	}
	if f.Cert == "" || f.Key == "" || f.CA == "" {
		return nodeTLS{}, errors.New("--tls-cert, --tls-key and --tls-ca go together: the cluster's hops use mutual TLS")
	}
	clients := tlsconfig.VerifyIfGiven
	if internal {
		clients = tlsconfig.RequireClientCert
	}
	srv, err := tlsconfig.Server(f, clients)
	if err != nil {
		return nodeTLS{}, fmt.Errorf("--tls-cert: %w", err)
	}
	cli, err := tlsconfig.Client(f)
	if err != nil {
		return nodeTLS{}, fmt.Errorf("--tls-cert: %w", err)
	}
	return nodeTLS{server: serve.TLS(srv), dial: []grpc.DialOption{serve.DialCreds(cli)}}, nil
}

// authFlags turn token authentication of the public API on or off.
type authFlags struct {
	mode    string
	keyFile string
	key     string
}

// register adds the flags; def is the default of --auth (on for routers,
// off for geomatch dev).
func (a *authFlags) register(fs *flag.FlagSet, def string) {
	fs.StringVar(&a.mode, "auth", def, "token authentication of the public API: on (every call needs a signed token; see geomatch admin token) or off (anyone may act as any driver, rider or admin)")
	a.registerKeys(fs)
}

// registerKeys adds the key flags only.
func (a *authFlags) registerKeys(fs *flag.FlagSet) {
	fs.StringVar(&a.keyFile, "auth-key-file", "", "file of base64 token keys, one a line, the signing key first (make one with: openssl rand -base64 32)")
	fs.StringVar(&a.key, "auth-key", "", "base64 token key(s), as in --auth-key-file (prefer the environment twin)")
}

// on reports whether authentication is on, or an error for a bad --auth.
func (a *authFlags) on() (bool, error) {
	switch a.mode {
	case "on":
		return true, nil
	case "off":
		return false, nil
	}
	return false, fmt.Errorf("--auth: %q is neither on nor off", a.mode)
}

// keys loads the keyring from --auth-key-file or --auth-key; nil when
// neither is given.
func (a *authFlags) keys() (*auth.Keyring, error) {
	switch {
	case a.keyFile != "" && a.key != "":
		return nil, errors.New("--auth-key-file and --auth-key: give one")
	case a.keyFile != "":
		text, err := os.ReadFile(a.keyFile)
		if err != nil {
			return nil, fmt.Errorf("--auth-key-file: %w", err)
		}
		k, err := auth.ParseKeys(text)
		if err != nil {
			return nil, fmt.Errorf("--auth-key-file %s: %w", a.keyFile, err)
		}
		return k, nil
	case a.key != "":
		k, err := auth.ParseKeys([]byte(a.key))
		if err != nil {
			return nil, fmt.Errorf("--auth-key: %w", err)
		}
		return k, nil
	}
	return nil, nil
}

// keyring returns the keyring a server verifies tokens with: nil with
// --auth=off, an error with --auth=on and no key (authentication is
// turned off only explicitly).
func (a *authFlags) keyring() (*auth.Keyring, error) {
	on, err := a.on()
	if err != nil || !on {
		return nil, err
	}
	k, err := a.keys()
	if err != nil {
		return nil, err
	}
	if k == nil {
		return nil, errors.New("--auth=on needs a token key: --auth-key-file or GEOMATCH_AUTH_KEY (or run with --auth=off to let anyone act as anyone)")
	}
	return k, nil
}

// warnAuthOff says loudly, in the log and on stdout, that anyone may act
// as anyone.
func warnAuthOff(stdout io.Writer, log *slog.Logger, who string) {
	log.Warn("authentication is off (--auth=off): any caller may act as any driver, rider or admin")
	fmt.Fprintf(stdout, "%s: WARNING: authentication is off (--auth=off): any caller may act as any driver, rider or admin\n", who)
}

// autoNumber is a number flag whose default depends on other flags;
// "auto" until set.
type autoNumber struct {
	v   float64
	set bool
}

func (n *autoNumber) String() string {
	if n == nil || !n.set {
		return "auto"
	}
	return strconv.FormatFloat(n.v, 'g', -1, 64)
}

func (n *autoNumber) Set(s string) error {
	if s == "auto" {
		n.set = false
		return nil
	}
	v, err := strconv.ParseFloat(s, 64)
	if err != nil || v < 0 || v != v {
		return fmt.Errorf("%q is not auto or a number ≥ 0", s)
	}
	n.v, n.set = v, true
	return nil
}

// or returns the value if set, else def.
func (n *autoNumber) or(def float64) float64 {
	if n.set {
		return n.v
	}
	return def
}

// Per-client limits of a router with authentication on (clients are token
// subjects). With --auth=off clients are told apart by IP address only,
// which lumps together everybody behind one proxy or NAT, so the limits
// are off unless given.
const (
	defaultClientUpdateRate  = 10 // a driver app reports every few seconds
	defaultClientRequestRate = 10
	defaultClientStreams     = 4 // one per app, with room for reconnects
)

// limitFlags bound what one client may ask of a router.
type limitFlags struct {
	updates, requests, streams autoNumber
}

func (l *limitFlags) register(fs *flag.FlagSet) {
	fs.Var(&l.updates, "client-update-rate", fmt.Sprintf("location updates per second per client (token subject; IP address with --auth=off), bursts of twice that; 0: unlimited; auto: %d with --auth=on, unlimited with --auth=off", defaultClientUpdateRate))
	fs.Var(&l.requests, "client-request-rate", fmt.Sprintf("other calls per second per client (searches, rides, trips, stream opens); 0: unlimited; auto: %d with --auth=on, unlimited with --auth=off", defaultClientRequestRate))
	fs.Var(&l.streams, "client-streams", fmt.Sprintf("driver streams one client may hold open; 0: unlimited; auto: %d with --auth=on, unlimited with --auth=off", defaultClientStreams))
}

// limits returns the router limits; authOn picks the defaults. Admin
// tokens are never limited.
func (l *limitFlags) limits(authOn bool) router.Limits {
	var up, req, st float64
	if authOn {
		up, req, st = defaultClientUpdateRate, defaultClientRequestRate, defaultClientStreams
	}
	return router.Limits{UpdatesPerS: l.updates.or(up), RequestsPerS: l.requests.or(req), StreamsPerClient: int(l.streams.or(st))}
}

// args passes the flags that were set on to another command.
func (l *limitFlags) args() []string {
	var a []string
	for _, f := range []struct {
		name string
		n    *autoNumber
	}{{"--client-update-rate", &l.updates}, {"--client-request-rate", &l.requests}, {"--client-streams", &l.streams}} {
		if f.n.set {
			a = append(a, f.name, f.n.String())
		}
	}
	return a
}

// routerSecurity is what the security flags of a router make of it.
type routerSecurity struct {
	tls    nodeTLS
	keys   *auth.Keyring
	limits router.Limits
}

// clientFlags are the security flags of a client of the public API (sim,
// bench, admin): TLS trust, an optional client certificate, and a token.
type clientFlags struct {
	ca, cert, key, token string
}

func (c *clientFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&c.ca, "tls-ca", "", "PEM CA bundle to verify the router's certificate with; turns TLS on (off: plaintext)")
	fs.StringVar(&c.cert, "tls-cert", "", "PEM client certificate to present (optional; with --tls-key)")
	fs.StringVar(&c.key, "tls-key", "", "PEM private key of --tls-cert")
	fs.StringVar(&c.token, "token", "", "bearer token for the router's public API (geomatch admin token mints one; prefer the environment twin)")
}

// dialOptions returns the transport credentials and per-call token of a
// connection to target. A token is sent without TLS only to a loopback
// address, where nobody can listen in.
func (c *clientFlags) dialOptions(target string) ([]grpc.DialOption, error) {
	f := tlsconfig.Files{CA: c.ca, Cert: c.cert, Key: c.key}
	secure := f.Enabled()
	opts := []grpc.DialOption{serve.DialCreds(nil)}
	if secure {
		cfg, err := tlsconfig.Client(f)
		if err != nil {
			return nil, fmt.Errorf("--tls-ca: %w", err)
		}
		opts = []grpc.DialOption{serve.DialCreds(cfg)}
	}
	if c.token != "" {
		if !secure && !isLoopback(target) {
			return nil, fmt.Errorf("--token: will not send a token in plaintext to %s; give --tls-ca", target)
		}
		opts = append(opts, grpc.WithPerRPCCredentials(auth.Bearer{Token: c.token, Insecure: !secure}))
	}
	return opts, nil
}

// isLoopback reports whether host:port names a loopback address.
func isLoopback(target string) bool {
	host, _, err := net.SplitHostPort(target)
	if err != nil {
		host = target
	}
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// devSecurity is the throwaway material of `geomatch dev`: a directory
// holding a generated CA and certificate (--tls) and a generated token key
// (--auth=on without a key). Remove deletes it.
type devSecurity struct {
	dir  string
	tls  *tlsconfig.Files
	keys *auth.Keyring
	// keyFile is the generated key's file ("" when the key was given).
	keyFile string
	// authArgs are the router flags that verify tokens with keys.
	authArgs []string
}

// devCertValidity is how long the certificates of geomatch dev --tls are
// valid.
const devCertValidity = 7 * 24 * time.Hour

// prepareDev builds the dev cluster's security: certificates from the
// flags, or generated with genTLS; the token keys from the flags, or
// generated when authentication is on without a key.
func prepareDev(tf *tlsFlags, genTLS bool, af *authFlags) (*devSecurity, error) {
	d := &devSecurity{}
	on, err := af.on()
	if err != nil {
		return nil, err
	}
	if on {
		if d.keys, err = af.keys(); err != nil {
			return nil, err
		}
		if af.keyFile != "" {
			d.authArgs = []string{"--auth", "on", "--auth-key-file", af.keyFile}
		} else if af.key != "" {
			d.authArgs = []string{"--auth", "on", "--auth-key", af.key}
		}
	}
	files := tf.files()
	switch {
	case genTLS && files.Enabled():
		return nil, errors.New("--tls generates certificates: give it or --tls-cert/--tls-key/--tls-ca, not both")
	case files.Enabled():
		if _, err := tf.node(true); err != nil {
			return nil, err
		}
		d.tls = &files
	}
	if genTLS || (on && d.keys == nil) {
		if d.dir, err = os.MkdirTemp("", "geomatch-dev-"); err != nil {
			return nil, fmt.Errorf("throwaway secrets: %w", err)
		}
	}
	if genTLS {
		g, err := tlsconfig.Generate(d.dir, tlsconfig.DevHosts, devCertValidity)
		if err != nil {
			return nil, errors.Join(err, d.remove())
		}
		d.tls = &g.Files
	}
	if on && d.keys == nil {
		secret := make([]byte, 32)
		_, _ = rand.Read(secret) // crypto/rand.Read never fails
		d.keyFile = filepath.Join(d.dir, "auth.key")
		if err := os.WriteFile(d.keyFile, []byte(auth.EncodeKey(secret)+"\n"), 0o600); err != nil {
			return nil, errors.Join(fmt.Errorf("write token key: %w", err), d.remove())
		}
		if d.keys, err = auth.NewKeyring(secret); err != nil {
			return nil, errors.Join(err, d.remove())
		}
		d.authArgs = []string{"--auth", "on", "--auth-key-file", d.keyFile}
	}
	return d, nil
}

// remove deletes the generated files.
func (d *devSecurity) remove() error {
	if d.dir == "" {
		return nil
	}
	return os.RemoveAll(d.dir)
}

// devDemoToken is the lifetime of the admin token geomatch dev prints.
const devDemoToken = 24 * time.Hour

// announce prints how to reach the dev cluster securely, and returns the
// client flags its own clients (the demo fleet) use: the CA and an admin
// token.
func (d *devSecurity) announce(stdout io.Writer, routerAddr string) (clientFlags, error) {
	var cf clientFlags
	if d.tls != nil {
		cf.ca = d.tls.CA
		if d.dir != "" {
			fmt.Fprintf(stdout, "geomatch dev: TLS on, mutual TLS between router and matchers; throwaway CA and certificate (127.0.0.1, ::1, localhost) in %s\n", d.dir)
		}
		fmt.Fprintf(stdout, "geomatch dev: clients trust %s (grpcurl -cacert %s %s list)\n", d.tls.CA, d.tls.CA, routerAddr)
	}
	if d.keys != nil {
		tok, err := d.keys.Issue("dev-admin", auth.RoleAdmin, devDemoToken, time.Now())
		if err != nil {
			return cf, err
		}
		cf.token = tok
		keyRef := "your --auth-key-file"
		if d.keyFile != "" {
			keyRef = d.keyFile
			fmt.Fprintf(stdout, "geomatch dev: authentication on; throwaway token key in %s\n", d.keyFile)
		}
		fmt.Fprintf(stdout, "geomatch dev: an admin token for %v: %s\n", devDemoToken, tok)
		fmt.Fprintf(stdout, "geomatch dev: mint others with GEOMATCH_AUTH_KEY_FILE=%s geomatch admin token --subject cab-1 --role driver\n", keyRef)
	}
	return cf, nil
}

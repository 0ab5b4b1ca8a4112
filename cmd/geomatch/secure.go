package main

import (
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

// authFlags turn token authentication of the public API on or off, and
// give a router the keys it verifies tokens with.
type authFlags struct {
	mode string
	// publicKeys is the Ed25519 key set file (JWKS).
	publicKeys string
	// keyFile and key are HS256 secrets (deprecated).
	keyFile string
	key     string
	// issuer and audience are the "iss" and "aud" claims required.
	issuer, audience string
}

// register adds the flags; def is the default of --auth (on for routers,
// off for geomatch dev).
func (a *authFlags) register(fs *flag.FlagSet, def string) {
	fs.StringVar(&a.mode, "auth", def, "token authentication of the public API: on (every call needs a signed token; see geomatch admin token) or off (anyone may act as any driver, rider or admin)")
	fs.StringVar(&a.publicKeys, "auth-public-keys", "", "JSON Web Key Set file of the Ed25519 public keys tokens are verified with; every key listed verifies, so keys rotate by listing the new one before the old one goes (make and extend it with geomatch admin keygen)")
	a.registerKeys(fs)
	a.registerClaims(fs)
}

// registerKeys adds the HS256 key flags only.
func (a *authFlags) registerKeys(fs *flag.FlagSet) {
	fs.StringVar(&a.keyFile, "auth-key-file", "", "deprecated (HS256: whoever verifies can mint tokens; use --auth-public-keys): file of base64 token keys, one a line, the signing key first")
	fs.StringVar(&a.key, "auth-key", "", "deprecated (HS256): base64 token key(s), as in --auth-key-file (prefer the environment twin)")
}

// registerClaims adds the flags of the issuer and audience claims.
func (a *authFlags) registerClaims(fs *flag.FlagSet) {
	fs.StringVar(&a.issuer, "auth-issuer", auth.DefaultIssuer, "the issuer (\"iss\") of tokens, written when minting and required when verifying")
	fs.StringVar(&a.audience, "auth-audience", auth.DefaultAudience, "the audience (\"aud\") of tokens, written when minting and required when verifying")
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

// secrets loads the HS256 secrets of --auth-key-file or --auth-key; none
// when neither is given.
func (a *authFlags) secrets() ([][]byte, error) {
	switch {
	case a.keyFile != "" && a.key != "":
		return nil, errors.New("--auth-key-file and --auth-key: give one")
	case a.keyFile != "":
		text, err := os.ReadFile(a.keyFile)
		if err != nil {
			return nil, fmt.Errorf("--auth-key-file: %w", err)
		}
		s, err := auth.ParseSecrets(text)
		if err != nil {
			return nil, fmt.Errorf("--auth-key-file %s: %w", a.keyFile, err)
		}
		if len(s) == 0 {
			return nil, fmt.Errorf("--auth-key-file %s: no key", a.keyFile)
		}
		return s, nil
	case a.key != "":
		s, err := auth.ParseSecrets([]byte(a.key))
		if err != nil {
			return nil, fmt.Errorf("--auth-key: %w", err)
		}
		if len(s) == 0 {
			return nil, errors.New("--auth-key: no key")
		}
		return s, nil
	}
	return nil, nil
}

// keys loads the keyring that verifies tokens: the public keys of
// --auth-public-keys and the HS256 secrets of --auth-key-file or
// --auth-key; nil when none is given.
func (a *authFlags) keys() (*auth.Keyring, error) {
	cfg := auth.Config{Issuer: a.issuer, Audience: a.audience}
	var err error
	if cfg.Secrets, err = a.secrets(); err != nil {
		return nil, err
	}
	if a.publicKeys != "" {
		if cfg.PublicKeys, err = readKeySet(a.publicKeys); err != nil {
			return nil, fmt.Errorf("--auth-public-keys: %w", err)
		}
	}
	if len(cfg.Secrets) == 0 && len(cfg.PublicKeys) == 0 {
		return nil, nil
	}
	k, err := auth.New(cfg)
	if err != nil {
		return nil, fmt.Errorf("token keys: %w", err)
	}
	return k, nil
}

// readKeySet reads the Ed25519 public keys of a key set file.
func readKeySet(path string) ([]auth.PublicKey, error) {
	doc, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	keys, err := auth.ParseKeySet(doc)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return keys, nil
}

// args are the flags that give another process the same keys.
func (a *authFlags) args() []string {
	out := []string{"--auth", "on"}
	for _, f := range []struct{ name, v, def string }{
		{"--auth-public-keys", a.publicKeys, ""}, {"--auth-key-file", a.keyFile, ""}, {"--auth-key", a.key, ""},
		{"--auth-issuer", a.issuer, auth.DefaultIssuer}, {"--auth-audience", a.audience, auth.DefaultAudience},
	} {
		if f.v != f.def && f.v != "" {
			out = append(out, f.name, f.v)
		}
	}
	return out
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
		return nil, errors.New("--auth=on needs a token key: --auth-public-keys (GEOMATCH_AUTH_PUBLIC_KEYS; an Ed25519 key set, see geomatch admin keygen) or, deprecated, --auth-key-file or GEOMATCH_AUTH_KEY (or run with --auth=off to let anyone act as anyone)")
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
// subjects).
const (
	defaultClientUpdateRate  = 10 // a driver app reports every few seconds
	defaultClientRequestRate = 10
	defaultClientStreams     = 4 // one per app, with room for reconnects
)

// Per-client limits of a router with --auth=off, where a client is a peer
// IP address: everybody behind one NAT, proxy or load balancer is one
// client, so they are sized for a crowd, yet bound what one host can take.
// 1,000 driver streams hold some 3,000 goroutines and 30-60 MB; 1,000 apps
// reporting every 2 s send 500 updates/s, ten times less than the update
// rate, whose burst (10,000) also takes a round of `--demo-drivers 10000`.
const (
	defaultPeerUpdateRate  = 5_000
	defaultPeerRequestRate = 1_000
	defaultPeerStreams     = 1_000
)

// limitFlags bound what one client may ask of a router, and the driver
// streams of the router.
type limitFlags struct {
	updates, requests, streams autoNumber
	maxStreams                 int
}

func (l *limitFlags) register(fs *flag.FlagSet) {
	fs.Var(&l.updates, "client-update-rate", fmt.Sprintf("location updates per second per client (token subject; IP address with --auth=off), bursts of twice that; 0: unlimited; auto: %d with --auth=on, %d per IP with --auth=off", defaultClientUpdateRate, defaultPeerUpdateRate))
	fs.Var(&l.requests, "client-request-rate", fmt.Sprintf("other calls per second per client (searches, rides, trips, stream opens), bursts of twice that; 0: unlimited; auto: %d with --auth=on, %d per IP with --auth=off", defaultClientRequestRate, defaultPeerRequestRate))
	fs.Var(&l.streams, "client-streams", fmt.Sprintf("driver streams one client may hold open; 0: unlimited; auto: %d with --auth=on, %d per IP with --auth=off", defaultClientStreams, defaultPeerStreams))
	fs.IntVar(&l.maxStreams, "max-driver-streams", 0, fmt.Sprintf("driver streams the router holds open at once, all clients together (each some 3 goroutines and up to %d KiB); 0: from memory, as many as fit in half the soft memory limit or of the machine's memory (%d here); a negative value is an error", router.StreamMemory>>10, router.DefaultMaxStreams()))
}

// limits returns the router limits; authOn picks the defaults. Admin
// tokens are never limited per client.
func (l *limitFlags) limits(authOn bool) router.Limits {
	up, req, st := float64(defaultPeerUpdateRate), float64(defaultPeerRequestRate), float64(defaultPeerStreams)
	if authOn {
		up, req, st = defaultClientUpdateRate, defaultClientRequestRate, defaultClientStreams
	}
	return router.Limits{UpdatesPerS: l.updates.or(up), RequestsPerS: l.requests.or(req), StreamsPerClient: int(l.streams.or(st)), MaxStreams: l.maxStreams}
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
	if l.maxStreams > 0 {
		a = append(a, "--max-driver-streams", strconv.Itoa(l.maxStreams))
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
		d.authArgs = af.args()
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
		if err := d.generateKeys(af); err != nil {
			return nil, errors.Join(err, d.remove())
		}
	}
	return d, nil
}

// generateKeys makes the dev cluster's throwaway Ed25519 signing key (its
// private half in keyFile, for `geomatch admin token`) and the public key
// set its routers verify with.
func (d *devSecurity) generateKeys(af *authFlags) error {
	sk, err := auth.GenerateSigningKey("dev")
	if err != nil {
		return err
	}
	pemText, err := sk.MarshalPEM()
	if err != nil {
		return err
	}
	set, err := auth.MarshalKeySet(sk.Public())
	if err != nil {
		return err
	}
	d.keyFile = filepath.Join(d.dir, "signing.pem")
	if err := os.WriteFile(d.keyFile, pemText, 0o600); err != nil {
		return fmt.Errorf("write token signing key: %w", err)
	}
	setFile := filepath.Join(d.dir, "keys.json")
	if err := os.WriteFile(setFile, set, 0o644); err != nil {
		return fmt.Errorf("write token key set: %w", err)
	}
	if d.keys, err = auth.New(auth.Config{SigningKey: sk, Issuer: af.issuer, Audience: af.audience}); err != nil {
		return err
	}
	af.publicKeys = setFile
	d.authArgs = af.args()
	return nil
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
	if d.keys != nil && !d.keys.CanSign() {
		fmt.Fprintln(stdout, "geomatch dev: authentication on with your public key set; clients need tokens of its private keys: geomatch admin token --signing-key-file FILE --subject ops --role admin (the demo fleet has none)")
	}
	if d.keys != nil && d.keys.CanSign() {
		tok, err := d.keys.Issue("dev-admin", auth.RoleAdmin, devDemoToken, time.Now())
		if err != nil {
			return cf, err
		}
		cf.token = tok
		fmt.Fprintf(stdout, "geomatch dev: an admin token for %v: %s\n", devDemoToken, tok)
		if d.keyFile != "" {
			fmt.Fprintf(stdout, "geomatch dev: authentication on; throwaway Ed25519 signing key in %s\n", d.keyFile)
			fmt.Fprintf(stdout, "geomatch dev: mint others with GEOMATCH_SIGNING_KEY_FILE=%s geomatch admin token --subject cab-1 --role driver\n", d.keyFile)
		} else {
			fmt.Fprintln(stdout, "geomatch dev: mint others with geomatch admin token --auth-key-file FILE --subject cab-1 --role driver (your key)")
		}
	}
	return cf, nil
}

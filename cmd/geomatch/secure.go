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
	"github.com/geomatch/geomatch/cluster"
	"github.com/geomatch/geomatch/internal/identity"
	"github.com/geomatch/geomatch/internal/serve"
	"github.com/geomatch/geomatch/internal/tlsconfig"
	"github.com/geomatch/geomatch/router"
)

// tlsFlags are the TLS files of a router or matcher: its node certificate
// and key, and the CA of the cluster. All three go together. The
// certificate is the node's identity on the internal API: its URI SAN
// spiffe://<cluster>/<role>/<id> (geomatch ca issue) says which cluster the
// node belongs to and whether it is a router or a matcher, and matchers
// admit each internal method only from the roles that call it. A router
// also serves its public API with it (unless --public-tls=off).
//
// Without them a router or matcher refuses to start, unless
// --insecure-internal says explicitly that the internal API may run
// without identities: plaintext, or (with the files) mutual TLS that
// admits any certificate of the CA, as before identities existed.
type tlsFlags struct {
	cert, key, ca string
	// insecureInternal lets the internal API run without identities.
	insecureInternal bool
}

func (t *tlsFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&t.cert, "tls-cert", "", "PEM node certificate, the node's identity on the internal API (spiffe://CLUSTER/ROLE/ID; geomatch ca issue makes it): matchers serve with it, routers and matchers present it to matchers, and a router serves its public API with it too")
	fs.StringVar(&t.key, "tls-key", "", "PEM private key of --tls-cert")
	fs.StringVar(&t.ca, "tls-ca", "", "PEM CA bundle of the cluster (geomatch ca init): client certificates and the matchers dialled are verified against it; reloaded when the file changes, like --tls-cert and --tls-key")
	fs.BoolVar(&t.insecureInternal, "insecure-internal", false, "run the internal API (router → matcher, matcher → matcher) without node identities: plaintext without --tls-*, or mutual TLS admitting any certificate of --tls-ca; anyone who reaches a matcher may then move any driver. Refused with --auth=on")
}

func (t *tlsFlags) files() tlsconfig.Files {
	return tlsconfig.Files{Cert: t.cert, Key: t.key, CA: t.ca}
}

// nodeTLS is what tlsFlags make of a server and of its dials to matchers.
type nodeTLS struct {
	server []grpc.ServerOption
	dial   []grpc.DialOption
	// trustDomain is the cluster whose nodes a matcher admits by role;
	// empty with --insecure-internal.
	trustDomain string
	// id is the node's identity (zero with --insecure-internal).
	id identity.ID
	// insecure is --insecure-internal; mode describes the internal API.
	insecure bool
	mode     string
}

// The internal API's modes, as /readyz and the start-up lines name them.
const (
	modeIdentity      = "internal API: mutual TLS, callers authorized by identity"
	modeInsecurePlain = "internal API: INSECURE (--insecure-internal): plaintext, callers not authenticated"
	modeInsecureTLS   = "internal API: INSECURE (--insecure-internal): mutual TLS without identities, any certificate of --tls-ca may call any method"
)

// errInsecureWithAuth refuses --insecure-internal on a router whose public
// API checks tokens: the check would be for show.
var errInsecureWithAuth = errors.New("--insecure-internal: refused with --auth=on: tokens would guard the public API while anyone on the network could call the matchers directly (forge positions, read every driver); give the nodes certificates (geomatch ca init, geomatch ca issue) or turn --auth off")

// node returns the TLS setup of a node of role: a matcher serves its
// internal API with its certificate (and, unless --insecure-internal,
// authorizes callers by identity); a router serves its public API with
// it when public is true (clients need no certificate). Both dial
// matchers presenting it and accept only a matcher of their cluster.
func (t *tlsFlags) node(role identity.Role, public bool) (nodeTLS, error) {
	f := t.files()
	if f.Enabled() && (f.Cert == "" || f.Key == "" || f.CA == "") {
		return nodeTLS{}, errors.New("--tls-cert, --tls-key and --tls-ca go together: the cluster's hops use mutual TLS")
	}
	if t.insecureInternal {
		if !f.Enabled() {
			return nodeTLS{insecure: true, mode: modeInsecurePlain}, nil
		}
		return legacyTLS(f, role, public)
	}
	if !f.Enabled() {
		return nodeTLS{}, fmt.Errorf("the internal API needs node certificates: give --tls-cert, --tls-key and --tls-ca (geomatch ca init --dir DIR; geomatch ca issue --dir DIR --role %s --id ID), or --insecure-internal to let anyone who reaches a matcher call it", role)
	}
	n, err := tlsconfig.LoadNode(f)
	if err != nil {
		return nodeTLS{}, fmt.Errorf("--tls-cert: %w (or give --insecure-internal to run without identities)", err)
	}
	if n.ID.Role != role {
		return nodeTLS{}, fmt.Errorf("--tls-cert: %s is a %s's identity; a %s needs one of its own (geomatch ca issue --role %s)", n.ID, n.ID.Role, role, role)
	}
	out := nodeTLS{dial: []grpc.DialOption{serve.DialCreds(n.ClientConfig(identity.RoleMatcher))}, id: n.ID, mode: modeIdentity + " (" + n.ID.String() + ")"}
	if role == identity.RoleMatcher {
		out.trustDomain = n.ID.TrustDomain
	}
	if role == identity.RoleMatcher || public {
		out.server = serve.TLS(n.ServerConfig())
	}
	return out, nil
}

// legacyTLS is the mutual TLS of --insecure-internal with certificates:
// matchers require a client certificate of the CA, whatever it names, and
// dials check the matchers' host names.
func legacyTLS(f tlsconfig.Files, role identity.Role, public bool) (nodeTLS, error) {
	clients := tlsconfig.VerifyIfGiven
	if role == identity.RoleMatcher {
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
	out := nodeTLS{dial: []grpc.DialOption{serve.DialCreds(cli)}, insecure: true, mode: modeInsecureTLS}
	if role == identity.RoleMatcher || public {
		out.server = serve.TLS(srv)
	}
	return out, nil
}

// announce says how the internal API is secured: loudly (stdout and a
// WARN log line) when it is not, and in /readyz either way.
func (n nodeTLS) announce(stdout io.Writer, log *slog.Logger, obs *cluster.Observer, who string) {
	obs.AddDetail(n.mode)
	if !n.insecure {
		log.Info("internal API secured by identity", "identity", n.id.String(), "cluster", n.id.TrustDomain)
		return
	}
	warnInsecureInternal(stdout, log, who, n.mode)
}

// warnInsecureInternal says loudly that the internal API admits anyone.
func warnInsecureInternal(stdout io.Writer, log *slog.Logger, who, mode string) {
	log.Warn("the internal API is insecure (--insecure-internal): anyone who reaches a matcher may move any driver and read every position", "mode", mode)
	fmt.Fprintf(stdout, "%s: WARNING: %s; anyone who reaches a matcher may move any driver and read every position\n", who, mode)
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

// warnAuthOff says loudly that anyone may act as anyone: once, on stdout
// for a person at a terminal when the log is text on the same terminal,
// and in the log too when it is JSON (for a log pipeline).
func warnAuthOff(stdout io.Writer, log *slog.Logger, who string) {
	fmt.Fprintf(stdout, "%s: WARNING: authentication is off (--auth=off): any caller may act as any driver, rider or admin\n", who)
	if _, jsonLog := log.Handler().(*slog.JSONHandler); jsonLog {
		log.Warn("authentication is off (--auth=off): any caller may act as any driver, rider or admin")
	}
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
	dir string
	// tls is the public API's certificate (clients trust tls.CA); nil:
	// plaintext.
	tls *tlsconfig.Files
	// userTLS says tls came from --tls-cert/--tls-key/--tls-ca.
	userTLS bool
	// internalCA issues the throwaway node identities of the internal API;
	// nil with --insecure-internal.
	internalCA *tlsconfig.CA
	// caFile holds internalCA's certificate once written ("" before).
	caFile string
	keys   *auth.Keyring
	// keyFile is the generated key's file ("" when the key was given).
	keyFile string
	// authArgs are the router flags that verify tokens with keys.
	authArgs []string
}

// devCertValidity is how long the certificates of geomatch dev --tls are
// valid.
const devCertValidity = 7 * 24 * time.Hour

// devCluster is the cluster name (trust domain) of geomatch dev's
// throwaway identities.
const devCluster = "dev"

// prepareDev builds the dev cluster's security: a throwaway CA for the
// node identities of the internal API (unless --insecure-internal); the
// public API's certificate from the flags, or generated with genTLS; the
// token keys from the flags, or generated when authentication is on
// without a key.
func prepareDev(tf *tlsFlags, genTLS bool, af *authFlags) (*devSecurity, error) {
	d := &devSecurity{}
	on, err := af.on()
	if err != nil {
		return nil, err
	}
	if on && tf.insecureInternal {
		return nil, errInsecureWithAuth
	}
	if !tf.insecureInternal {
		if d.internalCA, err = tlsconfig.NewCA(devCluster, tlsconfig.ECDSAP256, devCertValidity); err != nil {
			return nil, fmt.Errorf("throwaway internal CA: %w", err)
		}
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
		if files.Cert == "" || files.Key == "" || files.CA == "" {
			return nil, errors.New("--tls-cert, --tls-key and --tls-ca go together")
		}
		if _, err := tlsconfig.Server(files, tlsconfig.VerifyIfGiven); err != nil {
			return nil, fmt.Errorf("--tls-cert: %w", err)
		}
		d.tls, d.userTLS = &files, true
	}
	if genTLS || (on && d.keys == nil) {
		if d.dir, err = os.MkdirTemp("", "geomatch-dev-"); err != nil {
			return nil, fmt.Errorf("throwaway secrets: %w", err)
		}
	}
	switch {
	case genTLS && d.internalCA != nil:
		// The public API presents a router identity of the same CA, valid
		// for the loopback names: clients trust ca.pem.
		f, err := d.nodeFiles(identity.RoleRouter, "router")
		if err != nil {
			return nil, errors.Join(err, d.remove())
		}
		d.tls = &f
	case genTLS:
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

// nodeFiles writes the CA's certificate (once) and a throwaway identity for
// node id of role, valid for the loopback names, into the temporary
// directory (made on first use), as geomatch ca issue names them.
func (d *devSecurity) nodeFiles(role identity.Role, id string) (tlsconfig.Files, error) {
	if d.dir == "" {
		var err error
		if d.dir, err = os.MkdirTemp("", "geomatch-dev-"); err != nil {
			return tlsconfig.Files{}, fmt.Errorf("throwaway secrets: %w", err)
		}
	}
	if d.caFile == "" {
		certPEM, _, err := d.internalCA.MarshalPEM()
		if err != nil {
			return tlsconfig.Files{}, err
		}
		f := filepath.Join(d.dir, "ca.pem")
		if err := os.WriteFile(f, certPEM, 0o644); err != nil {
			return tlsconfig.Files{}, fmt.Errorf("write %s: %w", f, err)
		}
		d.caFile = f
	}
	is, err := d.internalCA.Issue(tlsconfig.IssueRequest{Role: role, ID: id, Hosts: tlsconfig.DevHosts, ValidFor: devCertValidity})
	if err != nil {
		return tlsconfig.Files{}, err
	}
	f := tlsconfig.Files{CA: d.caFile, Cert: filepath.Join(d.dir, string(role)+"-"+id+".pem"), Key: filepath.Join(d.dir, string(role)+"-"+id+"-key.pem")}
	if err := os.WriteFile(f.Cert, is.CertPEM, 0o644); err != nil {
		return tlsconfig.Files{}, fmt.Errorf("write %s: %w", f.Cert, err)
	}
	if err := os.WriteFile(f.Key, is.KeyPEM, 0o600); err != nil {
		return tlsconfig.Files{}, fmt.Errorf("write %s: %w", f.Key, err)
	}
	return f, nil
}

// childArgs are the TLS flags of a router or matcher that `geomatch dev
// --consul` runs: a throwaway identity of its own (the router's public API
// stays plaintext without --tls), or --insecure-internal.
func (d *devSecurity) childArgs(role identity.Role, id string) ([]string, error) {
	if d.internalCA == nil {
		a := []string{"--insecure-internal"}
		if d.tls != nil {
			a = append(a, "--tls-cert", d.tls.Cert, "--tls-key", d.tls.Key, "--tls-ca", d.tls.CA)
		}
		return a, nil
	}
	if d.userTLS {
		return nil, errors.New("--tls-cert with --consul: each process's one certificate is its node identity; use --tls (throwaway) or --insecure-internal")
	}
	f, err := d.nodeFiles(role, id)
	if err != nil {
		return nil, err
	}
	a := []string{"--tls-cert", f.Cert, "--tls-key", f.Key, "--tls-ca", f.CA}
	if role == identity.RoleRouter && d.tls == nil {
		a = append(a, "--public-tls=off")
	}
	return a, nil
}

// internalMode describes the internal API of the dev cluster.
func (d *devSecurity) internalMode() string {
	switch {
	case d.internalCA != nil:
		return modeIdentity + " (throwaway identities, spiffe://" + devCluster + "/ROLE/ID)"
	case d.tls != nil:
		return modeInsecureTLS
	}
	return modeInsecurePlain
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
	if d.internalCA != nil {
		fmt.Fprintf(stdout, "geomatch dev: internal API: mutual TLS, every router and matcher with a throwaway identity (spiffe://%s/ROLE/ID) of a CA made at start\n", devCluster)
	}
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

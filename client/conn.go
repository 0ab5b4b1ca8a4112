package client

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"

	geomatchv1 "github.com/geomatch/geomatch/proto/geomatch/v1"
)

// MaxMessageBytes bounds every message the client receives; a nearby
// answer of 1,000 drivers or an admin listing of every shard fits many
// times over. It matches the servers' own bound.
const MaxMessageBytes = 16 << 20

// Conn is a connection to a geomatch router: one *grpc.ClientConn shared
// by every call, driver session, nearby stream and subscription made
// through it. It is safe for concurrent use. Close it when done.
type Conn struct {
	cc    grpc.ClientConnInterface
	owned *grpc.ClientConn // closed by Close; nil for a wrapped connection
	cfg   options

	drivers geomatchv1.DriverServiceClient
	riders  geomatchv1.RiderServiceClient
	fences  geomatchv1.FenceServiceClient
	events  geomatchv1.EventServiceClient
	admin   geomatchv1.AdminServiceClient
}

// Option configures Dial.
type Option func(*options) error

type options struct {
	tls       *tls.Config // nil: plaintext
	plaintext bool        // Insecure was given
	token     string
	tokenFile string
	userAgent string
	retry     RetryPolicy
	log       *slog.Logger
	dial      []grpc.DialOption
}

// WithTLS secures the connection with cfg (server verification, an
// optional client certificate). A nil cfg uses the system's roots.
func WithTLS(cfg *tls.Config) Option {
	return func(o *options) error {
		if cfg == nil {
			cfg = &tls.Config{MinVersion: tls.VersionTLS12}
		}
		o.tls = cfg
		return nil
	}
}

// WithCAFile secures the connection with TLS, verifying the router's
// certificate against the PEM bundle at path (the cluster's CA, e.g. the
// one `geomatch dev --tls` prints).
func WithCAFile(path string) Option {
	return func(o *options) error {
		pem, err := os.ReadFile(path)
		if err != nil {
			return fmt.Errorf("client: CA file: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return fmt.Errorf("client: CA file %s: no PEM certificate in it", path)
		}
		o.tls = &tls.Config{MinVersion: tls.VersionTLS12, RootCAs: pool}
		return nil
	}
}

// WithSystemRoots secures the connection with TLS, verifying the router's
// certificate against the system's roots (a router behind a public
// certificate).
func WithSystemRoots() Option { return WithTLS(nil) }

// Insecure allows a plaintext connection. Dial refuses one unless the
// address is a loopback address (a development cluster such as
// `geomatch dev`), so that neither positions nor a token cross a network
// in the clear by mistake.
func Insecure() Option {
	return func(o *options) error {
		o.plaintext = true
		return nil
	}
}

// WithToken sends token as a bearer token on every call (a token minted by
// `geomatch admin token`; a driver's token must name its driver).
func WithToken(token string) Option {
	return func(o *options) error {
		if token == "" {
			return errors.New("client: WithToken: empty token")
		}
		o.token = token
		return nil
	}
}

// WithTokenFile sends the token held in the file at path as a bearer
// token; the file is read again when it changes (checked at most once a
// second), so a token rotated on disk is picked up without reconnecting.
func WithTokenFile(path string) Option {
	return func(o *options) error {
		if path == "" {
			return errors.New("client: WithTokenFile: empty path")
		}
		o.tokenFile = path
		return nil
	}
}

// WithUserAgent prefixes the connection's user agent with ua (e.g.
// "fleet-app/2.3"), so the router's logs and metrics can tell clients
// apart.
func WithUserAgent(ua string) Option {
	return func(o *options) error {
		o.userAgent = ua
		return nil
	}
}

// WithRetry sets the retry policy of the unary calls that retry (Nearby,
// RequestRide, GetTrip, CancelTrip, UpdateLocations); NoRetry turns retries
// off. Default: DefaultRetryPolicy.
func WithRetry(p RetryPolicy) Option {
	return func(o *options) error {
		if err := p.validate(); err != nil {
			return err
		}
		o.retry = p
		return nil
	}
}

// WithLogger sets the logger of the connection's sessions and
// subscriptions (reconnects, replays). Default: no logging.
func WithLogger(l *slog.Logger) Option {
	return func(o *options) error {
		o.log = l
		return nil
	}
}

// WithDialOptions adds gRPC dial options; they come after the client's own
// and win (transport credentials, interceptors, window sizes).
func WithDialOptions(opts ...grpc.DialOption) Option {
	return func(o *options) error {
		o.dial = append(o.dial, opts...)
		return nil
	}
}

func buildOptions(opts []Option) (options, error) {
	o := options{retry: DefaultRetryPolicy(), log: slog.New(slog.DiscardHandler)}
	for _, opt := range opts {
		if err := opt(&o); err != nil {
			return o, err
		}
	}
	if o.log == nil {
		o.log = slog.New(slog.DiscardHandler)
	}
	return o, nil
}

// Dial returns a connection to the router at addr (host:port). The
// connection is made lazily, on the first call, and re-made by gRPC when it
// breaks. Without WithTLS, WithCAFile or WithSystemRoots, Dial needs
// Insecure and a loopback addr.
func Dial(addr string, opts ...Option) (*Conn, error) {
	o, err := buildOptions(opts)
	if err != nil {
		return nil, err
	}
	if addr == "" {
		return nil, errors.New("client: address: empty")
	}
	dial := []grpc.DialOption{grpc.WithDefaultCallOptions(grpc.MaxCallRecvMsgSize(MaxMessageBytes))}
	switch {
	case o.tls != nil:
		dial = append(dial, grpc.WithTransportCredentials(credentials.NewTLS(o.tls)))
	case o.plaintext && isLoopback(addr):
		dial = append(dial, grpc.WithTransportCredentials(insecure.NewCredentials()))
	case o.plaintext:
		return nil, fmt.Errorf("client: address %s: plaintext only to a loopback address; give WithCAFile or WithSystemRoots", addr)
	default:
		return nil, fmt.Errorf("client: address %s: no transport security; give WithCAFile, WithSystemRoots or WithTLS (or Insecure for a loopback development cluster)", addr)
	}
	if o.token != "" || o.tokenFile != "" {
		dial = append(dial, grpc.WithPerRPCCredentials(newBearer(o.token, o.tokenFile, o.tls == nil)))
	}
	if o.userAgent != "" {
		dial = append(dial, grpc.WithUserAgent(o.userAgent))
	}
	cc, err := grpc.NewClient(addr, append(dial, o.dial...)...)
	if err != nil {
		return nil, fmt.Errorf("client: connect to %s: %w", addr, err)
	}
	c := newConn(cc, o)
	c.owned = cc
	return c, nil
}

// New wraps a connection made elsewhere (with its own credentials); Close
// then leaves it open. Options that shape the connection itself (TLS,
// tokens, user agent, dial options) do not apply; WithRetry and WithLogger
// do.
func New(cc grpc.ClientConnInterface, opts ...Option) (*Conn, error) {
	o, err := buildOptions(opts)
	if err != nil {
		return nil, err
	}
	return newConn(cc, o), nil
}

func newConn(cc grpc.ClientConnInterface, o options) *Conn {
	return &Conn{cc: cc, cfg: o,
		drivers: geomatchv1.NewDriverServiceClient(cc), riders: geomatchv1.NewRiderServiceClient(cc),
		fences: geomatchv1.NewFenceServiceClient(cc), events: geomatchv1.NewEventServiceClient(cc),
		admin: geomatchv1.NewAdminServiceClient(cc)}
}

// Close closes the connection made by Dial (not one given to New). Calls,
// sessions and streams still using it fail.
func (c *Conn) Close() error {
	if c.owned == nil {
		return nil
	}
	return c.owned.Close()
}

// GRPC returns the underlying connection, for services and calls the
// client does not wrap.
func (c *Conn) GRPC() grpc.ClientConnInterface { return c.cc }

// Drivers returns the generated DriverService client on this connection.
func (c *Conn) Drivers() geomatchv1.DriverServiceClient { return c.drivers }

// Riders returns the generated RiderService client on this connection
// (no retries; Nearby, RequestRide, GetTrip and CancelTrip retry).
func (c *Conn) Riders() geomatchv1.RiderServiceClient { return c.riders }

// Fences returns the generated FenceService client on this connection.
func (c *Conn) Fences() geomatchv1.FenceServiceClient { return c.fences }

// Events returns the generated EventService client on this connection
// (Subscribe resumes broken streams).
func (c *Conn) Events() geomatchv1.EventServiceClient { return c.events }

// Admin returns the generated AdminService client on this connection
// (cluster status, ring, shards, moves; admin calls need an admin token).
func (c *Conn) Admin() geomatchv1.AdminServiceClient { return c.admin }

// isLoopback reports whether host:port names a loopback address.
func isLoopback(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		host = addr
	}
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// Invoke implements grpc.ClientConnInterface, so a Conn can back any
// generated client: geomatchv1.NewFenceServiceClient(conn).
func (c *Conn) Invoke(ctx context.Context, method string, args, reply any, opts ...grpc.CallOption) error {
	return c.cc.Invoke(ctx, method, args, reply, opts...)
}

// NewStream implements grpc.ClientConnInterface.
func (c *Conn) NewStream(ctx context.Context, desc *grpc.StreamDesc, method string, opts ...grpc.CallOption) (grpc.ClientStream, error) {
	return c.cc.NewStream(ctx, desc, method, opts...)
}

// Package serve builds and runs the gRPC servers of geomatch the same way for
// every role: bounded message sizes, keepalive enforcement, fixed
// flow-control windows, a pool of call goroutines, the standard health
// service, server reflection, load shedding (RESOURCE_EXHAUSTED once too
// many calls are in flight), INVALID_ARGUMENT for requests that do not
// decode, optional TLS, and a graceful stop that drains streams before it
// gives up and closes them.
package serve

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"runtime"
	"runtime/debug"
	"runtime/pprof"
	"strings"
	"sync/atomic"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/backoff"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/keepalive"
	"google.golang.org/grpc/reflection"
	"google.golang.org/grpc/status"

	"github.com/geomatch/geomatch/internal/metrics"
	"github.com/geomatch/geomatch/internal/tracing"
)

// MaxMessageBytes bounds every received message: 10,000 location updates of
// the largest valid size fit with room to spare.
const MaxMessageBytes = 16 << 20

// MaxStreamsPerConn bounds the concurrent calls and streams of one client
// connection, so one client cannot hold unbounded server state.
const MaxStreamsPerConn = 10000

// MaxInflightCalls bounds the unary calls one server runs at once (health
// checks aside). Beyond it a call is refused at once with
// RESOURCE_EXHAUSTED instead of queueing: a saturated node sheds load and
// its clients back off, rather than every call slowing down together.
const MaxInflightCalls = 8192

// MaxHeaderListBytes bounds the metadata of one call: a token and the
// usual headers fit many times over.
const MaxHeaderListBytes = 64 << 10

// Flow-control windows of every server. The estimator they replace never
// grows a window past 16 MiB; a stream of location updates needs far less
// than 4 MiB in flight, and 16 MiB per connection bounds what one client can
// make a server buffer.
const (
	// StreamWindowBytes is the flow-control window of one call or stream.
	StreamWindowBytes = 4 << 20
	// ConnWindowBytes is the flow-control window of one connection.
	ConnWindowBytes = 16 << 20
)

// StreamWorkers is the number of goroutines a server keeps to run calls:
// four per processor, at least 8, so the long-lived streams (driver apps,
// update streams) that hold a worker each leave enough for unary calls.
func StreamWorkers() int { return max(8, 4*runtime.GOMAXPROCS(0)) }

// DialOptions are the client-side twins of the server settings, for
// connections between geomatch processes and for load generators: the same
// fixed flow-control windows.
func DialOptions() []grpc.DialOption {
	return []grpc.DialOption{
		grpc.WithStaticStreamWindowSize(StreamWindowBytes),
		grpc.WithStaticConnWindowSize(ConnWindowBytes),
	}
}

// FastReconnect is the dial option of the cluster's internal connections
// (router to matcher, matcher to matcher). gRPC's own reconnect backoff
// grows to 2 minutes by default: a matcher back after a restart would wait
// that out, its updates parked and its searches and handoffs failing.
// Matchers come back within seconds, so the connection tries again at
// least every half second: about two connection attempts a second per
// caller to a dead node's address.
func FastReconnect() grpc.DialOption {
	return grpc.WithConnectParams(grpc.ConnectParams{
		Backoff:           backoff.Config{BaseDelay: 50 * time.Millisecond, Multiplier: 1.6, Jitter: 0.2, MaxDelay: 500 * time.Millisecond},
		MinConnectTimeout: 5 * time.Second,
	})
}

// TLS returns the server option that serves TLS with cfg, or none for a
// nil cfg (plaintext).
func TLS(cfg *tls.Config) []grpc.ServerOption {
	if cfg == nil {
		return nil
	}
	return []grpc.ServerOption{grpc.Creds(credentials.NewTLS(cfg))}
}

// DialCreds returns the transport credentials of a client: TLS with cfg,
// or plaintext for a nil cfg.
func DialCreds(cfg *tls.Config) grpc.DialOption {
	if cfg == nil {
		return grpc.WithTransportCredentials(insecure.NewCredentials())
	}
	return grpc.WithTransportCredentials(credentials.NewTLS(cfg))
}

// Server is a gRPC server with health and reflection registered.
type Server struct {
	GRPC   *grpc.Server
	Health *health.Server
	name   string
	log    *slog.Logger
}

// New returns a server named name (for logs) with health and reflection
// registered; register services on s.GRPC before Serve.
//
// Requests that do not decode answer INVALID_ARGUMENT naming the message
// type (see decodeCodec), after the interceptors of opts: call metrics
// count them under their method.
func New(name string, log *slog.Logger, opts ...grpc.ServerOption) *Server {
	codec := newDecodeCodec()
	base := []grpc.ServerOption{
		grpc.ForceServerCodecV2(codec),
		grpc.MaxRecvMsgSize(MaxMessageBytes),
		grpc.MaxConcurrentStreams(MaxStreamsPerConn),
		grpc.MaxHeaderListSize(MaxHeaderListBytes),
		grpc.ChainUnaryInterceptor(recoverUnary(log), shedUnary(MaxInflightCalls)),
		grpc.ChainStreamInterceptor(recoverStream(log), codec.checkStream),
		grpc.KeepaliveEnforcementPolicy(keepalive.EnforcementPolicy{MinTime: 10 * time.Second, PermitWithoutStream: true}),
		grpc.KeepaliveParams(keepalive.ServerParameters{Time: 30 * time.Second, Timeout: 10 * time.Second}),
		// Fixed flow-control windows turn off gRPC's bandwidth-delay
		// estimator, which answers received data with a ping: on a
		// loopback or data-centre link it finds nothing to tune, and with
		// its pings gone on both ends of every hop (DialOptions on the
		// client side), a nearby query at concurrency 1 makes half the
		// read and write system calls (BenchmarkNearbyThroughGRPC).
		grpc.StaticStreamWindowSize(StreamWindowBytes),
		grpc.StaticConnWindowSize(ConnWindowBytes),
		// Calls run on a pool of goroutines whose stacks have already
		// grown, instead of a new goroutine per call; when every worker
		// is busy (each may hold a long-lived stream), a call gets its
		// own goroutine as before.
		grpc.NumStreamWorkers(uint32(StreamWorkers())),
	}
	// Spans of the calls and the callers' trace context, when the process
	// traces (internal/tracing.Setup ran first); nothing otherwise.
	base = append(base, tracing.ServerOptions()...)
	// Goroutines of the server, its call workers included, carry the label
	// server=<name> in CPU profiles, so a profile of a process that runs
	// several servers (geomatch dev) tells them apart.
	var g *grpc.Server
	pprof.Do(context.Background(), pprof.Labels("server", name), func(context.Context) {
		all := append(append(base, opts...),
			// Last, so innermost: the interceptors of opts see the refusal.
			grpc.ChainUnaryInterceptor(codec.checkUnary))
		g = grpc.NewServer(all...)
	})
	h := health.NewServer()
	healthpb.RegisterHealthServer(g, h)
	reflection.Register(g)
	return &Server{GRPC: g, Health: h, name: name, log: log}
}

// SetServing marks the server and every registered service SERVING (or
// NOT_SERVING) in the health service.
func (s *Server) SetServing(serving bool) {
	st := healthpb.HealthCheckResponse_NOT_SERVING
	if serving {
		st = healthpb.HealthCheckResponse_SERVING
	}
	s.Health.SetServingStatus("", st)
	for name := range s.GRPC.GetServiceInfo() {
		s.Health.SetServingStatus(name, st)
	}
}

// Serve serves on lis until ctx is done, then reports NOT_SERVING, stops
// accepting, waits up to drain for open calls and streams to finish, and
// closes whatever is left. It returns nil after a stop requested through
// ctx.
func (s *Server) Serve(ctx context.Context, lis net.Listener, drain time.Duration) error {
	s.SetServing(true)
	errc := make(chan error, 1)
	// The accept loop, and so the connections' goroutines, carry the
	// server's profile label too (see New).
	go pprof.Do(context.Background(), pprof.Labels("server", s.name), func(context.Context) { errc <- s.GRPC.Serve(lis) })
	s.log.Info("serving", "server", s.name, "addr", lis.Addr().String())
	select {
	case err := <-errc:
		return fmt.Errorf("%s server on %s: %w", s.name, lis.Addr(), err)
	case <-ctx.Done():
	}
	s.SetServing(false)
	stopped := make(chan struct{})
	go func() { s.GRPC.GracefulStop(); close(stopped) }()
	select {
	case <-stopped:
	case <-time.After(drain):
		s.log.Warn("drain timed out, closing open streams", "server", s.name, "after", drain)
		s.GRPC.Stop()
		<-stopped
	}
	if err := <-errc; err != nil && !errors.Is(err, grpc.ErrServerStopped) {
		return fmt.Errorf("%s server on %s: %w", s.name, lis.Addr(), err)
	}
	s.log.Info("stopped", "server", s.name)
	return nil
}

// recoverUnary turns a panic in a handler into INTERNAL for that call (and
// a log line with the stack) instead of a crashed process.
func recoverUnary(log *slog.Logger) grpc.UnaryServerInterceptor {
	return func(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (resp any, err error) {
		defer func() {
			if p := recover(); p != nil {
				log.Error("panic in handler", "method", info.FullMethod, "panic", p, "stack", string(debug.Stack()))
				err = status.Errorf(codes.Internal, "internal error in %s", info.FullMethod)
			}
		}()
		return handler(ctx, req)
	}
}

// shedUnary refuses a unary call with RESOURCE_EXHAUSTED while max calls
// are already in flight. Health checks are never refused: a busy node is
// alive.
func shedUnary(max int64) grpc.UnaryServerInterceptor {
	var inflight atomic.Int64
	return func(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
		if strings.HasPrefix(info.FullMethod, "/grpc.health.") {
			return handler(ctx, req)
		}
		if inflight.Add(1) > max {
			inflight.Add(-1)
			metrics.CountRefused(metrics.RefusedSaturated)
			return nil, status.Errorf(codes.ResourceExhausted, "server saturated: %d calls in flight, its limit; retry with backoff", max)
		}
		defer inflight.Add(-1)
		return handler(ctx, req)
	}
}

// recoverStream is recoverUnary for streams.
func recoverStream(log *slog.Logger) grpc.StreamServerInterceptor {
	return func(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, handler grpc.StreamHandler) (err error) {
		defer func() {
			if p := recover(); p != nil {
				log.Error("panic in stream handler", "method", info.FullMethod, "panic", p, "stack", string(debug.Stack()))
				err = status.Errorf(codes.Internal, "internal error in %s", info.FullMethod)
			}
		}()
		return handler(srv, ss)
	}
}

package identity

import (
	"context"
	"crypto/x509"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"time"

	"golang.org/x/time/rate"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/peer"
	"google.golang.org/grpc/status"
)

// Policy says which roles may call which gRPC methods. Keys are full
// method names ("/pkg.Service/Method") or, ending in "/", whole services
// ("/pkg.Service/"); a method's own entry wins over its service's. A
// method with no entry is refused to everyone.
type Policy map[string][]Role

// Allowed returns the roles allowed to call method.
func (p Policy) Allowed(method string) []Role {
	if r, ok := p[method]; ok {
		return r
	}
	if i := strings.LastIndexByte(method, '/'); i > 0 {
		return p[method[:i+1]]
	}
	return nil
}

// Authorizer admits a call by the identity of the caller's verified client
// certificate: it must be a node of the authorizer's cluster whose role
// the policy allows for the method. Calls without a client certificate
// are UNAUTHENTICATED; others refused are PERMISSION_DENIED, naming the
// caller and the method.
type Authorizer struct {
	trustDomain string
	policy      Policy
	log         *slog.Logger
	// logEvery keeps a flood of refused calls from flooding the log.
	logEvery rate.Sometimes
}

// NewAuthorizer returns an authorizer for the nodes of cluster
// trustDomain; log (may be nil) gets refusals, at most one a second.
func NewAuthorizer(trustDomain string, policy Policy, log *slog.Logger) (*Authorizer, error) {
	if err := ValidateTrustDomain(trustDomain); err != nil {
		return nil, err
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Authorizer{trustDomain: trustDomain, policy: policy, log: log, logEvery: rate.Sometimes{Interval: time.Second}}, nil
}

// TrustDomain returns the cluster the authorizer admits nodes of.
func (a *Authorizer) TrustDomain() string { return a.trustDomain }

// PeerCertificate returns the verified certificate the caller of ctx
// presented, or nil when it presented none (or the connection is not
// TLS).
func PeerCertificate(ctx context.Context) *x509.Certificate {
	p, ok := peer.FromContext(ctx)
	if !ok || p.AuthInfo == nil {
		return nil
	}
	info, ok := p.AuthInfo.(credentials.TLSInfo)
	if !ok || len(info.State.VerifiedChains) == 0 || len(info.State.VerifiedChains[0]) == 0 {
		return nil
	}
	return info.State.VerifiedChains[0][0]
}

// Authorize returns the caller's identity if it may call method, else a
// gRPC status error.
func (a *Authorizer) Authorize(ctx context.Context, method string) (ID, error) {
	cert := PeerCertificate(ctx)
	if cert == nil {
		a.refused(method, "no client certificate", codes.Unauthenticated)
		return ID{}, status.Errorf(codes.Unauthenticated,
			"%s: no client certificate; the internal API admits only nodes of cluster %q over mutual TLS", method, a.trustDomain)
	}
	id, err := FromCert(cert)
	if err != nil {
		who := Describe(cert)
		a.refused(method, who, codes.PermissionDenied)
		return ID{}, status.Errorf(codes.PermissionDenied,
			"%s may not call %s: its role is unknown (%v); issue node certificates with geomatch ca issue", who, method, err)
	}
	if id.TrustDomain != a.trustDomain {
		a.refused(method, id.String(), codes.PermissionDenied)
		return ID{}, status.Errorf(codes.PermissionDenied, "%s may not call %s: not a node of cluster %q", id, method, a.trustDomain)
	}
	allowed := a.policy.Allowed(method)
	if !slices.Contains(allowed, id.Role) {
		a.refused(method, id.String(), codes.PermissionDenied)
		return ID{}, status.Errorf(codes.PermissionDenied, "%s may not call %s (allowed: %s)", id, method, rolesText(allowed))
	}
	return id, nil
}

func (a *Authorizer) refused(method, who string, code codes.Code) {
	a.logEvery.Do(func() {
		a.log.Warn("internal call refused", "method", method, "caller", who, "code", code.String())
	})
}

func rolesText(r []Role) string {
	if len(r) == 0 {
		return "nobody"
	}
	s := make([]string, len(r))
	for i, x := range r {
		s[i] = string(x)
	}
	return strings.Join(s, ", ")
}

// UnaryInterceptor authorizes unary calls.
func (a *Authorizer) UnaryInterceptor() grpc.UnaryServerInterceptor {
	return func(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
		if _, err := a.Authorize(ctx, info.FullMethod); err != nil {
			return nil, err
		}
		return handler(ctx, req)
	}
}

// StreamInterceptor authorizes streams when they open.
func (a *Authorizer) StreamInterceptor() grpc.StreamServerInterceptor {
	return func(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, handler grpc.StreamHandler) error {
		if _, err := a.Authorize(ss.Context(), info.FullMethod); err != nil {
			return err
		}
		return handler(srv, ss)
	}
}

// ServerOptions are the interceptors of a server a nil authorizer does
// not guard (none).
func (a *Authorizer) ServerOptions() []grpc.ServerOption {
	if a == nil {
		return nil
	}
	return []grpc.ServerOption{grpc.ChainUnaryInterceptor(a.UnaryInterceptor()), grpc.ChainStreamInterceptor(a.StreamInterceptor())}
}

// String describes the authorizer for logs.
func (a *Authorizer) String() string {
	return fmt.Sprintf("nodes of spiffe://%s by role", a.trustDomain)
}

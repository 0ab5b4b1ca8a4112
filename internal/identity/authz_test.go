package identity

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"net"
	"net/url"
	"strings"
	"testing"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/peer"
	"google.golang.org/grpc/status"
)

// peerCtx returns a context whose peer presented cert over TLS (nil: a
// TLS peer without a certificate); plain makes it a plaintext peer.
func peerCtx(cert *x509.Certificate, plain bool) context.Context {
	p := &peer.Peer{Addr: &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 1}}
	if !plain {
		info := credentials.TLSInfo{State: tls.ConnectionState{}}
		if cert != nil {
			info.State.PeerCertificates = []*x509.Certificate{cert}
			info.State.VerifiedChains = [][]*x509.Certificate{{cert}}
		}
		p.AuthInfo = info
	}
	return peer.NewContext(context.Background(), p)
}

func certOf(t *testing.T, uri string) *x509.Certificate {
	t.Helper()
	c := &x509.Certificate{}
	if uri != "" {
		u, err := url.Parse(uri)
		if err != nil {
			t.Fatal(err)
		}
		c.URIs = []*url.URL{u}
	}
	return c
}

const (
	apply    = "/geomatch.matcher.v1.MatcherService/Apply"
	transfer = "/geomatch.matcher.v1.MatcherService/Transfer"
	health   = "/grpc.health.v1.Health/Check"
	unlisted = "/geomatch.matcher.v1.MatcherService/Unlisted"
)

var testPolicy = Policy{
	apply:                     {RoleRouter},
	transfer:                  {RoleMatcher},
	"/grpc.health.v1.Health/": {RoleRouter, RoleMatcher},
}

// TestAuthorize: who may call what, and the code and message of each
// refusal.
func TestAuthorize(t *testing.T) {
	a, err := NewAuthorizer("prod", testPolicy, nil)
	if err != nil {
		t.Fatal(err)
	}
	router, matcher := certOf(t, "spiffe://prod/router/r1"), certOf(t, "spiffe://prod/matcher/m2")
	cases := []struct {
		name     string
		ctx      context.Context
		method   string
		want     codes.Code
		mentions []string
	}{
		{"router applies", peerCtx(router, false), apply, codes.OK, nil},
		{"matcher transfers", peerCtx(matcher, false), transfer, codes.OK, nil},
		{"router health, by service", peerCtx(router, false), health, codes.OK, nil},
		{"matcher health, by service", peerCtx(matcher, false), health, codes.OK, nil},
		{"router transfers", peerCtx(router, false), transfer, codes.PermissionDenied, []string{"spiffe://prod/router/r1", transfer, "allowed: matcher"}},
		{"matcher applies", peerCtx(matcher, false), apply, codes.PermissionDenied, []string{"spiffe://prod/matcher/m2", apply}},
		{"unlisted method", peerCtx(router, false), unlisted, codes.PermissionDenied, []string{unlisted, "allowed: nobody"}},
		{"other cluster", peerCtx(certOf(t, "spiffe://staging/router/r1"), false), apply, codes.PermissionDenied, []string{"spiffe://staging/router/r1", `cluster "prod"`}},
		{"no identity", peerCtx(certOf(t, ""), false), apply, codes.PermissionDenied, []string{"role is unknown", apply}},
		{"malformed identity", peerCtx(certOf(t, "spiffe://prod/admin/x"), false), apply, codes.PermissionDenied, []string{"role is unknown"}},
		{"TLS without a certificate", peerCtx(nil, false), apply, codes.Unauthenticated, []string{"no client certificate", apply}},
		{"plaintext", peerCtx(nil, true), apply, codes.Unauthenticated, []string{"no client certificate"}},
		{"no peer", context.Background(), apply, codes.Unauthenticated, nil},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := a.Authorize(c.ctx, c.method)
			if got := status.Code(err); got != c.want {
				t.Fatalf("code %v (%v), want %v", got, err, c.want)
			}
			for _, m := range c.mentions {
				if !strings.Contains(status.Convert(err).Message(), m) {
					t.Errorf("message %q does not mention %q", status.Convert(err).Message(), m)
				}
			}
		})
	}
	if _, err := NewAuthorizer("Bad Name", testPolicy, nil); err == nil {
		t.Fatal("an authorizer for an invalid cluster name")
	}
}

type fakeStream struct {
	grpc.ServerStream
	ctx context.Context
}

func (f fakeStream) Context() context.Context { return f.ctx }

// TestInterceptors: the unary and stream interceptors run the handler
// only for an allowed caller.
func TestInterceptors(t *testing.T) {
	a, err := NewAuthorizer("prod", testPolicy, nil)
	if err != nil {
		t.Fatal(err)
	}
	router := peerCtx(certOf(t, "spiffe://prod/router/r1"), false)
	ran := 0
	unary := a.UnaryInterceptor()
	h := func(context.Context, any) (any, error) { ran++; return "ok", nil }
	if resp, err := unary(router, nil, &grpc.UnaryServerInfo{FullMethod: apply}, h); err != nil || resp != "ok" {
		t.Fatalf("allowed unary call: %v %v", resp, err)
	}
	if _, err := unary(router, nil, &grpc.UnaryServerInfo{FullMethod: transfer}, h); status.Code(err) != codes.PermissionDenied {
		t.Fatalf("refused unary call: %v", err)
	}
	stream := a.StreamInterceptor()
	sh := func(any, grpc.ServerStream) error { ran++; return nil }
	if err := stream(nil, fakeStream{ctx: router}, &grpc.StreamServerInfo{FullMethod: apply}, sh); err != nil {
		t.Fatalf("allowed stream: %v", err)
	}
	if err := stream(nil, fakeStream{ctx: peerCtx(nil, true)}, &grpc.StreamServerInfo{FullMethod: apply}, sh); status.Code(err) != codes.Unauthenticated {
		t.Fatalf("anonymous stream: %v", err)
	}
	if ran != 2 {
		t.Fatalf("handlers ran %d times, want 2 (the allowed calls)", ran)
	}
	var nilAuth *Authorizer
	if nilAuth.ServerOptions() != nil || len(a.ServerOptions()) != 2 {
		t.Fatal("ServerOptions")
	}
}

func TestPolicyAllowed(t *testing.T) {
	p := Policy{"/s.S/": {RoleRouter}, "/s.S/M": {RoleMatcher}}
	if got := p.Allowed("/s.S/M"); len(got) != 1 || got[0] != RoleMatcher {
		t.Fatalf("method entry: %v", got)
	}
	if got := p.Allowed("/s.S/N"); len(got) != 1 || got[0] != RoleRouter {
		t.Fatalf("service entry: %v", got)
	}
	if got := p.Allowed("/t.T/M"); got != nil {
		t.Fatalf("unlisted: %v", got)
	}
	if got := p.Allowed("garbage"); got != nil {
		t.Fatalf("garbage: %v", got)
	}
}

package main

import (
	"crypto/tls"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"

	"github.com/geomatch/geomatch/internal/identity"
	"github.com/geomatch/geomatch/internal/serve"
	"github.com/geomatch/geomatch/internal/tlsconfig"
	matcherv1 "github.com/geomatch/geomatch/proto/geomatch/matcher/v1"
	geomatchv1 "github.com/geomatch/geomatch/proto/geomatch/v1"
)

// testCA is a cluster CA made with `geomatch ca init` in a temporary
// directory.
type testCA struct {
	t   *testing.T
	dir string
}

func newTestCA(t *testing.T, cluster string) *testCA {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "pki")
	if out, errOut, err := runCmd(t, nil, "ca", "init", "--dir", dir, "--cluster", cluster); err != nil {
		t.Fatalf("ca init: %v\n%s%s", err, out, errOut)
	}
	return &testCA{t: t, dir: dir}
}

// issue runs `geomatch ca issue` for a node (over its earlier files, if
// any) and returns the node's files.
func (c *testCA) issue(role identity.Role, id string, extra ...string) tlsconfig.Files {
	c.t.Helper()
	args := append([]string{"ca", "issue", "--dir", c.dir, "--role", string(role), "--id", id}, extra...)
	if out, errOut, err := runCmd(c.t, nil, args...); err != nil {
		c.t.Fatalf("ca issue: %v\n%s%s", err, out, errOut)
	}
	return tlsconfig.Files{CA: filepath.Join(c.dir, "ca.pem"), Cert: filepath.Join(c.dir, string(role)+"-"+id+".pem"), Key: filepath.Join(c.dir, string(role)+"-"+id+"-key.pem")}
}

// args issues a node certificate and returns the flags that give it to
// a router or matcher.
func (c *testCA) args(role identity.Role, id string, extra ...string) []string {
	f := c.issue(role, id, extra...)
	return []string{"--tls-cert", f.Cert, "--tls-key", f.Key, "--tls-ca", f.CA}
}

// dialAs returns transport credentials presenting f's certificate and
// checking that the server is a matcher of f's cluster.
func dialAs(t *testing.T, f tlsconfig.Files) grpc.DialOption {
	t.Helper()
	n, err := tlsconfig.LoadNode(f)
	if err != nil {
		t.Fatal(err)
	}
	return serve.DialCreds(n.ClientConfig(identity.RoleMatcher))
}

// TestCACommand: ca init and ca issue write what they say, refuse to
// replace a CA by accident, and refuse bad arguments.
func TestCACommand(t *testing.T) {
	ca := newTestCA(t, "prod")
	if _, errOut, err := runCmd(t, nil, "ca", "init", "--dir", ca.dir); err == nil || !strings.Contains(errOut, "--force") {
		t.Fatalf("a second ca init over the first: %v %q", err, errOut)
	}
	fi, err := os.Stat(filepath.Join(ca.dir, "ca-key.pem"))
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("CA key: %v %v", fi, err)
	}
	out, _, err := runCmd(t, nil, "ca", "issue", "--dir", ca.dir, "--role", "router", "--id", "r1", "--hosts", "127.0.0.1,router.local", "--key-type", "ed25519")
	if err != nil || !strings.Contains(out, "issued spiffe://prod/router/r1") {
		t.Fatalf("ca issue: %v %q", err, out)
	}
	pair, err := tls.LoadX509KeyPair(filepath.Join(ca.dir, "router-r1.pem"), filepath.Join(ca.dir, "router-r1-key.pem"))
	if err != nil {
		t.Fatal(err)
	}
	if id, err := identity.FromCert(pair.Leaf); err != nil || id.String() != "spiffe://prod/router/r1" || len(pair.Leaf.IPAddresses) != 1 || pair.Leaf.DNSNames[0] != "router.local" {
		t.Fatalf("issued certificate: %v %v %v %v", id, err, pair.Leaf.IPAddresses, pair.Leaf.DNSNames)
	}
	for _, bad := range []struct {
		args []string
		want string
	}{
		{[]string{"ca", "issue", "--dir", ca.dir, "--role", "admin", "--id", "x"}, "--role"},
		{[]string{"ca", "issue", "--dir", ca.dir, "--role", "router"}, "--id"},
		{[]string{"ca", "issue", "--dir", ca.dir, "--role", "router", "--id", "a/b"}, "node id"},
		{[]string{"ca", "issue", "--dir", t.TempDir(), "--role", "router", "--id", "r"}, "geomatch ca init"},
		{[]string{"ca", "init", "--dir", t.TempDir(), "--cluster", "Not OK"}, "--cluster"},
		{[]string{"ca", "init", "--dir", t.TempDir(), "--key-type", "rsa"}, "--key-type"},
		{[]string{"ca", "frobnicate"}, "unknown subcommand"},
	} {
		if _, errOut, err := runCmd(t, nil, bad.args...); err == nil || !strings.Contains(errOut, bad.want) {
			t.Errorf("%v: %v, stderr %q; want a failure mentioning %q", bad.args, err, errOut, bad.want)
		}
	}
}

// TestInternalAPIIdentity runs a router and two matchers as processes with
// node certificates of `geomatch ca`, and shows that a matcher serves the
// router and refuses (a) anonymous callers, (b) certificates of another
// CA, (c) a router calling a method only matchers call, and that (d) a
// re-issued certificate is presented without a restart.
func TestInternalAPIIdentity(t *testing.T) {
	ca := newTestCA(t, "test")
	m1, m2 := freeAddr(t, "127.0.0.2"), freeAddr(t, "127.0.0.3")
	peers := "m1=" + m1 + ",m2=" + m2
	maddr := freeAddr(t, "127.0.0.1")
	pm1 := start(t, "matcher m1", append([]string{"matcher", "--id", "m1", "--peers", peers, "--metrics", maddr}, ca.args(identity.RoleMatcher, "m1")...)...)
	pm1.waitFor(listening, 20*time.Second)
	start(t, "matcher m2", append([]string{"matcher", "--id", "m2", "--peers", peers}, ca.args(identity.RoleMatcher, "m2")...)...).waitFor(listening, 20*time.Second)
	rp := start(t, "router", append([]string{"router", "--listen", "127.0.0.1:0", "--peers", peers, "--auth=off", "--public-tls=off"}, ca.args(identity.RoleRouter, "r1")...)...)
	conn := dial(t, rp.waitFor(listening, 20*time.Second)[1])
	pm1.waitFor(regexp.MustCompile(`internal API secured by identity.*identity=spiffe://test/matcher/m1`), 5*time.Second)

	// The router reaches both matchers over mutual TLS.
	req := &geomatchv1.UpdateLocationsRequest{}
	for i := range 200 {
		req.Updates = append(req.Updates, &geomatchv1.LocationUpdate{DriverId: fmt.Sprintf("d%d", i),
			Position: &geomatchv1.LatLng{Lat: 40.55 + 0.02*float64(i%20), Lng: -74.10 + 0.02*float64(i/20)}, TimestampMs: time.Now().UnixMilli()})
	}
	if resp, err := geomatchv1.NewDriverServiceClient(conn).UpdateLocations(ctxFor(t, 10*time.Second), req); err != nil || resp.GetAccepted() != 200 {
		t.Fatalf("updates through the router: %v %v", resp, err)
	}
	near, err := geomatchv1.NewRiderServiceClient(conn).NearbyDrivers(ctxFor(t, 10*time.Second), &geomatchv1.NearbyDriversRequest{
		Position: &geomatchv1.LatLng{Lat: 40.75, Lng: -73.90}, Limit: 1000, RadiusM: 50_000})
	if err != nil || len(near.GetDrivers()) != 200 {
		t.Fatalf("nearby through the router: %d drivers, %v", len(near.GetDrivers()), err)
	}

	// Callers of m1's internal API.
	call := func(opt grpc.DialOption, method string) error {
		t.Helper()
		c, err := grpc.NewClient(m1, opt)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		mc := matcherv1.NewMatcherServiceClient(c)
		ctx := ctxFor(t, 10*time.Second)
		switch method {
		case "Apply": // the forged position of the issue
			st, err := mc.Apply(ctx)
			if err != nil {
				return err
			}
			if err := st.Send(&matcherv1.ApplyRequest{}); err != nil {
				_, err = st.Recv()
				return err
			}
			_, err = st.Recv()
			return err
		case "Transfer":
			st, err := mc.Transfer(ctx, &matcherv1.TransferRequest{NodeId: "m2"})
			if err != nil {
				return err
			}
			_, err = st.Recv()
			return err
		case "Holding":
			_, err := mc.Holding(ctx, &matcherv1.HoldingRequest{DriverIds: []string{"d1"}})
			return err
		}
		_, err = mc.Stats(ctx, &matcherv1.StatsRequest{})
		return err
	}
	other := newTestCA(t, "test") // same cluster name, another CA
	routerFiles := tlsconfig.Files{CA: filepath.Join(ca.dir, "ca.pem"), Cert: filepath.Join(ca.dir, "router-r1.pem"), Key: filepath.Join(ca.dir, "router-r1-key.pem")}
	matcherFiles := ca.issue(identity.RoleMatcher, "m9")
	plain := grpc.WithTransportCredentials(insecure.NewCredentials())
	noCert := serve.DialCreds(&tls.Config{InsecureSkipVerify: true})
	cases := []struct {
		name, method string
		opt          grpc.DialOption
		want         codes.Code
		mentions     []string
	}{
		{"router: stats", "Stats", dialAs(t, routerFiles), codes.OK, nil},
		{"matcher: holding", "Holding", dialAs(t, matcherFiles), codes.OK, nil},
		{"(a) anonymous plaintext: stats", "Stats", plain, codes.Unavailable, nil},
		{"(a) anonymous plaintext: apply", "Apply", plain, codes.Unavailable, nil},
		{"(a) TLS without a client certificate", "Apply", noCert, codes.Unauthenticated, []string{"no client certificate", "/geomatch.matcher.v1.MatcherService/Apply"}},
		{"(b) a router certificate of another CA", "Stats", dialAs(t, other.issue(identity.RoleRouter, "r1")), codes.Unavailable, nil},
		{"(c) router: transfer", "Transfer", dialAs(t, routerFiles), codes.PermissionDenied, []string{"spiffe://test/router/r1", "/geomatch.matcher.v1.MatcherService/Transfer"}},
		{"(c) router: holding", "Holding", dialAs(t, routerFiles), codes.PermissionDenied, []string{"spiffe://test/router/r1", "/geomatch.matcher.v1.MatcherService/Holding"}},
		{"matcher: apply", "Apply", dialAs(t, matcherFiles), codes.PermissionDenied, []string{"spiffe://test/matcher/m9", "/geomatch.matcher.v1.MatcherService/Apply"}},
	}
	for _, tc := range cases {
		err := call(tc.opt, tc.method)
		got := status.Code(err)
		if tc.want == codes.OK && got != codes.Unauthenticated && got != codes.PermissionDenied && got != codes.Unavailable {
			got = codes.OK // admitted; the handler answers as it will
		}
		if got != tc.want {
			t.Errorf("%s: %v, want %v", tc.name, err, tc.want)
			continue
		}
		for _, m := range tc.mentions {
			if !strings.Contains(status.Convert(err).Message(), m) {
				t.Errorf("%s: %q does not mention %q", tc.name, status.Convert(err).Message(), m)
			}
		}
	}
	pm1.waitFor(regexp.MustCompile(`level=WARN msg="internal call refused"`), 5*time.Second)

	// /readyz says how the internal API is secured.
	resp, err := http.Get("http://" + maddr + "/readyz")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !strings.Contains(string(body), "internal API: mutual TLS, callers authorized by identity (spiffe://test/matcher/m1)") {
		t.Errorf("/readyz: %q", body)
	}

	// (d) m1's certificate re-issued over its files: new handshakes get it.
	presented := func() *big.Int {
		n, err := tlsconfig.LoadNode(routerFiles)
		if err != nil {
			t.Fatal(err)
		}
		c, err := tls.DialWithDialer(&net.Dialer{Timeout: 5 * time.Second}, "tcp", m1, n.ClientConfig(identity.RoleMatcher))
		if err != nil {
			t.Fatalf("handshake with m1: %v", err)
		}
		defer c.Close()
		return c.ConnectionState().PeerCertificates[0].SerialNumber
	}
	before := presented()
	rotated := ca.issue(identity.RoleMatcher, "m1")
	pair, err := tls.LoadX509KeyPair(rotated.Cert, rotated.Key)
	if err != nil {
		t.Fatal(err)
	}
	if pair.Leaf.SerialNumber.Cmp(before) == 0 {
		t.Fatal("re-issued with the same serial")
	}
	deadline := time.Now().Add(30 * time.Second) // the files are looked at every 10 s
	for {
		now := presented()
		if now.Cmp(pair.Leaf.SerialNumber) == 0 {
			break
		}
		if now.Cmp(before) != 0 {
			t.Fatalf("m1 presents serial %x, neither the old %x nor the new %x", now, before, pair.Leaf.SerialNumber)
		}
		if time.Now().After(deadline) {
			t.Fatalf("m1 still presents serial %x 30 s after the certificate was re-issued", now)
		}
		time.Sleep(250 * time.Millisecond)
	}
	// The router's calls keep working with the rotated matcher.
	if _, err := geomatchv1.NewRiderServiceClient(conn).NearbyDrivers(ctxFor(t, 10*time.Second), &geomatchv1.NearbyDriversRequest{
		Position: &geomatchv1.LatLng{Lat: 40.75, Lng: -73.90}, Limit: 10, RadiusM: 50_000}); err != nil {
		t.Fatalf("nearby after the rotation: %v", err)
	}
	if err := call(dialAs(t, routerFiles), "Stats"); err != nil {
		t.Fatalf("a new connection after the rotation: %v", err)
	}
	pm1.stop(15 * time.Second)
}

// TestInsecureInternal: a router or matcher without node certificates
// refuses to start unless --insecure-internal says so, which it announces
// on stdout, in its log and in /readyz, and which a router with tokens
// refuses; a node certificate of the wrong role is refused.
func TestInsecureInternal(t *testing.T) {
	noAuthKeys := []string{"GEOMATCH_AUTH_KEY=", "GEOMATCH_AUTH_KEY_FILE=", "GEOMATCH_AUTH_PUBLIC_KEYS="}
	m1 := freeAddr(t, "127.0.0.1")
	peers := "m1=" + m1
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"matcher", "--id", "m1", "--peers", peers}, "needs node certificates"},
		{[]string{"router", "--listen", "127.0.0.1:0", "--peers", peers, "--auth=off"}, "--insecure-internal"},
		{[]string{"dev", "--listen", "127.0.0.1:0", "--insecure-internal", "--auth=on"}, "refused with --auth=on"},
	} {
		if _, errOut, err := runCmd(t, noAuthKeys, c.args...); err == nil || !strings.Contains(errOut, c.want) {
			t.Errorf("%v: %v, stderr %q; want a failure mentioning %q", c.args, err, errOut, c.want)
		}
	}
	keyFile, _ := writeKey(t)
	if _, errOut, err := runCmd(t, nil, "router", "--listen", "127.0.0.1:0", "--peers", peers, "--auth-key-file", keyFile, "--insecure-internal"); err == nil || !strings.Contains(errOut, "refused with --auth=on") {
		t.Errorf("router with tokens and --insecure-internal: %v %q", err, errOut)
	}
	ca := newTestCA(t, "test")
	if _, errOut, err := runCmd(t, nil, append([]string{"router", "--listen", "127.0.0.1:0", "--peers", peers, "--auth=off"}, ca.args(identity.RoleMatcher, "m1")...)...); err == nil || !strings.Contains(errOut, "is a matcher's identity") {
		t.Errorf("router with a matcher's certificate: %v %q", err, errOut)
	}
	g, err := tlsconfig.Generate(t.TempDir(), tlsconfig.DevHosts, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if _, errOut, err := runCmd(t, nil, "matcher", "--id", "m1", "--peers", peers, "--tls-cert", g.Files.Cert, "--tls-key", g.Files.Key, "--tls-ca", g.Files.CA); err == nil || !strings.Contains(errOut, "no spiffe:// identity") {
		t.Errorf("matcher with a certificate without identity: %v %q", err, errOut)
	}

	maddr := freeAddr(t, "127.0.0.1")
	p := start(t, "matcher", "matcher", "--id", "m1", "--peers", peers, "--insecure-internal", "--metrics", maddr)
	p.waitFor(regexp.MustCompile(`geomatch matcher m1: WARNING: internal API: INSECURE \(--insecure-internal\): plaintext`), 20*time.Second)
	p.waitFor(regexp.MustCompile(`level=WARN msg="the internal API is insecure`), 5*time.Second)
	p.waitFor(listening, 20*time.Second)
	resp, err := http.Get("http://" + maddr + "/readyz")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !strings.Contains(string(body), "INSECURE (--insecure-internal): plaintext") {
		t.Errorf("/readyz: %q", body)
	}
	p.stop(15 * time.Second)
}

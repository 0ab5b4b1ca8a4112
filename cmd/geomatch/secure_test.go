package main

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/geomatch/geomatch/auth"
	"github.com/geomatch/geomatch/internal/identity"
	"github.com/geomatch/geomatch/internal/serve"
	"github.com/geomatch/geomatch/internal/tlsconfig"
	geomatchv1 "github.com/geomatch/geomatch/proto/geomatch/v1"
)

// runCmd runs geomatch with args and extra environment, returning its
// standard output, standard error and exit error.
func runCmd(t *testing.T, env []string, args ...string) (string, string, error) {
	t.Helper()
	cmd := exec.Command(binary, args...)
	cmd.Env = append(os.Environ(), env...)
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	done := make(chan error, 1)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		return out.String(), errOut.String(), err
	case <-time.After(30 * time.Second):
		cmd.Process.Kill()
		<-done
		t.Fatalf("geomatch %v did not finish", args)
		return "", "", nil
	}
}

func writeKey(t *testing.T) (path string, keys *auth.Keyring) {
	t.Helper()
	secret := bytes.Repeat([]byte("s"), 32)
	path = filepath.Join(t.TempDir(), "auth.key")
	if err := os.WriteFile(path, []byte("# test key\n"+auth.EncodeKey(secret)+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	k, err := auth.NewKeyring(secret)
	if err != nil {
		t.Fatal(err)
	}
	return path, k
}

// TestAdminToken: `geomatch admin token` mints a token the key verifies,
// with the subject, role and lifetime asked for; without a key or with an
// unknown role it fails with a reason.
func TestAdminToken(t *testing.T) {
	path, keys := writeKey(t)
	out, errOut, err := runCmd(t, []string{"GEOMATCH_AUTH_KEY_FILE=" + path}, "admin", "token", "--subject", "cab-1", "--role", "driver", "--ttl", "2h")
	if err != nil {
		t.Fatalf("admin token: %v\n%s", err, errOut)
	}
	c, err := keys.Verify(strings.TrimSpace(out), time.Now())
	if err != nil {
		t.Fatalf("minted token: %v", err)
	}
	if c.Subject != "cab-1" || c.Role != auth.RoleDriver || c.Expiry.Before(time.Now().Add(119*time.Minute)) || c.Expiry.After(time.Now().Add(121*time.Minute)) {
		t.Fatalf("claims %+v", c)
	}
	for _, tc := range []struct {
		env  []string
		args []string
		want string
	}{
		{nil, []string{"--subject", "x", "--role", "driver"}, "no key"},
		{[]string{"GEOMATCH_AUTH_KEY_FILE=" + path}, []string{"--subject", "x", "--role", "root"}, "--role"},
		{[]string{"GEOMATCH_AUTH_KEY=c2hvcnQ="}, []string{"--subject", "x", "--role", "rider"}, "at least 32"},
		{[]string{"GEOMATCH_AUTH_KEY_FILE=" + path}, []string{"--role", "rider"}, "sub: required"},
	} {
		env := append([]string{"GEOMATCH_AUTH_KEY_FILE=", "GEOMATCH_AUTH_KEY="}, tc.env...)
		_, errOut, err := runCmd(t, env, append([]string{"admin", "token"}, tc.args...)...)
		if err == nil || !strings.Contains(errOut, tc.want) {
			t.Errorf("admin token %v: %v, stderr %q; want a failure mentioning %q", tc.args, err, errOut, tc.want)
		}
	}
}

// TestRouterAuthIsOnByDefault: a router without a token key refuses to
// start unless authentication is turned off explicitly, which it says
// loudly.
func TestRouterAuthIsOnByDefault(t *testing.T) {
	_, errOut, err := runCmd(t, []string{"GEOMATCH_AUTH_KEY=", "GEOMATCH_AUTH_KEY_FILE="}, "router", "--listen", "127.0.0.1:0", "--peers", "m1=127.0.0.1:1")
	if err == nil || !strings.Contains(errOut, "--auth=on needs a token key") {
		t.Fatalf("router without a key: %v, stderr %q", err, errOut)
	}
	p := start(t, "router", "router", "--listen", "127.0.0.1:0", "--peers", "m1=127.0.0.1:1", "--auth=off", "--insecure-internal")
	p.waitFor(regexp.MustCompile(`WARNING: authentication is off`), 20*time.Second)
	p.stop(15 * time.Second)
}

// TestDevSaysAuthIsOff: `geomatch dev` runs without authentication by
// default and says so once on stdout, and in its log too when the log is
// JSON (for a log pipeline; a text log shares the terminal).
func TestDevSaysAuthIsOff(t *testing.T) {
	p := start(t, "geomatch dev", "dev", "--listen", "127.0.0.1:0", "--matchers", "1")
	p.waitFor(regexp.MustCompile(`geomatch dev: WARNING: authentication is off`), 20*time.Second)
	p.stop(15 * time.Second)
	p = start(t, "geomatch dev", "dev", "--listen", "127.0.0.1:0", "--matchers", "1", "--log-format", "json")
	p.waitFor(regexp.MustCompile(`"level":"WARN","msg":"authentication is off`), 20*time.Second)
	p.stop(15 * time.Second)
}

// TestDevSecure: `geomatch dev --tls --auth=on` generates a CA,
// certificates and a token key in a directory it prints and removes on
// exit. Clients that trust the CA and carry a token are served; plaintext
// clients, clients without a token and drivers moving other drivers are
// refused with clear codes.
func TestDevSecure(t *testing.T) {
	p := start(t, "geomatch dev", "dev", "--listen", "127.0.0.1:0", "--matchers", "2", "--tls", "--auth=on")
	addr := p.waitFor(listening, 20*time.Second)[1]
	dir := p.waitFor(regexp.MustCompile(`throwaway CA and certificate \S+ \S+ \S+ in (\S+)`), 5*time.Second)[1]
	admin := p.waitFor(regexp.MustCompile(`an admin token for \S+: (\S+)`), 5*time.Second)[1]
	keyFile := p.waitFor(regexp.MustCompile(`GEOMATCH_SIGNING_KEY_FILE=(\S+) geomatch admin token`), 5*time.Second)[1]
	ca := filepath.Join(dir, "ca.pem")

	out, errOut, err := runCmd(t, []string{"GEOMATCH_SIGNING_KEY_FILE=" + keyFile}, "admin", "token", "--subject", "cab-1", "--role", "driver")
	if err != nil {
		t.Fatalf("admin token with the dev key: %v %s", err, errOut)
	}
	driverTok := strings.TrimSpace(out)
	cfg, err := tlsconfig.Client(tlsconfig.Files{CA: ca})
	if err != nil {
		t.Fatal(err)
	}
	conn := func(opts ...grpc.DialOption) *grpc.ClientConn {
		c, err := grpc.NewClient(addr, opts...)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		return c
	}
	withToken := func(tok string) *grpc.ClientConn {
		return conn(serve.DialCreds(cfg), grpc.WithPerRPCCredentials(auth.Bearer{Token: tok}))
	}
	upd := func(c *grpc.ClientConn, id string) error {
		_, err := geomatchv1.NewDriverServiceClient(c).UpdateLocations(ctxFor(t, 10*time.Second), &geomatchv1.UpdateLocationsRequest{Updates: []*geomatchv1.LocationUpdate{{
			DriverId: id, Position: &geomatchv1.LatLng{Lat: 40.75, Lng: -73.98}, TimestampMs: time.Now().UnixMilli()}}})
		return err
	}
	code := func(err error) codes.Code { return status.Code(err) }
	if err := upd(withToken(driverTok), "cab-1"); err != nil {
		t.Fatalf("driver moves itself over TLS: %v", err)
	}
	if err := upd(withToken(driverTok), "cab-2"); code(err) != codes.PermissionDenied {
		t.Fatalf("driver moves another driver: %v, want PERMISSION_DENIED", err)
	}
	if err := upd(conn(serve.DialCreds(cfg)), "cab-1"); code(err) != codes.Unauthenticated {
		t.Fatalf("no token: %v, want UNAUTHENTICATED", err)
	}
	if err := upd(conn(serve.DialCreds(nil)), "cab-1"); code(err) != codes.Unavailable {
		t.Fatalf("plaintext client: %v, want UNAVAILABLE", err)
	}
	st, err := geomatchv1.NewAdminServiceClient(withToken(admin)).GetClusterStatus(ctxFor(t, 10*time.Second), &geomatchv1.GetClusterStatusRequest{})
	if err != nil || st.GetDrivers() != 1 {
		t.Fatalf("cluster status with the printed admin token: %v, %v", st, err)
	}
	for _, n := range st.GetNodes() {
		if n.GetState() != geomatchv1.NodeState_NODE_STATE_SERVING {
			t.Fatalf("router → %s over mutual TLS: %v %s", n.GetId(), n.GetState(), n.GetError())
		}
	}
	p.stop(15 * time.Second)
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		t.Fatalf("throwaway directory %s still there after exit: %v", dir, err)
	}
}

// TestStaticClusterTLS: matchers and a router as separate processes with
// mutual TLS (node certificates of geomatch ca) and tokens, the router's
// public API served with its node certificate; a matcher given only part
// of the TLS flags refuses to start.
func TestStaticClusterTLS(t *testing.T) {
	pki := newTestCA(t, "test")
	keyFile, keys := writeKey(t)
	m1, m2 := freeAddr(t, "127.0.0.1"), freeAddr(t, "127.0.0.1")
	peers := "m1=" + m1 + ",m2=" + m2
	partial := pki.issue(identity.RoleMatcher, "m1")
	if _, errOut, err := runCmd(t, nil, "matcher", "--id", "m1", "--peers", peers, "--tls-cert", partial.Cert, "--tls-key", partial.Key); err == nil || !strings.Contains(errOut, "go together") {
		t.Fatalf("matcher without --tls-ca: %v %q", err, errOut)
	}
	for _, id := range []string{"m1", "m2"} {
		start(t, "matcher "+id, append([]string{"matcher", "--id", id, "--peers", peers}, pki.args(identity.RoleMatcher, id)...)...).waitFor(listening, 20*time.Second)
	}
	rp := start(t, "router", append([]string{"router", "--listen", "127.0.0.1:0", "--peers", peers, "--auth-key-file", keyFile}, pki.args(identity.RoleRouter, "r1", "--hosts", "127.0.0.1")...)...)
	addr := rp.waitFor(listening, 20*time.Second)[1]
	cfg, err := tlsconfig.Client(tlsconfig.Files{CA: partial.CA})
	if err != nil {
		t.Fatal(err)
	}
	tok, err := keys.Issue("fleet", auth.RoleAdmin, time.Hour, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	conn, err := grpc.NewClient(addr, serve.DialCreds(cfg), grpc.WithPerRPCCredentials(auth.Bearer{Token: tok}))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	req := &geomatchv1.UpdateLocationsRequest{}
	for i := 0; i < 100; i++ {
		req.Updates = append(req.Updates, &geomatchv1.LocationUpdate{DriverId: fmt.Sprintf("d%d", i),
			Position: &geomatchv1.LatLng{Lat: 40.55 + 0.004*float64(i), Lng: -74.10 + 0.004*float64(i)}, TimestampMs: time.Now().UnixMilli()})
	}
	resp, err := geomatchv1.NewDriverServiceClient(conn).UpdateLocations(ctxFor(t, 10*time.Second), req)
	if err != nil || resp.GetAccepted() != 100 {
		t.Fatalf("updates through the TLS cluster: %v, %v", resp, err)
	}
	near, err := geomatchv1.NewRiderServiceClient(conn).NearbyDrivers(ctxFor(t, 10*time.Second), &geomatchv1.NearbyDriversRequest{
		Position: &geomatchv1.LatLng{Lat: 40.75, Lng: -73.90}, Limit: 1000, RadiusM: 60_000})
	if err != nil || len(near.GetDrivers()) != 100 {
		t.Fatalf("nearby through the TLS cluster: %d drivers, %v", len(near.GetDrivers()), err)
	}
	rp.stop(15 * time.Second)
}

// TestAuthFlagsKeys: a router given both an Ed25519 key set and an HS256
// key file (a deployment moving off HS256) verifies both kinds of tokens,
// and passes the same flags on; geomatch dev given only a public key set
// starts, without a token of its own to print.
func TestAuthFlagsKeys(t *testing.T) {
	dir := t.TempDir()
	signer, err := auth.GenerateSigningKey("ed-1")
	if err != nil {
		t.Fatal(err)
	}
	doc, err := auth.MarshalKeySet(signer.Public())
	if err != nil {
		t.Fatal(err)
	}
	set := filepath.Join(dir, "keys.json")
	if err := os.WriteFile(set, doc, 0o644); err != nil {
		t.Fatal(err)
	}
	secretFile, hs := writeKey(t)
	af := authFlags{mode: "on", publicKeys: set, keyFile: secretFile, issuer: auth.DefaultIssuer, audience: auth.DefaultAudience}
	k, err := af.keyring()
	if err != nil {
		t.Fatal(err)
	}
	ed, err := auth.New(auth.Config{SigningKey: signer})
	if err != nil {
		t.Fatal(err)
	}
	for name, issuer := range map[string]*auth.Keyring{"EdDSA": ed, "HS256": hs} {
		tok, err := issuer.Issue("cab-1", auth.RoleDriver, time.Hour, time.Now())
		if err != nil {
			t.Fatal(err)
		}
		if _, err := k.Verify(tok, time.Now()); err != nil {
			t.Fatalf("%s token: %v", name, err)
		}
	}
	if !k.HasSecrets() {
		t.Fatal("HasSecrets: false with an HS256 key file")
	}
	if got, want := strings.Join(af.args(), " "), "--auth on --auth-public-keys "+set+" --auth-key-file "+secretFile; got != want {
		t.Fatalf("args %q, want %q", got, want)
	}
	af.audience = "billing"
	if got := strings.Join(af.args(), " "); !strings.HasSuffix(got, "--auth-audience billing") {
		t.Fatalf("args %q", got)
	}

	dev := authFlags{mode: "on", publicKeys: set}
	sec, err := prepareDev(&tlsFlags{}, false, &dev)
	if err != nil {
		t.Fatal(err)
	}
	defer sec.remove()
	var out bytes.Buffer
	cf, err := sec.announce(&out, "127.0.0.1:1")
	if err != nil || cf.token != "" || !strings.Contains(out.String(), "--signing-key-file") {
		t.Fatalf("announce: %v, token %q, said %q", err, cf.token, out.String())
	}
}

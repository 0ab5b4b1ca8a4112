package tlsconfig

import (
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/tls"
	"crypto/x509"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/geomatch/geomatch/internal/identity"
)

// TestCAIssue: CAs of both key types issue node certificates carrying the
// node's identity, for both usages, verifiable against the CA only, and
// survive a PEM round trip.
func TestCAIssue(t *testing.T) {
	for _, kt := range []KeyType{ECDSAP256, Ed25519} {
		t.Run(string(kt), func(t *testing.T) {
			ca, err := NewCA("prod", kt, 24*time.Hour)
			if err != nil {
				t.Fatal(err)
			}
			certPEM, keyPEM, err := ca.MarshalPEM()
			if err != nil {
				t.Fatal(err)
			}
			back, err := ParseCA(certPEM, keyPEM)
			if err != nil {
				t.Fatal(err)
			}
			if back.Cluster != "prod" || !back.Cert.Equal(ca.Cert) {
				t.Fatalf("round trip: cluster %q", back.Cluster)
			}
			other, err := NewCA("prod", kt, time.Hour)
			if err != nil {
				t.Fatal(err)
			}
			cases := []struct {
				req     IssueRequest
				want    string
				dns     []string
				ips     int
				wantErr string
			}{
				{req: IssueRequest{Role: identity.RoleRouter, ID: "r1", Hosts: []string{"router.example", "127.0.0.1", " "}, ValidFor: time.Hour}, want: "spiffe://prod/router/r1", dns: []string{"router.example"}, ips: 1},
				{req: IssueRequest{Role: identity.RoleMatcher, ID: "m-2", ValidFor: time.Hour, KeyType: Ed25519}, want: "spiffe://prod/matcher/m-2"},
				{req: IssueRequest{Role: identity.RoleMatcher, ID: "m3", ValidFor: 1000 * time.Hour}, want: "spiffe://prod/matcher/m3"}, // capped at the CA's end
				{req: IssueRequest{Role: "admin", ID: "x", ValidFor: time.Hour}, wantErr: "role"},
				{req: IssueRequest{Role: identity.RoleRouter, ID: "", ValidFor: time.Hour}, wantErr: "node id"},
				{req: IssueRequest{Role: identity.RoleRouter, ID: "r/1", ValidFor: time.Hour}, wantErr: "node id"},
				{req: IssueRequest{Role: identity.RoleRouter, ID: "r1"}, wantErr: "validity"},
			}
			for _, c := range cases {
				is, err := back.Issue(c.req)
				if c.wantErr != "" {
					if err == nil || !strings.Contains(err.Error(), c.wantErr) {
						t.Errorf("Issue(%+v): %v, want an error about %s", c.req, err, c.wantErr)
					}
					continue
				}
				if err != nil {
					t.Fatalf("Issue(%+v): %v", c.req, err)
				}
				id, err := identity.FromCert(is.Cert)
				if err != nil || id.String() != c.want || is.ID != id {
					t.Fatalf("identity %v %v, want %s", id, err, c.want)
				}
				if strings.Join(is.Cert.DNSNames, ",") != strings.Join(c.dns, ",") || len(is.Cert.IPAddresses) != c.ips {
					t.Errorf("SANs %v %v", is.Cert.DNSNames, is.Cert.IPAddresses)
				}
				if is.Cert.NotAfter.After(ca.Cert.NotAfter) {
					t.Errorf("valid until %v, after its CA (%v)", is.Cert.NotAfter, ca.Cert.NotAfter)
				}
				for _, u := range []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth} {
					if _, err := is.Cert.Verify(x509.VerifyOptions{Roots: ca.Pool(), KeyUsages: []x509.ExtKeyUsage{u}}); err != nil {
						t.Errorf("verify for %v: %v", u, err)
					}
				}
				if _, err := is.Cert.Verify(x509.VerifyOptions{Roots: other.Pool()}); err == nil {
					t.Error("verifies against another CA")
				}
				pair, err := is.TLS()
				if err != nil {
					t.Fatal(err)
				}
				switch c.req.KeyType {
				case Ed25519:
					if _, ok := pair.PrivateKey.(ed25519.PrivateKey); !ok {
						t.Errorf("key %T, want Ed25519", pair.PrivateKey)
					}
				default:
					if _, ok := pair.PrivateKey.(*ecdsa.PrivateKey); !ok {
						t.Errorf("key %T, want ECDSA", pair.PrivateKey)
					}
				}
			}
		})
	}
}

func TestCAErrors(t *testing.T) {
	if _, err := NewCA("Not Valid", ECDSAP256, time.Hour); err == nil {
		t.Error("a CA with an invalid cluster name")
	}
	if _, err := NewCA("prod", "rsa", time.Hour); err == nil {
		t.Error("a CA with an unknown key type")
	}
	if _, err := NewCA("prod", ECDSAP256, 0); err == nil {
		t.Error("a CA valid for nothing")
	}
	a, _ := NewCA("prod", ECDSAP256, time.Hour)
	b, _ := NewCA("prod", ECDSAP256, time.Hour)
	ac, _, _ := a.MarshalPEM()
	_, bk, _ := b.MarshalPEM()
	if _, err := ParseCA(ac, bk); err == nil || !strings.Contains(err.Error(), "not the key") {
		t.Errorf("a CA certificate with another CA's key: %v", err)
	}
	if _, err := ParseCA([]byte("junk"), bk); err == nil {
		t.Error("junk certificate")
	}
	g, err := Generate(t.TempDir(), DevHosts, time.Hour) // a CA without a cluster name
	if err != nil {
		t.Fatal(err)
	}
	cp, _ := os.ReadFile(g.Files.CA)
	if _, err := ParseCA(cp, bk); err == nil {
		t.Error("a foreign CA with a mismatched key")
	}
	for _, s := range []string{"", "ecdsa", "ECDSA-P256", "ed25519"} {
		if _, err := ParseKeyType(s); err != nil {
			t.Errorf("ParseKeyType(%q): %v", s, err)
		}
	}
	if _, err := ParseKeyType("rsa"); err == nil {
		t.Error("ParseKeyType(rsa)")
	}
}

// pki is a cluster CA with node certificates written to files.
type pki struct {
	dir string
	ca  *CA
}

func newPKI(t *testing.T, cluster string) *pki {
	t.Helper()
	ca, err := NewCA(cluster, ECDSAP256, 24*time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	p := &pki{dir: t.TempDir(), ca: ca}
	cp, _, err := ca.MarshalPEM()
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(p.dir, "ca.pem"), cp, 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// issue writes a node's certificate and key, over any earlier ones, with
// a modification time in the future (so a reload sees a change even
// within the file system's time resolution).
func (p *pki) issue(t *testing.T, role identity.Role, id string) Files {
	t.Helper()
	is, err := p.ca.Issue(IssueRequest{Role: role, ID: id, ValidFor: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	f := Files{CA: filepath.Join(p.dir, "ca.pem"), Cert: filepath.Join(p.dir, id+".pem"), Key: filepath.Join(p.dir, id+"-key.pem")}
	later := time.Now().Add(time.Minute)
	for _, w := range []struct {
		path string
		b    []byte
	}{{f.Cert, is.CertPEM}, {f.Key, is.KeyPEM}} {
		if err := WriteFileAtomic(w.path, w.b, 0o600); err != nil {
			t.Fatal(err)
		}
		os.Chtimes(w.path, later, later)
	}
	return f
}

func loadNode(t *testing.T, f Files) *Node {
	t.Helper()
	n, err := LoadNode(f)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// TestNodeHandshakes: the internal hop admits nodes of the cluster's CA
// (without a certificate too: the authorizer answers those), refuses
// other CAs' certificates in the handshake, and a node dials only
// matchers of its own cluster.
func TestNodeHandshakes(t *testing.T) {
	p, other := newPKI(t, "prod"), newPKI(t, "prod")
	m1 := loadNode(t, p.issue(t, identity.RoleMatcher, "m1"))
	r1 := loadNode(t, p.issue(t, identity.RoleRouter, "r1"))
	foreign := loadNode(t, other.issue(t, identity.RoleRouter, "r1"))
	otherCluster := newPKI(t, "staging")
	staging := loadNode(t, otherCluster.issue(t, identity.RoleMatcher, "m1"))
	// A matcher of "staging" whose CA the prod nodes (wrongly) trust too.
	bundle := filepath.Join(p.dir, "both.pem")
	a, _ := os.ReadFile(filepath.Join(p.dir, "ca.pem"))
	b, _ := os.ReadFile(filepath.Join(otherCluster.dir, "ca.pem"))
	os.WriteFile(bundle, append(a, b...), 0o644)
	r1Both := loadNode(t, Files{Cert: filepath.Join(p.dir, "r1.pem"), Key: filepath.Join(p.dir, "r1-key.pem"), CA: bundle})

	caOnly, err := Client(Files{CA: filepath.Join(p.dir, "ca.pem")})
	if err != nil {
		t.Fatal(err)
	}
	caOnly.ServerName = "localhost"
	caOnly.InsecureSkipVerify = true // the matcher's certificate has no host names
	cases := []struct {
		name    string
		srv     *tls.Config
		cli     *tls.Config
		wantErr bool
	}{
		{"router dials matcher", m1.ServerConfig(), r1.ClientConfig(identity.RoleMatcher), false},
		{"matcher dials matcher", m1.ServerConfig(), m1.ClientConfig(identity.RoleMatcher), false},
		{"client without certificate (refused later, by the authorizer)", m1.ServerConfig(), caOnly, false},
		{"client certificate of another CA", m1.ServerConfig(), foreign.ClientConfig(identity.RoleMatcher), true},
		{"server of another CA", foreign.ServerConfig(), r1.ClientConfig(identity.RoleMatcher), true},
		{"server is a router, not a matcher", r1.ServerConfig(), m1.ClientConfig(identity.RoleMatcher), true},
		{"server is a matcher of another cluster", staging.ServerConfig(), r1Both.ClientConfig(identity.RoleMatcher), true},
		{"plaintext client", m1.ServerConfig(), nil, true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			cerr, serr := handshake(t, c.srv, c.cli)
			if got := cerr != nil || serr != nil; got != c.wantErr {
				t.Fatalf("client error %v, server error %v; want failure %v", cerr, serr, c.wantErr)
			}
		})
	}
}

func TestLoadNodeErrors(t *testing.T) {
	p := newPKI(t, "prod")
	f := p.issue(t, identity.RoleMatcher, "m1")
	if _, err := LoadNode(Files{Cert: f.Cert, Key: f.Key}); err == nil {
		t.Error("a node without a CA")
	}
	g, err := Generate(t.TempDir(), DevHosts, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := LoadNode(g.Files); err == nil || !strings.Contains(err.Error(), "geomatch ca issue") {
		t.Errorf("a certificate without identity: %v", err)
	}
	if _, err := LoadNode(Files{Cert: f.Cert, Key: f.Key, CA: g.Files.CA}); err == nil || !strings.Contains(err.Error(), "does not verify") {
		t.Errorf("a certificate of another CA: %v", err)
	}
}

// TestNodeRotation: a node reads its certificate and CA bundle again when
// the files change, for both its server and its client side.
func TestNodeRotation(t *testing.T) {
	p := newPKI(t, "prod")
	f := p.issue(t, identity.RoleMatcher, "m1")
	n := loadNode(t, f)
	before, _ := n.Certificate()
	p.issue(t, identity.RoleMatcher, "m1") // rotated: same files, new serial
	srv := n.ServerConfig()
	cli := n.ClientConfig(identity.RoleMatcher)
	// Within the recheck interval: the old pair still.
	got, _ := srv.GetCertificate(nil)
	if !got.Leaf.Equal(before.Leaf) {
		t.Fatal("reloaded before the recheck interval")
	}
	recheckNow(t, n)
	got, _ = srv.GetCertificate(nil)
	if got.Leaf.SerialNumber.Cmp(before.Leaf.SerialNumber) == 0 {
		t.Fatal("server side: the rotated certificate was not loaded")
	}
	got2, _ := cli.GetClientCertificate(nil)
	if !got2.Leaf.Equal(got.Leaf) {
		t.Fatal("client side: not the rotated certificate")
	}
	if _, serr := handshake(t, srv, cli); serr != nil {
		t.Fatalf("handshake with the rotated pair: %v", serr)
	}

	// A new CA bundle (the old CA and a new one, as during a CA rotation):
	// certificates of the new CA are admitted once it is read.
	next := newPKI(t, "prod")
	nf := next.issue(t, identity.RoleRouter, "r9")
	a, _ := os.ReadFile(f.CA)
	b, _ := os.ReadFile(nf.CA)
	trustBoth := filepath.Join(next.dir, "both.pem")
	os.WriteFile(trustBoth, append(a, b...), 0o644)
	// The new router trusts both CAs, so only the matcher may refuse.
	both := loadNode(t, Files{Cert: nf.Cert, Key: nf.Key, CA: trustBoth})
	if _, serr := handshake(t, n.ServerConfig(), both.ClientConfig(identity.RoleMatcher)); serr == nil {
		t.Fatal("a certificate of a CA not yet in the bundle was admitted")
	}
	if err := WriteFileAtomic(f.CA, append(a, b...), 0o644); err != nil {
		t.Fatal(err)
	}
	later := time.Now().Add(2 * time.Minute)
	os.Chtimes(f.CA, later, later)
	recheckNow(t, n)
	srv = n.ServerConfig()
	if _, serr := handshake(t, srv, both.ClientConfig(identity.RoleMatcher)); serr != nil {
		t.Fatalf("a certificate of the CA added to the bundle: %v", serr)
	}
}

// recheckNow makes n look at its files at the next handshake, as it does
// once the recheck interval has passed.
func recheckNow(t *testing.T, n *Node) {
	t.Helper()
	if n.kp == nil || n.ca == nil {
		t.Fatal("not a node loaded from files")
	}
	n.kp.mu.Lock()
	n.kp.checked = time.Time{}
	n.kp.mu.Unlock()
	n.ca.mu.Lock()
	n.ca.checked = time.Time{}
	n.ca.mu.Unlock()
}

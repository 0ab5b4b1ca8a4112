package tlsconfig

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"os"
	"sync"
	"time"

	"github.com/geomatch/geomatch/internal/identity"
)

// Node is the TLS identity of one node of a cluster's internal API: its
// certificate, whose SPIFFE ID names the node (see package identity), and
// the cluster's CA. Loaded from files (LoadNode), both are read again when
// the files change, so a rotated certificate or CA bundle is used for the
// next handshakes without a restart; connections already open keep the
// certificate they were made with.
type Node struct {
	// ID is the node's identity, read from its certificate at load.
	ID    identity.ID
	cert  func() (*tls.Certificate, error)
	roots func() *x509.CertPool
	// kp and ca are the reloading files (nil for NewNode).
	kp *keyPair
	ca *caBundle
}

// LoadNode loads a node's identity from f: the certificate and key (which
// must carry a spiffe://<cluster>/<role>/<id> URI SAN, as `geomatch ca
// issue` writes them) and the CA bundle, which must have signed it.
func LoadNode(f Files) (*Node, error) {
	if f.Cert == "" || f.Key == "" || f.CA == "" {
		return nil, errors.New("node TLS: the certificate, its key and the cluster's CA are all required")
	}
	kp, err := newKeyPair(f.Cert, f.Key)
	if err != nil {
		return nil, err
	}
	ca, err := newCABundle(f.CA)
	if err != nil {
		return nil, err
	}
	c, _ := kp.get()
	n, err := newNode(c.Leaf, kp.get, ca.get, f.Cert)
	if err != nil {
		return nil, err
	}
	n.kp, n.ca = kp, ca
	return n, nil
}

// NewNode returns a node that presents cert and trusts roots, both fixed
// (geomatch dev's throwaway identities).
func NewNode(cert tls.Certificate, roots *x509.CertPool) (*Node, error) {
	if cert.Leaf == nil {
		leaf, err := x509.ParseCertificate(cert.Certificate[0])
		if err != nil {
			return nil, fmt.Errorf("node TLS: %w", err)
		}
		cert.Leaf = leaf
	}
	return newNode(cert.Leaf, func() (*tls.Certificate, error) { return &cert, nil }, func() *x509.CertPool { return roots }, "the node certificate")
}

func newNode(leaf *x509.Certificate, cert func() (*tls.Certificate, error), roots func() *x509.CertPool, name string) (*Node, error) {
	id, err := identity.FromCert(leaf)
	if err != nil {
		return nil, fmt.Errorf("node TLS: %s: %w (issue node certificates with geomatch ca issue)", name, err)
	}
	if _, err := leaf.Verify(x509.VerifyOptions{Roots: roots(), KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth, x509.ExtKeyUsageServerAuth}}); err != nil {
		return nil, fmt.Errorf("node TLS: %s (%s) does not verify against the cluster's CA: %w", name, id, err)
	}
	return &Node{ID: id, cert: cert, roots: roots}, nil
}

// Certificate returns the certificate the node presents now.
func (n *Node) Certificate() (*tls.Certificate, error) { return n.cert() }

// ServerConfig returns the configuration of the node's server: it
// presents the node's certificate and verifies the client certificates
// presented against the cluster's CA (current bundle). A client without a
// certificate completes the handshake, so that the internal API can answer
// it UNAUTHENTICATED (identity.Authorizer) instead of closing the
// connection; a certificate of another CA fails the handshake.
func (n *Node) ServerConfig() *tls.Config {
	base := &tls.Config{
		MinVersion:     tls.VersionTLS12,
		ClientAuth:     tls.VerifyClientCertIfGiven,
		GetCertificate: func(*tls.ClientHelloInfo) (*tls.Certificate, error) { return n.cert() },
	}
	cfg := base.Clone()
	cfg.GetConfigForClient = func(*tls.ClientHelloInfo) (*tls.Config, error) {
		c := base.Clone()
		c.ClientCAs = n.roots()
		return c, nil
	}
	return cfg
}

// ClientConfig returns the configuration of the node's dials to servers of
// role server (matchers): it presents the node's certificate and accepts a
// server whose certificate the cluster's CA signed and names a node of that
// role in the node's own cluster. The server's host name is not checked:
// its identity is (so a matcher's certificate need not list the addresses
// it is reached at).
func (n *Node) ClientConfig(server identity.Role) *tls.Config {
	return &tls.Config{
		MinVersion:           tls.VersionTLS12,
		GetClientCertificate: func(*tls.CertificateRequestInfo) (*tls.Certificate, error) { return n.cert() },
		// Verified by identity in VerifyConnection instead of by name.
		InsecureSkipVerify: true,
		VerifyConnection:   func(cs tls.ConnectionState) error { return n.verifyServer(cs, server) },
	}
}

func (n *Node) verifyServer(cs tls.ConnectionState, want identity.Role) error {
	if len(cs.PeerCertificates) == 0 {
		return errors.New("tls: the server presented no certificate")
	}
	leaf := cs.PeerCertificates[0]
	inter := x509.NewCertPool()
	for _, c := range cs.PeerCertificates[1:] {
		inter.AddCert(c)
	}
	if _, err := leaf.Verify(x509.VerifyOptions{Roots: n.roots(), Intermediates: inter, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}); err != nil {
		return fmt.Errorf("tls: server certificate: %w", err)
	}
	id, err := identity.FromCert(leaf)
	if err != nil {
		return fmt.Errorf("tls: server %s: %w", identity.Describe(leaf), err)
	}
	if id.TrustDomain != n.ID.TrustDomain || id.Role != want {
		return fmt.Errorf("tls: server is %s, want a %s of cluster %q", id, want, n.ID.TrustDomain)
	}
	return nil
}

// caBundle is a CA bundle file, read again when its modification time
// changes (looked at most every recheckEvery). A reload that fails keeps
// the last good bundle.
type caBundle struct {
	path string

	mu      sync.Mutex
	pool    *x509.CertPool
	stamp   time.Time
	checked time.Time
}

func newCABundle(path string) (*caBundle, error) {
	b := &caBundle{path: path}
	fi, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("tls CA: %w", err)
	}
	if b.pool, err = loadPool(path); err != nil {
		return nil, err
	}
	b.stamp, b.checked = fi.ModTime(), time.Now()
	return b, nil
}

// get returns the current pool, reloading it first if the file changed.
func (b *caBundle) get() *x509.CertPool {
	b.mu.Lock()
	defer b.mu.Unlock()
	if time.Since(b.checked) < recheckEvery {
		return b.pool
	}
	b.checked = time.Now()
	fi, err := os.Stat(b.path)
	if err != nil || fi.ModTime().Equal(b.stamp) {
		return b.pool
	}
	if pool, err := loadPool(b.path); err == nil {
		b.pool, b.stamp = pool, fi.ModTime()
	}
	return b.pool
}

// Node issues a certificate for a node of role named id, valid for
// validFor (and hosts, if any), and returns that node's TLS identity,
// trusting ca alone; nothing is written to disk (geomatch dev's throwaway
// identities).
func (ca *CA) Node(role identity.Role, id string, hosts []string, validFor time.Duration) (*Node, error) {
	is, err := ca.Issue(IssueRequest{Role: role, ID: id, Hosts: hosts, ValidFor: validFor})
	if err != nil {
		return nil, err
	}
	pair, err := is.TLS()
	if err != nil {
		return nil, err
	}
	return NewNode(pair, ca.Pool())
}

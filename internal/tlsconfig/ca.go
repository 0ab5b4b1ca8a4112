package tlsconfig

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/geomatch/geomatch/internal/identity"
)

// KeyType is the algorithm of a generated key.
type KeyType string

// The key types of CAs and node certificates.
const (
	// ECDSAP256 is ECDSA on the NIST P-256 curve (the default: every TLS
	// stack speaks it).
	ECDSAP256 KeyType = "ecdsa"
	// Ed25519 is EdDSA on Curve25519.
	Ed25519 KeyType = "ed25519"
)

// ParseKeyType reads a key type: ecdsa (also ecdsa-p256, p256) or ed25519.
func ParseKeyType(s string) (KeyType, error) {
	switch strings.ToLower(s) {
	case "", "ecdsa", "ecdsa-p256", "p256":
		return ECDSAP256, nil
	case "ed25519":
		return Ed25519, nil
	}
	return "", fmt.Errorf("key type %q: want ecdsa or ed25519", s)
}

func newKey(t KeyType) (crypto.Signer, error) {
	switch t {
	case "", ECDSAP256:
		return ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	case Ed25519:
		_, k, err := ed25519.GenerateKey(rand.Reader)
		return k, err
	}
	return nil, fmt.Errorf("key type %q: want ecdsa or ed25519", t)
}

// CA is the certificate authority of one cluster: it issues the node
// certificates whose SPIFFE IDs name the cluster (its trust domain).
type CA struct {
	// Cert is the CA's certificate.
	Cert *x509.Certificate
	// Cluster is the trust domain of the identities it issues.
	Cluster string
	key     crypto.Signer
}

// NewCA makes a self-signed CA for cluster (a trust domain: lower-case
// letters, digits, '.', '-', '_') valid for validFor. The cluster's name
// is written into the CA certificate as the URI SAN spiffe://<cluster>, so
// that certificates it issues later name the same cluster.
func NewCA(cluster string, kt KeyType, validFor time.Duration) (*CA, error) {
	if err := identity.ValidateTrustDomain(cluster); err != nil {
		return nil, err
	}
	if validFor <= 0 {
		return nil, errors.New("new CA: validity must be positive")
	}
	key, err := newKey(kt)
	if err != nil {
		return nil, fmt.Errorf("new CA key: %w", err)
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber:          serial(),
		Subject:               pkix.Name{Organization: []string{"geomatch"}, CommonName: "geomatch CA " + cluster},
		NotBefore:             now.Add(-time.Minute),
		NotAfter:              now.Add(validFor),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
		BasicConstraintsValid: true,
		IsCA:                  true,
		MaxPathLenZero:        true,
		URIs:                  []*url.URL{{Scheme: identity.Scheme, Host: cluster}},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		return nil, fmt.Errorf("new CA: %w", err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, fmt.Errorf("new CA: %w", err)
	}
	return &CA{Cert: cert, Cluster: cluster, key: key}, nil
}

// ParseCA reads a CA from its PEM certificate and PKCS #8 PEM key, as
// MarshalPEM wrote them.
func ParseCA(certPEM, keyPEM []byte) (*CA, error) {
	cb, _ := pem.Decode(certPEM)
	if cb == nil || cb.Type != "CERTIFICATE" {
		return nil, errors.New("CA certificate: no PEM CERTIFICATE block")
	}
	cert, err := x509.ParseCertificate(cb.Bytes)
	if err != nil {
		return nil, fmt.Errorf("CA certificate: %w", err)
	}
	if !cert.IsCA {
		return nil, errors.New("CA certificate: not a CA")
	}
	kb, _ := pem.Decode(keyPEM)
	if kb == nil {
		return nil, errors.New("CA key: no PEM block")
	}
	k, err := x509.ParsePKCS8PrivateKey(kb.Bytes)
	if err != nil {
		return nil, fmt.Errorf("CA key: %w", err)
	}
	key, ok := k.(crypto.Signer)
	if !ok {
		return nil, fmt.Errorf("CA key: %T cannot sign", k)
	}
	if !publicEqual(key.Public(), cert.PublicKey) {
		return nil, errors.New("CA key: it is not the key of the CA certificate")
	}
	var cluster string
	for _, u := range cert.URIs {
		if u.Scheme == identity.Scheme {
			cluster = u.Host
		}
	}
	if err := identity.ValidateTrustDomain(cluster); err != nil {
		return nil, fmt.Errorf("CA certificate names no cluster (URI SAN spiffe://<cluster>; made by geomatch ca init?): %w", err)
	}
	return &CA{Cert: cert, Cluster: cluster, key: key}, nil
}

func publicEqual(a, b crypto.PublicKey) bool {
	type equaler interface{ Equal(crypto.PublicKey) bool }
	e, ok := a.(equaler)
	return ok && e.Equal(b)
}

// MarshalPEM returns the CA's certificate and its private key (PKCS #8)
// as PEM.
func (ca *CA) MarshalPEM() (certPEM, keyPEM []byte, err error) {
	kd, err := x509.MarshalPKCS8PrivateKey(ca.key)
	if err != nil {
		return nil, nil, fmt.Errorf("encode CA key: %w", err)
	}
	return pemOf("CERTIFICATE", ca.Cert.Raw), pemOf("PRIVATE KEY", kd), nil
}

// Pool returns a pool holding the CA's certificate only.
func (ca *CA) Pool() *x509.CertPool {
	p := x509.NewCertPool()
	p.AddCert(ca.Cert)
	return p
}

// IssueRequest describes a node certificate to issue.
type IssueRequest struct {
	// Role and ID name the node: its identity is
	// spiffe://<cluster>/<role>/<id>.
	Role identity.Role
	ID   string
	// Hosts are DNS names and IP addresses to add as SANs (for clients
	// that check the server's name: the public API of a router, grpcurl).
	Hosts []string
	// ValidFor is the certificate's lifetime; it ends no later than the
	// CA's.
	ValidFor time.Duration
	// KeyType is the node key's algorithm; default ECDSA P-256.
	KeyType KeyType
}

// Issued is a node certificate and its key.
type Issued struct {
	// ID is the identity it carries.
	ID identity.ID
	// Cert is the certificate.
	Cert *x509.Certificate
	// CertPEM is the certificate followed by nothing else (the CA is the
	// root the peers trust); KeyPEM is its PKCS #8 key.
	CertPEM, KeyPEM []byte
}

// TLS returns the issued pair as a TLS certificate.
func (is *Issued) TLS() (tls.Certificate, error) {
	c, err := tls.X509KeyPair(is.CertPEM, is.KeyPEM)
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("issued key pair: %w", err)
	}
	return c, nil
}

// Issue signs a node certificate for r: usable for serving and as a client
// certificate, with the node's SPIFFE ID as a URI SAN (and r.Hosts as
// DNS/IP SANs), a fresh key and a random serial.
func (ca *CA) Issue(r IssueRequest) (*Issued, error) {
	id, err := identity.New(ca.Cluster, r.Role, r.ID)
	if err != nil {
		return nil, err
	}
	if r.ValidFor <= 0 {
		return nil, errors.New("issue: validity must be positive")
	}
	key, err := newKey(r.KeyType)
	if err != nil {
		return nil, fmt.Errorf("issue %s: key: %w", id, err)
	}
	now := time.Now()
	notAfter := now.Add(r.ValidFor)
	if notAfter.After(ca.Cert.NotAfter) {
		notAfter = ca.Cert.NotAfter
	}
	tmpl := &x509.Certificate{
		SerialNumber: serial(),
		Subject:      pkix.Name{Organization: []string{"geomatch", ca.Cluster}, OrganizationalUnit: []string{string(r.Role)}, CommonName: r.ID},
		NotBefore:    now.Add(-time.Minute),
		NotAfter:     notAfter,
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
		URIs:         []*url.URL{id.URL()},
	}
	for _, h := range r.Hosts {
		h = strings.TrimSpace(h)
		switch {
		case h == "":
		case net.ParseIP(h) != nil:
			tmpl.IPAddresses = append(tmpl.IPAddresses, net.ParseIP(h))
		default:
			tmpl.DNSNames = append(tmpl.DNSNames, h)
		}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.Cert, key.Public(), ca.key)
	if err != nil {
		return nil, fmt.Errorf("issue %s: %w", id, err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, fmt.Errorf("issue %s: %w", id, err)
	}
	kd, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, fmt.Errorf("issue %s: encode key: %w", id, err)
	}
	return &Issued{ID: id, Cert: cert, CertPEM: pemOf("CERTIFICATE", der), KeyPEM: pemOf("PRIVATE KEY", kd)}, nil
}

func pemOf(kind string, der []byte) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: kind, Bytes: der})
}

// WriteFileAtomic writes data to path through a temporary file in the same
// directory renamed over it, so a process reloading path never reads half
// a file.
func WriteFileAtomic(path string, data []byte, mode os.FileMode) error {
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp-")
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	tmp := f.Name()
	_, err = f.Write(data)
	err = errors.Join(err, f.Chmod(mode), f.Close())
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err != nil {
		_ = os.Remove(tmp)
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}

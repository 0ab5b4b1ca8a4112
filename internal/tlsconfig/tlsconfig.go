// Package tlsconfig turns geomatch's TLS flags into crypto/tls
// configurations, the same way for every process:
//
//   - a server presents its certificate (--tls-cert, --tls-key), reloaded
//     from disk when the files change, so rotated certificates are picked up
//     without a restart;
//   - the internal API (matchers) requires a client certificate signed by
//     the cluster's CA (--tls-ca): mutual TLS between routers and matchers
//     and between matchers;
//   - the public API (routers) verifies a client certificate only when one
//     is presented: its callers prove who they are with tokens instead;
//   - a client verifies the server against the CA (the system roots without
//     one) and presents its own certificate when it has one.
//
// The internal API between nodes is secured by identity (Node): every node
// holds a certificate whose SPIFFE ID spiffe://<cluster>/<role>/<id> names
// it (package identity), issued by the cluster's CA (CA, made by `geomatch
// ca init` and used by `geomatch ca issue`). A node's server verifies the
// client certificates presented against the CA, and its dials accept only
// a server that is a matcher of the same cluster. Certificates and the CA
// bundle are read again when their files change.
//
// It also makes throwaway certificate authorities for development and tests
// (Generate, NewCA), so the secure setup is one flag away in `geomatch dev
// --tls`.
package tlsconfig

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"os"
	"sync"
	"time"
)

// Files are the PEM files of one process's TLS identity and trust.
type Files struct {
	// Cert and Key are the process's certificate (chain) and private key.
	Cert, Key string
	// CA is the certificate authority bundle that signs the cluster's
	// certificates: servers verify client certificates against it, clients
	// verify servers against it.
	CA string
}

// Enabled reports whether any file is set.
func (f Files) Enabled() bool { return f.Cert != "" || f.Key != "" || f.CA != "" }

// ClientAuth says what a server asks of its clients.
type ClientAuth int

const (
	// VerifyIfGiven accepts clients without a certificate and verifies the
	// ones that present one (the public API).
	VerifyIfGiven ClientAuth = iota
	// RequireClientCert refuses clients without a certificate signed by the
	// CA (the internal API: mutual TLS).
	RequireClientCert
)

// Server returns the configuration of a server with f's identity. Cert and
// Key are required; with RequireClientCert, so is CA.
func Server(f Files, auth ClientAuth) (*tls.Config, error) {
	if f.Cert == "" || f.Key == "" {
		return nil, errors.New("tls server: a certificate and its key are both required")
	}
	kp, err := newKeyPair(f.Cert, f.Key)
	if err != nil {
		return nil, err
	}
	cfg := &tls.Config{
		MinVersion:     tls.VersionTLS12,
		GetCertificate: func(*tls.ClientHelloInfo) (*tls.Certificate, error) { return kp.get() },
	}
	if f.CA != "" {
		if cfg.ClientCAs, err = loadPool(f.CA); err != nil {
			return nil, err
		}
		cfg.ClientAuth = tls.VerifyClientCertIfGiven
	}
	if auth == RequireClientCert {
		if f.CA == "" {
			return nil, errors.New("tls server: mutual TLS needs the CA that signs client certificates")
		}
		cfg.ClientAuth = tls.RequireAndVerifyClientCert
	}
	return cfg, nil
}

// Client returns the configuration of a client: it trusts f.CA (the system
// roots when empty) and presents f.Cert when set. Cert and Key go together.
func Client(f Files) (*tls.Config, error) {
	if (f.Cert == "") != (f.Key == "") {
		return nil, errors.New("tls client: a client certificate and its key go together")
	}
	cfg := &tls.Config{MinVersion: tls.VersionTLS12}
	if f.CA != "" {
		pool, err := loadPool(f.CA)
		if err != nil {
			return nil, err
		}
		cfg.RootCAs = pool
	}
	if f.Cert != "" {
		kp, err := newKeyPair(f.Cert, f.Key)
		if err != nil {
			return nil, err
		}
		cfg.GetClientCertificate = func(*tls.CertificateRequestInfo) (*tls.Certificate, error) { return kp.get() }
	}
	return cfg, nil
}

func loadPool(path string) (*x509.CertPool, error) {
	pem, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("tls CA: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("tls CA %s: no PEM certificate in it", path)
	}
	return pool, nil
}

// recheckEvery is how often a key pair looks at its files for a change.
const recheckEvery = 10 * time.Second

// keyPair is a certificate and key loaded from files and loaded again
// when either file's modification time changes. A reload that fails keeps
// the last good pair.
type keyPair struct {
	cert, key string

	mu      sync.Mutex
	current *tls.Certificate
	stamp   [2]time.Time
	checked time.Time
}

func newKeyPair(cert, key string) (*keyPair, error) {
	kp := &keyPair{cert: cert, key: key}
	if err := kp.load(); err != nil {
		return nil, err
	}
	return kp, nil
}

func (kp *keyPair) load() error {
	stamp, err := kp.stamps()
	if err != nil {
		return err
	}
	c, err := tls.LoadX509KeyPair(kp.cert, kp.key)
	if err != nil {
		return fmt.Errorf("tls key pair %s, %s: %w", kp.cert, kp.key, err)
	}
	kp.current, kp.stamp, kp.checked = &c, stamp, time.Now()
	return nil
}

func (kp *keyPair) stamps() ([2]time.Time, error) {
	var out [2]time.Time
	for i, p := range []string{kp.cert, kp.key} {
		fi, err := os.Stat(p)
		if err != nil {
			return out, fmt.Errorf("tls: %w", err)
		}
		out[i] = fi.ModTime()
	}
	return out, nil
}

// get returns the current pair, reloading it first if the files changed
// since the last look (at most every recheckEvery).
func (kp *keyPair) get() (*tls.Certificate, error) {
	kp.mu.Lock()
	defer kp.mu.Unlock()
	if time.Since(kp.checked) < recheckEvery {
		return kp.current, nil
	}
	kp.checked = time.Now()
	if stamp, err := kp.stamps(); err == nil && stamp != kp.stamp {
		old := kp.current
		if err := kp.load(); err != nil {
			kp.current = old // keep serving the last good pair
		}
	}
	return kp.current, nil
}

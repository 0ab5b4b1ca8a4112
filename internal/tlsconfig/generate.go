package tlsconfig

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"time"
)

// DevHosts are the names a generated certificate is valid for: the
// loopback addresses and localhost.
var DevHosts = []string{"127.0.0.1", "::1", "localhost"}

// Generated is a throwaway certificate authority and one certificate it
// signed, written as PEM files.
type Generated struct {
	// Dir holds the files.
	Dir string
	// Files are the CA bundle, the certificate and its key. The certificate
	// serves (servers) and identifies (clients), so one set of files runs a
	// whole loopback cluster; it carries no node identity, so the internal
	// API takes it only with --insecure-internal (NewCA and CA.Issue make
	// certificates with identities).
	Files Files
}

// Generate writes a new CA (ECDSA P-256) and a certificate for hosts (IP
// addresses or DNS names) valid for validFor into dir, as ca.pem, node.pem
// and node-key.pem; keys are written readable by the owner only. Nothing
// of the CA's private key is kept: no other certificate can be signed
// by it later.
func Generate(dir string, hosts []string, validFor time.Duration) (Generated, error) {
	if len(hosts) == 0 {
		return Generated{}, errors.New("generate certificates: no hosts")
	}
	now := time.Now()
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return Generated{}, fmt.Errorf("generate CA key: %w", err)
	}
	caTmpl := &x509.Certificate{
		SerialNumber:          serial(),
		Subject:               pkix.Name{Organization: []string{"geomatch"}, CommonName: "geomatch throwaway CA"},
		NotBefore:             now.Add(-time.Minute),
		NotAfter:              now.Add(validFor),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
		BasicConstraintsValid: true,
		IsCA:                  true,
		MaxPathLenZero:        true,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		return Generated{}, fmt.Errorf("generate CA: %w", err)
	}
	ca, err := x509.ParseCertificate(caDER)
	if err != nil {
		return Generated{}, fmt.Errorf("generate CA: %w", err)
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return Generated{}, fmt.Errorf("generate node key: %w", err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: serial(),
		Subject:      pkix.Name{Organization: []string{"geomatch"}, CommonName: "geomatch node"},
		NotBefore:    now.Add(-time.Minute),
		NotAfter:     now.Add(validFor),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
	}
	for _, h := range hosts {
		if ip := net.ParseIP(h); ip != nil {
			tmpl.IPAddresses = append(tmpl.IPAddresses, ip)
		} else {
			tmpl.DNSNames = append(tmpl.DNSNames, h)
		}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
	if err != nil {
		return Generated{}, fmt.Errorf("generate node certificate: %w", err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return Generated{}, fmt.Errorf("encode node key: %w", err)
	}
	g := Generated{Dir: dir, Files: Files{
		CA: filepath.Join(dir, "ca.pem"), Cert: filepath.Join(dir, "node.pem"), Key: filepath.Join(dir, "node-key.pem"),
	}}
	for _, w := range []struct {
		path, kind string
		der        []byte
		mode       os.FileMode
	}{
		{g.Files.CA, "CERTIFICATE", caDER, 0o644},
		{g.Files.Cert, "CERTIFICATE", der, 0o644},
		{g.Files.Key, "PRIVATE KEY", keyDER, 0o600},
	} {
		if err := os.WriteFile(w.path, pem.EncodeToMemory(&pem.Block{Type: w.kind, Bytes: w.der}), w.mode); err != nil {
			return Generated{}, fmt.Errorf("write %s: %w", w.path, err)
		}
	}
	return g, nil
}

// serial returns a random 128-bit certificate serial number.
func serial() *big.Int {
	b := make([]byte, 16)
	_, _ = rand.Read(b) // crypto/rand.Read never fails
	return new(big.Int).SetBytes(b)
}

package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/geomatch/geomatch/internal/identity"
	"github.com/geomatch/geomatch/internal/tlsconfig"
)

// caUsage explains `geomatch ca`.
const caUsage = `Usage: geomatch ca init|issue [flags]

The certificate authority of a cluster and its node certificates: every
router and matcher presents one on the internal API, whose URI SAN
spiffe://CLUSTER/ROLE/ID names its cluster, its role (router or matcher)
and itself; matchers admit each internal method only from the roles that
call it.

  geomatch ca init  --dir DIR [--cluster NAME] [--key-type ecdsa|ed25519] [--valid-for 87600h]
      writes DIR/ca.pem (the bundle every node trusts: --tls-ca) and
      DIR/ca-key.pem (keep it off the nodes)
  geomatch ca issue --dir DIR --role router|matcher --id ID [--hosts h1,h2] [--valid-for 720h]
      writes DIR/ROLE-ID.pem and DIR/ROLE-ID-key.pem (--tls-cert, --tls-key),
      replacing earlier ones atomically: running nodes pick a re-issued
      certificate up within seconds, without a restart

Run 'geomatch ca init --help' or 'geomatch ca issue --help' for the flags.
`

// Default lifetimes of a CA and of a node certificate.
const (
	defaultCAValidity   = 10 * 365 * 24 * time.Hour
	defaultNodeValidity = 30 * 24 * time.Hour
)

func runCA(_ context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		fmt.Fprint(stderr, caUsage)
		return errUsage
	}
	switch args[0] {
	case "init":
		return runCAInit(args[1:], stdout, stderr)
	case "issue":
		return runCAIssue(args[1:], stdout, stderr)
	case "-h", "--help", "help":
		fmt.Fprint(stdout, caUsage)
		return flag.ErrHelp
	}
	fmt.Fprintf(stderr, "geomatch ca: unknown subcommand %q\n\n%s", args[0], caUsage)
	return errUsage
}

// caFiles are the files of a CA in dir.
func caFiles(dir string) (cert, key string) {
	return filepath.Join(dir, "ca.pem"), filepath.Join(dir, "ca-key.pem")
}

func runCAInit(args []string, stdout, stderr io.Writer) error {
	fs := newFlags("ca init", "Makes the certificate authority of a cluster: DIR/ca.pem, the CA bundle every\nnode trusts (--tls-ca), and DIR/ca-key.pem, its private key, which issues the\nnode certificates (geomatch ca issue) and belongs on no node.", stderr)
	dir := fs.String("dir", "", "directory to write ca.pem and ca-key.pem into (made if missing; required)")
	cluster := fs.String("cluster", "geomatch", "the cluster's name, the trust domain of its identities (spiffe://NAME/ROLE/ID): lower-case letters, digits, '.', '-', '_'")
	keyType := fs.String("key-type", string(tlsconfig.ECDSAP256), "key algorithm: ecdsa (P-256) or ed25519")
	validFor := fs.Duration("valid-for", defaultCAValidity, "lifetime of the CA; node certificates end no later")
	force := fs.Bool("force", false, "replace an existing CA (every certificate the old one issued stops being trusted once nodes read the new ca.pem)")
	if err := parse(fs, args); err != nil {
		return err
	}
	if *dir == "" {
		return errors.New("--dir: required")
	}
	kt, err := tlsconfig.ParseKeyType(*keyType)
	if err != nil {
		return fmt.Errorf("--key-type: %w", err)
	}
	certFile, keyFile := caFiles(*dir)
	if _, err := os.Stat(certFile); err == nil && !*force {
		return fmt.Errorf("%s exists: a new CA would leave every node certificate of the old one untrusted; give --force to replace it", certFile)
	}
	ca, err := tlsconfig.NewCA(*cluster, kt, *validFor)
	if err != nil {
		return fmt.Errorf("--cluster: %w", err)
	}
	certPEM, keyPEM, err := ca.MarshalPEM()
	if err != nil {
		return err
	}
	if err := os.MkdirAll(*dir, 0o700); err != nil {
		return fmt.Errorf("--dir: %w", err)
	}
	if err := tlsconfig.WriteFileAtomic(keyFile, keyPEM, 0o600); err != nil {
		return err
	}
	if err := tlsconfig.WriteFileAtomic(certFile, certPEM, 0o644); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "CA of cluster %q (%s, valid until %s): %s (trust it: --tls-ca), key %s (keep it off the nodes)\n",
		ca.Cluster, kt, ca.Cert.NotAfter.UTC().Format(time.RFC3339), certFile, keyFile)
	return nil
}

func runCAIssue(args []string, stdout, stderr io.Writer) error {
	fs := newFlags("ca issue", "Issues a node certificate signed by the CA in DIR: its URI SAN\nspiffe://CLUSTER/ROLE/ID is the node's identity on the internal API. Written\nover earlier files atomically, so re-issuing rotates a running node's\ncertificate without a restart.", stderr)
	dir := fs.String("dir", "", "directory of the CA (geomatch ca init; required); the certificate is written there unless --cert says otherwise")
	role := fs.String("role", "", "router or matcher (required)")
	id := fs.String("id", "", "the node's id: a matcher's --id, a router's name (required; letters, digits, '.', '-', '_')")
	hosts := fs.String("hosts", "", "comma-separated DNS names and IP addresses to add as SANs (for clients that check the server's name: a router's public API, grpcurl); matchers are checked by identity and need none")
	validFor := fs.Duration("valid-for", defaultNodeValidity, "lifetime of the certificate (no later than the CA's end)")
	keyType := fs.String("key-type", string(tlsconfig.ECDSAP256), "key algorithm: ecdsa (P-256) or ed25519")
	certOut := fs.String("cert", "", "file to write the certificate to (default DIR/ROLE-ID.pem)")
	keyOut := fs.String("key", "", "file to write its private key to (default DIR/ROLE-ID-key.pem)")
	if err := parse(fs, args); err != nil {
		return err
	}
	if *dir == "" {
		return errors.New("--dir: required (the CA's directory)")
	}
	r := identity.Role(*role)
	if !r.Valid() {
		return fmt.Errorf("--role: %q, want router or matcher", *role)
	}
	if *id == "" {
		return errors.New("--id: required")
	}
	kt, err := tlsconfig.ParseKeyType(*keyType)
	if err != nil {
		return fmt.Errorf("--key-type: %w", err)
	}
	caCert, caKey := caFiles(*dir)
	certPEM, err := os.ReadFile(caCert)
	if err != nil {
		return fmt.Errorf("--dir: %w (make the CA with geomatch ca init)", err)
	}
	keyPEM, err := os.ReadFile(caKey)
	if err != nil {
		return fmt.Errorf("--dir: %w", err)
	}
	ca, err := tlsconfig.ParseCA(certPEM, keyPEM)
	if err != nil {
		return fmt.Errorf("--dir %s: %w", *dir, err)
	}
	var hs []string
	for _, h := range strings.Split(*hosts, ",") {
		if h = strings.TrimSpace(h); h != "" {
			hs = append(hs, h)
		}
	}
	is, err := ca.Issue(tlsconfig.IssueRequest{Role: r, ID: *id, Hosts: hs, ValidFor: *validFor, KeyType: kt})
	if err != nil {
		return err
	}
	if *certOut == "" {
		*certOut = filepath.Join(*dir, *role+"-"+*id+".pem")
	}
	if *keyOut == "" {
		*keyOut = filepath.Join(*dir, *role+"-"+*id+"-key.pem")
	}
	// The key first: a node that reloads in between finds a pair that does
	// not match, keeps its current one and looks again.
	if err := tlsconfig.WriteFileAtomic(*keyOut, is.KeyPEM, 0o600); err != nil {
		return err
	}
	if err := tlsconfig.WriteFileAtomic(*certOut, is.CertPEM, 0o644); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "issued %s (serial %x, valid until %s): %s, key %s\n",
		is.ID, is.Cert.SerialNumber, is.Cert.NotAfter.UTC().Format(time.RFC3339), *certOut, *keyOut)
	return nil
}

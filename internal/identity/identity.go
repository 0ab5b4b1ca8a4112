// Package identity names the nodes of a geomatch cluster and authorizes
// calls between them.
//
// A node's identity is a SPIFFE ID carried as the URI SAN of its
// certificate (issued by `geomatch ca issue`):
//
//	spiffe://<cluster>/<role>/<id>
//
// where cluster is the trust domain (the name given to `geomatch ca
// init`), role is router or matcher, and id names the node (a matcher's
// member id, a router's pod name). Authorization is by role: the internal
// API of a matcher admits each method from the roles that call it (Policy,
// Authorizer), and a router or matcher dialling a matcher checks that the
// server is a matcher of its own cluster.
package identity

import (
	"crypto/x509"
	"errors"
	"fmt"
	"net/url"
	"strings"
)

// Role is what a node does in the cluster.
type Role string

// The roles of a cluster's nodes.
const (
	// RoleRouter is a router: the public API, which calls matchers.
	RoleRouter Role = "router"
	// RoleMatcher is a matcher: it serves the internal API and calls other
	// matchers (handoff, ride searches, the ring writer's census).
	RoleMatcher Role = "matcher"
)

// Roles are the known roles.
var Roles = []Role{RoleRouter, RoleMatcher}

// Valid reports whether r is a known role.
func (r Role) Valid() bool { return r == RoleRouter || r == RoleMatcher }

// Scheme is the URI scheme of identities.
const Scheme = "spiffe"

// ErrNoIdentity is returned for a certificate that carries no SPIFFE ID.
var ErrNoIdentity = errors.New("the certificate carries no spiffe:// identity")

// ID is the identity of one node.
type ID struct {
	// TrustDomain is the cluster's name.
	TrustDomain string
	// Role is the node's role.
	Role Role
	// Name tells the node apart from the others of its role.
	Name string
}

// New returns the identity of node name with role in the cluster
// trustDomain, or an error naming what is wrong with it.
func New(trustDomain string, role Role, name string) (ID, error) {
	id := ID{TrustDomain: trustDomain, Role: role, Name: name}
	return id, id.Validate()
}

// Validate checks every part of id.
func (id ID) Validate() error {
	if err := ValidateTrustDomain(id.TrustDomain); err != nil {
		return err
	}
	if !id.Role.Valid() {
		return fmt.Errorf("identity: role %q is neither router nor matcher", id.Role)
	}
	if err := validName(id.Name); err != nil {
		return fmt.Errorf("identity: node id %q: %w", id.Name, err)
	}
	return nil
}

// ValidateTrustDomain checks a cluster name: 1 to 255 lower-case letters,
// digits, dots, dashes and underscores, as SPIFFE trust domains are.
func ValidateTrustDomain(td string) error {
	if td == "" || len(td) > 255 {
		return fmt.Errorf("identity: cluster name %q: want 1 to 255 characters", td)
	}
	for _, c := range td {
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '.' || c == '-' || c == '_') {
			return fmt.Errorf("identity: cluster name %q: only lower-case letters, digits, '.', '-' and '_'", td)
		}
	}
	return nil
}

// validName checks a node id: letters, digits, '.', '-', '_', at most 128.
func validName(s string) error {
	if s == "" || len(s) > 128 {
		return errors.New("want 1 to 128 characters")
	}
	for _, c := range s {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '-' || c == '_') {
			return errors.New("only letters, digits, '.', '-' and '_'")
		}
	}
	return nil
}

// String returns the SPIFFE ID: spiffe://<cluster>/<role>/<id>.
func (id ID) String() string {
	return Scheme + "://" + id.TrustDomain + "/" + string(id.Role) + "/" + id.Name
}

// URL returns the SPIFFE ID as the URL a certificate's URI SAN holds.
func (id ID) URL() *url.URL {
	return &url.URL{Scheme: Scheme, Host: id.TrustDomain, Path: "/" + string(id.Role) + "/" + id.Name}
}

// Parse reads a SPIFFE ID of a geomatch node.
func Parse(s string) (ID, error) {
	u, err := url.Parse(s)
	if err != nil {
		return ID{}, fmt.Errorf("identity %q: %w", s, err)
	}
	return fromURL(u)
}

func fromURL(u *url.URL) (ID, error) {
	if u.Scheme != Scheme {
		return ID{}, fmt.Errorf("identity %q: scheme %q, want %s", u, u.Scheme, Scheme)
	}
	if u.User != nil || u.Port() != "" || u.RawQuery != "" || u.Fragment != "" || u.Opaque != "" {
		return ID{}, fmt.Errorf("identity %q: a SPIFFE ID has no user, port, query or fragment", u)
	}
	parts := strings.Split(strings.TrimPrefix(u.Path, "/"), "/")
	if len(parts) != 2 || !strings.HasPrefix(u.Path, "/") {
		return ID{}, fmt.Errorf("identity %q: want spiffe://<cluster>/<role>/<id>", u)
	}
	id := ID{TrustDomain: u.Host, Role: Role(parts[0]), Name: parts[1]}
	if err := id.Validate(); err != nil {
		return ID{}, fmt.Errorf("%w (in %q)", err, u)
	}
	return id, nil
}

// FromCert returns the identity in cert's URI SANs: ErrNoIdentity without
// a spiffe:// URI, an error with more than one or a malformed one.
func FromCert(cert *x509.Certificate) (ID, error) {
	if cert == nil {
		return ID{}, ErrNoIdentity
	}
	var found []*url.URL
	for _, u := range cert.URIs {
		if u.Scheme == Scheme {
			found = append(found, u)
		}
	}
	switch len(found) {
	case 0:
		return ID{}, ErrNoIdentity
	case 1:
		return fromURL(found[0])
	}
	return ID{}, fmt.Errorf("identity: the certificate carries %d spiffe:// URIs, want one", len(found))
}

// Describe names a certificate's holder for messages: its identity, or its
// subject when it has none.
func Describe(cert *x509.Certificate) string {
	if id, err := FromCert(cert); err == nil {
		return id.String()
	}
	if cert == nil {
		return "no certificate"
	}
	return fmt.Sprintf("certificate %q (serial %x) without a geomatch identity", cert.Subject.String(), cert.SerialNumber)
}

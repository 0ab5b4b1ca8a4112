package identity

import (
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"math/big"
	"net/url"
	"testing"
)

func TestParse(t *testing.T) {
	cases := []struct {
		in      string
		want    ID
		wantErr bool
	}{
		{in: "spiffe://prod/router/r-1", want: ID{"prod", RoleRouter, "r-1"}},
		{in: "spiffe://geo.example_1/matcher/geomatch-matcher-0", want: ID{"geo.example_1", RoleMatcher, "geomatch-matcher-0"}},
		{in: "spiffe://prod/admin/ops", wantErr: true},     // unknown role
		{in: "spiffe://prod/router", wantErr: true},        // no id
		{in: "spiffe://prod/router/a/b", wantErr: true},    // too deep
		{in: "spiffe://Prod/router/r1", wantErr: true},     // upper-case trust domain
		{in: "spiffe://prod:443/router/r1", wantErr: true}, // port
		{in: "spiffe://u@prod/router/r1", wantErr: true},   // user
		{in: "spiffe://prod/router/r1?x=1", wantErr: true}, // query
		{in: "spiffe://prod/router/r1#f", wantErr: true},   // fragment
		{in: "spiffe:///router/r1", wantErr: true},         // no trust domain
		{in: "https://prod/router/r1", wantErr: true},      // scheme
		{in: "spiffe://prod/router/r%201", wantErr: true},  // space in id
		{in: "spiffe://prod/matcher/", wantErr: true},      // empty id
		{in: "spiffe://prod//matcher/m1", wantErr: true},   // empty segment
		{in: "not a url at all %", wantErr: true},          // unparsable
		{in: "spiffe://prod/matcher/m1/", wantErr: true},   // trailing slash
		{in: "spiffe://prod/matcher/m.1_x-Y", want: ID{"prod", RoleMatcher, "m.1_x-Y"}},
	}
	for _, c := range cases {
		t.Run(c.in, func(t *testing.T) {
			got, err := Parse(c.in)
			if (err != nil) != c.wantErr {
				t.Fatalf("Parse(%q) = %v, %v; want error %v", c.in, got, err, c.wantErr)
			}
			if err != nil {
				return
			}
			if got != c.want {
				t.Fatalf("Parse(%q) = %+v, want %+v", c.in, got, c.want)
			}
			if got.String() != c.in || got.URL().String() != c.in {
				t.Fatalf("round trip: %q, %q; want %q", got.String(), got.URL(), c.in)
			}
		})
	}
}

func TestFromCert(t *testing.T) {
	u := func(s string) *url.URL {
		x, err := url.Parse(s)
		if err != nil {
			t.Fatal(err)
		}
		return x
	}
	cert := func(uris ...string) *x509.Certificate {
		c := &x509.Certificate{Subject: pkix.Name{CommonName: "x"}, SerialNumber: big.NewInt(7)}
		for _, s := range uris {
			c.URIs = append(c.URIs, u(s))
		}
		return c
	}
	cases := []struct {
		name    string
		cert    *x509.Certificate
		want    ID
		noID    bool
		wantErr bool
	}{
		{name: "one identity", cert: cert("spiffe://c/matcher/m1"), want: ID{"c", RoleMatcher, "m1"}},
		{name: "other URIs ignored", cert: cert("https://example.com/x", "spiffe://c/router/r"), want: ID{"c", RoleRouter, "r"}},
		{name: "none", cert: cert(), noID: true, wantErr: true},
		{name: "only other URIs", cert: cert("https://example.com/"), noID: true, wantErr: true},
		{name: "nil", cert: nil, noID: true, wantErr: true},
		{name: "two identities", cert: cert("spiffe://c/router/r", "spiffe://c/matcher/m"), wantErr: true},
		{name: "malformed", cert: cert("spiffe://c/chef/r"), wantErr: true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, err := FromCert(c.cert)
			if (err != nil) != c.wantErr || errors.Is(err, ErrNoIdentity) != c.noID {
				t.Fatalf("FromCert = %v, %v; want error %v (no identity %v)", got, err, c.wantErr, c.noID)
			}
			if err == nil && got != c.want {
				t.Fatalf("FromCert = %+v, want %+v", got, c.want)
			}
		})
	}
	if d := Describe(cert()); d == "" || d == "no certificate" {
		t.Fatalf("Describe of a certificate without identity: %q", d)
	}
}

func TestNewValidates(t *testing.T) {
	if _, err := New("prod", RoleMatcher, "m1"); err != nil {
		t.Fatal(err)
	}
	for _, bad := range []ID{{"", RoleMatcher, "m1"}, {"prod", "", "m1"}, {"prod", RoleRouter, ""}, {"pr od", RoleRouter, "r"}, {"prod", RoleRouter, "r/1"}} {
		if _, err := New(bad.TrustDomain, bad.Role, bad.Name); err == nil {
			t.Errorf("New(%+v): no error", bad)
		}
	}
}

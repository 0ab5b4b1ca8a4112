package auth

import (
	"testing"
	"time"
)

// BenchmarkVerify: the cost of checking one call's token (a router pays it
// on every public call with authentication on, unless its token cache
// holds the token), for an HS256 token (deprecated).
func BenchmarkVerify(b *testing.B) {
	k, err := NewKeyring(keyA)
	if err != nil {
		b.Fatal(err)
	}
	benchVerify(b, k, k)
}

// BenchmarkVerifyEdDSA: the same for an EdDSA token checked against a
// key set of two public keys (a rotation in progress).
func BenchmarkVerifyEdDSA(b *testing.B) {
	cur := edKey("2026-03", 2)
	benchVerify(b, issuerOf(b, cur), verifierOf(b, edKey("2026-01", 1), cur))
}

func benchVerify(b *testing.B, issuer, verifier *Keyring) {
	tok, err := issuer.Issue("cab-1", RoleDriver, time.Hour, t0)
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := verifier.Verify(tok, t0); err != nil {
			b.Fatal(err)
		}
	}
}

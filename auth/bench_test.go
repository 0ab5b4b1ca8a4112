package auth

import (
	"testing"
	"time"
)

// BenchmarkVerify: the cost of checking one call's token (a router pays it
// on every public call with authentication on).
func BenchmarkVerify(b *testing.B) {
	k, err := NewKeyring(keyA)
	if err != nil {
		b.Fatal(err)
	}
	tok, err := k.Issue("cab-1", RoleDriver, time.Hour, t0)
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := k.Verify(tok, t0); err != nil {
			b.Fatal(err)
		}
	}
}

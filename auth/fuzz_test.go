package auth

import (
	"errors"
	"strings"
	"testing"
	"time"
)

// FuzzVerify: no input makes Verify panic, and whatever it accepts is a
// token the keyring could have minted: complete claims, valid at the time,
// and signed (changing any byte of it makes it fail).
func FuzzVerify(f *testing.F) {
	k, err := NewKeyring(keyA)
	if err != nil {
		f.Fatal(err)
	}
	good, err := k.Issue("cab-1", RoleDriver, time.Hour, t0)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(good)
	f.Add(handMade(keyA, `{"alg":"HS256"}`, `{"sub":"alice","role":"rider","exp":9999999999}`))
	f.Add(handMade(keyA, `{"alg":"none"}`, `{"sub":"alice","role":"admin","exp":9999999999}`))
	f.Add("a.b.c")
	f.Add("..")
	f.Add("")
	f.Fuzz(func(t *testing.T, token string) {
		c, err := k.Verify(token, t0)
		if err != nil {
			for _, e := range []error{ErrMalformed, ErrUnknownKey, ErrSignature, ErrClaims, ErrExpired, ErrNotYetValid} {
				if errors.Is(err, e) {
					return
				}
			}
			t.Fatalf("Verify(%q): untyped error %v", token, err)
		}
		if c.Subject == "" || c.Expiry.IsZero() || !t0.Before(c.Expiry.Add(ClockLeeway)) {
			t.Fatalf("Verify(%q) accepted claims %+v", token, c)
		}
		if _, err := ParseRole(string(c.Role)); err != nil {
			t.Fatalf("Verify(%q) accepted role %q", token, c.Role)
		}
		// Flip one byte of the signature part: it must no longer verify.
		i := strings.LastIndexByte(token, '.') + 1
		if i < len(token) {
			b := []byte(token)
			b[i] ^= 0x01
			if _, err := k.Verify(string(b), t0); err == nil {
				t.Fatalf("Verify accepted %q and its altered copy %q", token, b)
			}
		}
	})
}

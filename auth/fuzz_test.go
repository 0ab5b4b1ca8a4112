package auth

import (
	"crypto/ed25519"
	"crypto/hmac"
	"encoding/base64"
	"encoding/json"
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

// fuzzRing is the keyring of the EdDSA fuzz targets: two Ed25519 public
// keys (a rotation in progress) and an HS256 secret (a deprecated one
// still listed). listed reports whether a token's signature is one of
// these keys', checked here independently of the JWT library.
func fuzzRing(f *testing.F) (k *Keyring, keys map[string]*SigningKey, listed func(token string) bool) {
	keys = map[string]*SigningKey{"k1": edKey("k1", 1), "k2": edKey("k2", 2)}
	k, err := New(Config{PublicKeys: []PublicKey{keys["k1"].Public(), keys["k2"].Public()}, Secrets: [][]byte{keyA}})
	if err != nil {
		f.Fatal(err)
	}
	listed = func(token string) bool {
		i := strings.LastIndexByte(token, '.')
		sig, err := base64.RawURLEncoding.DecodeString(token[i+1:])
		if err != nil {
			return false
		}
		signed := token[:i]
		for _, key := range keys {
			if ed25519.Verify(key.Public().Key, []byte(signed), sig) {
				return true
			}
		}
		return hmac.Equal(sig, hmacSig(keyA, signed))
	}
	return k, keys, listed
}

// checkAccepted fails unless claims accepted at t0 are complete and valid
// then, and the token is signed by a listed key.
func checkAccepted(t *testing.T, token string, c Claims, listed func(string) bool) {
	t.Helper()
	if c.Subject == "" || c.Expiry.IsZero() || !t0.Before(c.Expiry.Add(ClockLeeway)) {
		t.Fatalf("Verify(%q) accepted claims %+v", token, c)
	}
	if _, err := ParseRole(string(c.Role)); err != nil {
		t.Fatalf("Verify(%q) accepted role %q", token, c.Role)
	}
	if !listed(token) {
		t.Fatalf("Verify(%q) accepted a token no listed key signed", token)
	}
}

// typedError fails unless err wraps one of Verify's errors.
func typedError(t *testing.T, token string, err error) {
	t.Helper()
	for _, e := range []error{ErrMalformed, ErrUnknownKey, ErrSignature, ErrClaims, ErrExpired, ErrNotYetValid} {
		if errors.Is(err, e) {
			return
		}
	}
	t.Fatalf("Verify(%q): untyped error %v", token, err)
}

// FuzzVerifyEdDSA: no input makes Verify of a mixed keyring panic, and
// whatever it accepts is signed by a listed key (checked with
// crypto/ed25519 and crypto/hmac directly), complete and valid at the
// time.
func FuzzVerifyEdDSA(f *testing.F) {
	k, keys, listed := fuzzRing(f)
	good, err := issuerOf(f, keys["k1"]).Issue("cab-1", RoleDriver, time.Hour, t0)
	if err != nil {
		f.Fatal(err)
	}
	pub := []byte(keys["k1"].Public().Key)
	f.Add(good)
	f.Add(edMade(keys["k2"].Key, `{"alg":"EdDSA","kid":"k2"}`, payloadAt("")))
	f.Add(handMade(pub, `{"alg":"HS256","kid":"k1"}`, payloadAt("")))
	f.Add(handMade(pub, `{"alg":"HS256"}`, payloadAt("")))
	f.Add(handMade(keyA, `{"alg":"HS256"}`, `{"sub":"alice","role":"rider","exp":9999999999}`))
	f.Add(seg(`{"alg":"none","kid":"k1"}`) + "." + seg(payloadAt("")) + ".")
	f.Add(edMade(edKey("k3", 3).Key, `{"alg":"EdDSA","kid":"k3"}`, payloadAt("")))
	f.Add(edMade(keys["k1"].Key, `{"alg":"EdDSA","kid":"k1"}`, payloadAt(`"nbf":9999999999`)))
	f.Add("..")
	f.Fuzz(func(t *testing.T, token string) {
		c, err := k.Verify(token, t0)
		if err != nil {
			typedError(t, token, err)
			return
		}
		checkAccepted(t, token, c, listed)
	})
}

// FuzzForgedTokens builds tokens from a fuzzed header and claims set,
// signed in one of several ways — by a listed Ed25519 key, by an unlisted
// one, by HMAC keyed with a listed public key (algorithm confusion), by
// the listed HS256 secret, or not at all — and checks that Verify accepts
// only the first and fourth, and only when the header names that key (or,
// for HS256, no key) with its algorithm.
func FuzzForgedTokens(f *testing.F) {
	k, keys, listed := fuzzRing(f)
	hsID := SecretKeyID(keyA)
	for how := range byte(5) {
		f.Add(`{"alg":"EdDSA","kid":"k1"}`, payloadAt(""), how)
		f.Add(`{"alg":"HS256","kid":"k1"}`, payloadAt(""), how)
		f.Add(`{"alg":"HS256","kid":"`+hsID+`"}`, payloadAt(""), how)
		f.Add(`{"alg":"none"}`, payloadAt(""), how)
	}
	f.Add(`{"alg":"EdDSA","kid":"k2","typ":"jwt"}`, `{"iss":"geomatch","aud":["geomatch"],"sub":"x","role":"admin","exp":1e10}`, byte(0))
	f.Fuzz(func(t *testing.T, header, payload string, how byte) {
		var token string
		var signer string // the key id the token is really signed by; "" for none listed
		alg := ""
		switch how % 5 {
		case 0:
			token, signer, alg = edMade(keys["k1"].Key, header, payload), "k1", "EdDSA"
		case 1:
			token = edMade(edKey("k9", 9).Key, header, payload)
		case 2:
			token = handMade(keys["k1"].Public().Key, header, payload)
		case 3:
			token, signer, alg = handMade(keyA, header, payload), hsID, "HS256"
		case 4:
			token = seg(header) + "." + seg(payload) + "."
		}
		c, err := k.Verify(token, t0)
		if err != nil {
			typedError(t, token, err)
			return
		}
		checkAccepted(t, token, c, listed)
		var h struct{ Alg, Kid string }
		if signer == "" || json.Unmarshal([]byte(header), &h) != nil || h.Alg != alg || (h.Kid != signer && !(alg == "HS256" && h.Kid == "")) {
			t.Fatalf("accepted header %s signed %d-wise (by %q)", header, how%5, signer)
		}
	})
}

package auth

import (
	"bytes"
	"crypto/ed25519"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// edKey returns a deterministic Ed25519 signing key named id, seeded by
// seed.
func edKey(id string, seed byte) *SigningKey {
	return &SigningKey{ID: id, Key: ed25519.NewKeyFromSeed(bytes.Repeat([]byte{seed}, ed25519.SeedSize))}
}

// verifierOf returns a keyring that verifies with the public keys only.
func verifierOf(t testing.TB, keys ...*SigningKey) *Keyring {
	t.Helper()
	var pubs []PublicKey
	for _, k := range keys {
		pubs = append(pubs, k.Public())
	}
	k, err := New(Config{PublicKeys: pubs})
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// issuerOf returns a keyring that signs with key.
func issuerOf(t testing.TB, key *SigningKey) *Keyring {
	t.Helper()
	k, err := New(Config{SigningKey: key})
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// seg is the base64url form of a token segment.
func seg(s string) string { return base64.RawURLEncoding.EncodeToString([]byte(s)) }

// edMade signs an arbitrary header and payload with an Ed25519 key, as an
// attacker holding that key (or another library) would.
func edMade(key ed25519.PrivateKey, header, payload string) string {
	signed := seg(header) + "." + seg(payload)
	return signed + "." + base64.RawURLEncoding.EncodeToString(ed25519.Sign(key, []byte(signed)))
}

// payloadAt is a claims set valid at t0 for an hour, with iss and aud.
func payloadAt(extra string) string {
	exp := strconv.FormatInt(t0.Add(time.Hour).Unix(), 10)
	p := `{"iss":"geomatch","aud":"geomatch","sub":"cab-1","role":"driver","exp":` + exp
	if extra != "" {
		p += "," + extra
	}
	return p + "}"
}

// TestVerifyEdDSA: each row is a token and the error a router's keyring
// (public keys only) must answer at t0 (nil: accepted).
func TestVerifyEdDSA(t *testing.T) {
	cur, other := edKey("k1", 1), edKey("k2", 2)
	router := verifierOf(t, cur)
	iss := issuerOf(t, cur)
	good := Claims{Subject: "cab-1", Role: RoleDriver, IssuedAt: t0.Add(-time.Minute), Expiry: t0.Add(time.Hour)}
	valid, err := iss.Mint(good)
	if err != nil {
		t.Fatal(err)
	}
	parts := strings.Split(valid, ".")
	pub := []byte(cur.Public().Key)
	exp := strconv.FormatInt(t0.Add(time.Hour).Unix(), 10)
	mintBy := func(k *Keyring, c Claims) string {
		tok, err := k.Mint(c)
		if err != nil {
			t.Fatal(err)
		}
		return tok
	}
	withAud, err := New(Config{SigningKey: cur, Audience: "billing"})
	if err != nil {
		t.Fatal(err)
	}
	withIss, err := New(Config{SigningKey: cur, Issuer: "someone-else"})
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name  string
		token string
		want  error
	}{
		{"valid", valid, nil},
		{"hand-made with iss and aud", edMade(cur.Key, `{"alg":"EdDSA","kid":"k1"}`, payloadAt("")), nil},
		{"aud as a list", edMade(cur.Key, `{"alg":"EdDSA","kid":"k1","typ":"JWT"}`, `{"iss":"geomatch","aud":["x","geomatch"],"sub":"cab-1","role":"driver","exp":`+exp+`}`), nil},
		// Algorithm confusion: an HS256 token whose HMAC key is the public
		// key's bytes, which every verifier knows.
		{"alg confusion: HS256 keyed with the public key", handMade(pub, `{"alg":"HS256","kid":"k1"}`, payloadAt("")), ErrMalformed},
		{"alg confusion: HS256 with the public key, no kid", handMade(pub, `{"alg":"HS256"}`, payloadAt("")), ErrUnknownKey},
		{"alg confusion: HS256 with the public key in base64url", handMade([]byte(base64.RawURLEncoding.EncodeToString(pub)), `{"alg":"HS256","kid":"k1"}`, payloadAt("")), ErrMalformed},
		{"alg none", seg(`{"alg":"none","kid":"k1"}`) + "." + parts[1] + ".", ErrMalformed},
		{"alg none, no kid", seg(`{"alg":"none"}`) + "." + parts[1] + ".", ErrMalformed},
		{"alg None", seg(`{"alg":"None","kid":"k1"}`) + "." + parts[1] + ".", ErrMalformed},
		{"alg ES256", seg(`{"alg":"ES256","kid":"k1"}`) + "." + parts[1] + "." + parts[2], ErrMalformed},
		{"alg missing", seg(`{"kid":"k1"}`) + "." + parts[1] + "." + parts[2], ErrMalformed},
		{"alg lower case", edMade(cur.Key, `{"alg":"eddsa","kid":"k1"}`, payloadAt("")), ErrMalformed},
		{"expired", mintBy(iss, Claims{Subject: "cab-1", Role: RoleDriver, Expiry: t0.Add(-ClockLeeway - time.Second)}), ErrExpired},
		{"expired within the leeway", mintBy(iss, Claims{Subject: "cab-1", Role: RoleDriver, Expiry: t0.Add(-ClockLeeway + time.Second)}), nil},
		{"not yet valid", mintBy(iss, Claims{Subject: "cab-1", Role: RoleDriver, NotBefore: t0.Add(ClockLeeway + time.Second), Expiry: t0.Add(time.Hour)}), ErrNotYetValid},
		{"not yet valid within the leeway", mintBy(iss, Claims{Subject: "cab-1", Role: RoleDriver, NotBefore: t0.Add(ClockLeeway - time.Second), Expiry: t0.Add(time.Hour)}), nil},
		{"no exp", edMade(cur.Key, `{"alg":"EdDSA","kid":"k1"}`, `{"iss":"geomatch","aud":"geomatch","sub":"cab-1","role":"driver"}`), ErrClaims},
		{"wrong audience", mintBy(withAud, good), ErrClaims},
		{"no audience", edMade(cur.Key, `{"alg":"EdDSA","kid":"k1"}`, `{"iss":"geomatch","sub":"cab-1","role":"driver","exp":`+exp+`}`), ErrClaims},
		{"wrong issuer", mintBy(withIss, good), ErrClaims},
		{"no issuer", edMade(cur.Key, `{"alg":"EdDSA","kid":"k1"}`, `{"aud":"geomatch","sub":"cab-1","role":"driver","exp":`+exp+`}`), ErrClaims},
		{"unknown role", edMade(cur.Key, `{"alg":"EdDSA","kid":"k1"}`, `{"iss":"geomatch","aud":"geomatch","sub":"cab-1","role":"root","exp":`+exp+`}`), ErrClaims},
		{"no subject", edMade(cur.Key, `{"alg":"EdDSA","kid":"k1"}`, `{"iss":"geomatch","aud":"geomatch","role":"admin","exp":`+exp+`}`), ErrClaims},
		{"unknown kid", mintBy(issuerOf(t, other), good), ErrUnknownKey},
		{"no kid", edMade(cur.Key, `{"alg":"EdDSA"}`, payloadAt("")), ErrUnknownKey},
		{"kid not a string", edMade(cur.Key, `{"alg":"EdDSA","kid":1}`, payloadAt("")), ErrMalformed},
		{"another key under the listed kid", edMade(other.Key, `{"alg":"EdDSA","kid":"k1"}`, payloadAt("")), ErrSignature},
		{"tampered payload: admin role", parts[0] + "." + seg(`{"iss":"geomatch","aud":["geomatch"],"sub":"cab-1","role":"admin","exp":`+exp+`}`) + "." + parts[2], ErrSignature},
		{"tampered payload: later expiry", parts[0] + "." + seg(strings.Replace(payloadAt(""), exp, exp+"0", 1)) + "." + parts[2], ErrSignature},
		{"tampered header: kid of another key", seg(`{"alg":"EdDSA","kid":"k2","typ":"JWT"}`) + "." + parts[1] + "." + parts[2], ErrUnknownKey},
		{"signature of another token", parts[0] + "." + parts[1] + "." + strings.Split(mintBy(iss, Claims{Subject: "cab-2", Role: RoleDriver, Expiry: t0.Add(time.Hour)}), ".")[2], ErrSignature},
		{"no signature", parts[0] + "." + parts[1] + ".", ErrSignature},
		{"signature not base64url", parts[0] + "." + parts[1] + ".!!", ErrMalformed},
		{"padded header", parts[0] + "=." + parts[1] + "." + parts[2], ErrMalformed},
		{"crit header", edMade(cur.Key, `{"alg":"EdDSA","kid":"k1","crit":["exp"],"exp":1}`, payloadAt("")), ErrMalformed},
		{"typ not JWT", edMade(cur.Key, `{"alg":"EdDSA","kid":"k1","typ":"JWE"}`, payloadAt("")), ErrMalformed},
		{"two parts", parts[0] + "." + parts[1], ErrMalformed},
		{"four parts", valid + ".x", ErrMalformed},
		{"too long", strings.Repeat("a", MaxTokenBytes+1), ErrMalformed},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, err := router.Verify(c.token, t0)
			if c.want == nil {
				if err != nil {
					t.Fatalf("Verify: %v, want accepted", err)
				}
				if got.Subject == "" || got.Role == "" || got.Expiry.IsZero() || got.KeyID != "k1" {
					t.Fatalf("accepted with incomplete claims %+v", got)
				}
				return
			}
			if !errors.Is(err, c.want) {
				t.Fatalf("Verify: %v, want %v", err, c.want)
			}
		})
	}
}

// TestMixedKeyring: a keyring of an Ed25519 key and an HS256 secret (a
// deployment moving off HS256) picks the key by kid and the algorithm by
// the key, never by the token's alg.
func TestMixedKeyring(t *testing.T) {
	ed := edKey("ed-1", 1)
	k, err := New(Config{PublicKeys: []PublicKey{ed.Public()}, Secrets: [][]byte{keyA}})
	if err != nil {
		t.Fatal(err)
	}
	if !k.HasSecrets() || k.SigningKeyID() != SecretKeyID(keyA) {
		t.Fatalf("HasSecrets %v, signing key %q", k.HasSecrets(), k.SigningKeyID())
	}
	hsID := SecretKeyID(keyA)
	exp := strconv.FormatInt(t0.Add(time.Hour).Unix(), 10)
	legacy := `{"sub":"alice","role":"rider","exp":` + exp + `}`
	for _, c := range []struct {
		name  string
		token string
		want  error
	}{
		{"EdDSA", edMade(ed.Key, `{"alg":"EdDSA","kid":"ed-1"}`, payloadAt("")), nil},
		{"HS256 minted", mint(t, ring(t, keyA), Claims{Subject: "alice", Role: RoleRider, Expiry: t0.Add(time.Hour)}), nil},
		{"HS256 of an old minter, no iss or aud", handMade(keyA, `{"alg":"HS256","kid":"`+hsID+`"}`, legacy), nil},
		{"HS256 without kid", handMade(keyA, `{"alg":"HS256"}`, legacy), nil},
		{"HS256 with a wrong issuer", handMade(keyA, `{"alg":"HS256"}`, `{"iss":"x","sub":"alice","role":"rider","exp":`+exp+`}`), ErrClaims},
		{"HS256 with a wrong audience", handMade(keyA, `{"alg":"HS256"}`, `{"aud":["x"],"sub":"alice","role":"rider","exp":`+exp+`}`), ErrClaims},
		{"HS256 under the Ed25519 kid, keyed with its public key", handMade(ed.Public().Key, `{"alg":"HS256","kid":"ed-1"}`, payloadAt("")), ErrMalformed},
		{"HS256 under the Ed25519 kid, keyed with the secret", handMade(keyA, `{"alg":"HS256","kid":"ed-1"}`, payloadAt("")), ErrMalformed},
		{"EdDSA under the HS256 kid", edMade(ed.Key, `{"alg":"EdDSA","kid":"`+hsID+`"}`, payloadAt("")), ErrMalformed},
		{"HS256 without kid, keyed with the public key", handMade(ed.Public().Key, `{"alg":"HS256"}`, payloadAt("")), ErrSignature},
		{"EdDSA without kid", edMade(ed.Key, `{"alg":"EdDSA"}`, payloadAt("")), ErrUnknownKey},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, err := k.Verify(c.token, t0)
			if c.want == nil && err != nil || c.want != nil && !errors.Is(err, c.want) {
				t.Fatalf("Verify: %v, want %v", err, c.want)
			}
		})
	}
	if _, err := New(Config{PublicKeys: []PublicKey{{ID: hsID, Key: ed.Public().Key}}, Secrets: [][]byte{keyA}}); err == nil {
		t.Fatal("an Ed25519 key and a secret under one kid: accepted")
	}
}

// TestEdDSAKeyRotation walks a rotation through its steps: the verifiers
// list the old key; then both; the issuer switches to the new key; then
// the old key is removed. Every token valid at a step verifies at that
// step and at the next, so the switch fails no call; once the old key is
// gone its tokens are refused.
func TestEdDSAKeyRotation(t *testing.T) {
	oldKey, newKey := edKey("2026-01", 1), edKey("2026-03", 2)
	doc, err := MarshalKeySet(oldKey.Public())
	if err != nil {
		t.Fatal(err)
	}
	fromDoc := func(doc []byte) *Keyring {
		t.Helper()
		pubs, err := ParseKeySet(doc)
		if err != nil {
			t.Fatal(err)
		}
		k, err := New(Config{PublicKeys: pubs})
		if err != nil {
			t.Fatal(err)
		}
		return k
	}
	issue := func(key *SigningKey) string {
		t.Helper()
		tok, err := issuerOf(t, key).Issue("cab-1", RoleDriver, time.Hour, t0)
		if err != nil {
			t.Fatal(err)
		}
		return tok
	}
	accepts := func(step string, k *Keyring, toks ...string) {
		t.Helper()
		for i, tok := range toks {
			if _, err := k.Verify(tok, t0); err != nil {
				t.Fatalf("%s: token %d refused: %v", step, i, err)
			}
		}
	}
	before := fromDoc(doc)
	oldTok := issue(oldKey)
	accepts("before", before, oldTok)

	// Step 1: the new public key joins the set; the issuer still signs
	// with the old one.
	if doc, err = AppendKeySet(doc, newKey.Public()); err != nil {
		t.Fatal(err)
	}
	both := fromDoc(doc)
	accepts("both keys listed", both, oldTok)
	// Step 2: the issuer switches; routers still on the old set (a rolling
	// restart in progress) refuse new tokens, so step 1 must be complete
	// everywhere first.
	newTok := issue(newKey)
	accepts("issuer switched", both, oldTok, newTok)
	if _, err := before.Verify(newTok, t0); !errors.Is(err, ErrUnknownKey) {
		t.Fatalf("new token on a router without the new key: %v, want ErrUnknownKey", err)
	}
	// Step 3: after the longest token lifetime, the old key leaves.
	if doc, err = RemoveFromKeySet(doc, oldKey.ID); err != nil {
		t.Fatal(err)
	}
	after := fromDoc(doc)
	accepts("old key removed", after, newTok)
	if _, err := after.Verify(oldTok, t0); !errors.Is(err, ErrUnknownKey) {
		t.Fatalf("old token after its key is gone: %v, want ErrUnknownKey", err)
	}
	if _, err := AppendKeySet(doc, newKey.Public()); err == nil {
		t.Fatal("appending a kid already listed: accepted")
	}
	if _, err := RemoveFromKeySet(doc, newKey.ID); err == nil {
		t.Fatal("removing the last key: accepted")
	}
}

// TestVerifierCannotMint: a keyring of public keys verifies but does not
// sign.
func TestVerifierCannotMint(t *testing.T) {
	k := verifierOf(t, edKey("k1", 1))
	if _, err := k.Issue("ops", RoleAdmin, time.Hour, t0); !errors.Is(err, ErrCannotSign) {
		t.Fatalf("Issue on a verifier: %v, want ErrCannotSign", err)
	}
	if k.CanSign() || k.HasSecrets() || k.SigningKeyID() != "" {
		t.Fatalf("CanSign %v HasSecrets %v SigningKeyID %q", k.CanSign(), k.HasSecrets(), k.SigningKeyID())
	}
}

// TestEdDSARoundTrip: what an EdDSA keyring mints, a verifier of its
// public key returns, to the second, with the token's header and claims
// as documented.
func TestEdDSARoundTrip(t *testing.T) {
	key := edKey("k1", 7)
	iss, router := issuerOf(t, key), verifierOf(t, key)
	for _, role := range Roles {
		c := Claims{Subject: "sub-" + string(role), Role: role, IssuedAt: t0, NotBefore: t0, Expiry: t0.Add(90 * time.Minute)}
		tok, err := iss.Mint(c)
		if err != nil {
			t.Fatal(err)
		}
		got, err := router.Verify(tok, t0.Add(time.Minute))
		if err != nil {
			t.Fatalf("%s: %v", role, err)
		}
		if got.Subject != c.Subject || got.Role != role || !got.IssuedAt.Equal(t0) || !got.NotBefore.Equal(t0) || !got.Expiry.Equal(c.Expiry) || got.KeyID != "k1" {
			t.Fatalf("%s: claims %+v, want %+v", role, got, c)
		}
		h, _ := base64.RawURLEncoding.DecodeString(strings.Split(tok, ".")[0])
		var hdr map[string]string
		if err := json.Unmarshal(h, &hdr); err != nil || hdr["alg"] != "EdDSA" || hdr["kid"] != "k1" || hdr["typ"] != "JWT" {
			t.Fatalf("header %s: %v", h, err)
		}
		if router.byHeader[strings.Split(tok, ".")[0]] == nil {
			t.Fatalf("header %s is not recognised without decoding", h)
		}
	}
}

// TestKeySet: the key set file format (RFC 7517 JWK Set of RFC 8037 OKP
// keys).
func TestKeySet(t *testing.T) {
	a, b := edKey("a", 1), edKey("b", 2)
	doc, err := MarshalKeySet(a.Public(), b.Public())
	if err != nil {
		t.Fatal(err)
	}
	keys, err := ParseKeySet(doc)
	if err != nil {
		t.Fatal(err)
	}
	if len(keys) != 2 || keys[0].ID != "a" || !keys[0].Key.Equal(a.Public().Key) || keys[1].ID != "b" {
		t.Fatalf("parsed %+v", keys)
	}
	x := base64.RawURLEncoding.EncodeToString(a.Public().Key)
	// A set shared with other algorithms: their keys are skipped.
	mixed := `{"keys":[{"kty":"RSA","kid":"r","n":"AQAB","e":"AQAB"},{"kty":"OKP","crv":"X25519","kid":"x","x":"` + x + `"},` +
		`{"kty":"OKP","crv":"Ed25519","kid":"e","use":"enc","x":"` + x + `"},{"kty":"OKP","crv":"Ed25519","kid":"a","x":"` + x + `"}]}`
	if keys, err := ParseKeySet([]byte(mixed)); err != nil || len(keys) != 1 || keys[0].ID != "a" {
		t.Fatalf("mixed set: %+v, %v", keys, err)
	}
	appended, err := AppendKeySet([]byte(mixed), b.Public())
	if err != nil || !strings.Contains(string(appended), `"RSA"`) {
		t.Fatalf("append to a mixed set: %v\n%s", err, appended)
	}
	for name, doc := range map[string]string{
		"not JSON":        `keys`,
		"no keys":         `{"keys":[]}`,
		"only RSA":        `{"keys":[{"kty":"RSA","kid":"r"}]}`,
		"no kid":          `{"keys":[{"kty":"OKP","crv":"Ed25519","x":"` + x + `"}]}`,
		"kid with space":  `{"keys":[{"kty":"OKP","crv":"Ed25519","kid":"a b","x":"` + x + `"}]}`,
		"short x":         `{"keys":[{"kty":"OKP","crv":"Ed25519","kid":"a","x":"AAAA"}]}`,
		"padded x":        `{"keys":[{"kty":"OKP","crv":"Ed25519","kid":"a","x":"` + x + `="}]}`,
		"private part":    `{"keys":[{"kty":"OKP","crv":"Ed25519","kid":"a","x":"` + x + `","d":"` + x + `"}]}`,
		"alg HS256":       `{"keys":[{"kty":"OKP","crv":"Ed25519","kid":"a","alg":"HS256","x":"` + x + `"}]}`,
		"duplicate kid":   `{"keys":[{"kty":"OKP","crv":"Ed25519","kid":"a","x":"` + x + `"},{"kty":"OKP","crv":"Ed25519","kid":"a","x":"` + x + `"}]}`,
		"keys not a list": `{"keys":{}}`,
	} {
		if _, err := ParseKeySet([]byte(doc)); err == nil {
			t.Errorf("%s: parsed", name)
		}
	}
}

// TestSigningKeyPEM: the signing key file round trips; a plain PKCS #8
// file (openssl genpkey -algorithm ed25519) is named by its thumbprint.
func TestSigningKeyPEM(t *testing.T) {
	k, err := GenerateSigningKey("2026-03")
	if err != nil {
		t.Fatal(err)
	}
	text, err := k.MarshalPEM()
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(string(text), "kid: 2026-03\n-----BEGIN PRIVATE KEY-----\n") {
		t.Fatalf("PEM:\n%s", text)
	}
	got, err := ParseSigningKey(text)
	if err != nil || got.ID != k.ID || !got.Key.Equal(k.Key) {
		t.Fatalf("parsed %v, %v", got, err)
	}
	_, plain, _ := bytes.Cut(text, []byte("\n"))
	got, err = ParseSigningKey(plain)
	if err != nil || got.ID != Thumbprint(k.Public().Key) {
		t.Fatalf("without a kid line: %v, %v", got, err)
	}
	if anon, err := GenerateSigningKey(""); err != nil || anon.ID != Thumbprint(anon.Public().Key) {
		t.Fatalf("generated without an id: %v, %v", anon, err)
	}
	for name, text := range map[string]string{
		"empty":       "",
		"certificate": "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n",
		"not PKCS 8":  "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n",
		"bad kid":     "kid: a b\n" + string(plain),
	} {
		if _, err := ParseSigningKey([]byte(text)); err == nil {
			t.Errorf("%s: parsed", name)
		}
	}
}

// TestThumbprintRFC8037: the JWK thumbprint of the RFC 8037 example key
// (appendix A.3).
func TestThumbprintRFC8037(t *testing.T) {
	x, err := base64.RawURLEncoding.DecodeString("11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo")
	if err != nil {
		t.Fatal(err)
	}
	if got := Thumbprint(x); got != "kPrK_qmxVWaYVA9wwBF6Iuo3vVzz7TxHCTwXBygrS4k" {
		t.Fatalf("thumbprint %s", got)
	}
}

// hmacSig is the HS256 signature of signed under key.
func hmacSig(key []byte, signed string) []byte {
	m := hmac.New(sha256.New, key)
	m.Write([]byte(signed))
	return m.Sum(nil)
}

// TestLibraryPinsAlgorithm: with Verify's own header check out of the
// way, the JWT library refuses an HS256 token under an Ed25519 key's
// options (jwt.WithValidMethods) and with its key (an Ed25519 key is not
// an HMAC secret): the pinning does not rest on one check.
func TestLibraryPinsAlgorithm(t *testing.T) {
	key := edKey("k1", 1)
	k := verifierOf(t, key)
	v := k.byID["k1"]
	forged := handMade(key.Public().Key, `{"alg":"HS256","kid":"k1"}`, payloadAt(""))
	opts := append(v.opts, jwt.WithTimeFunc(func() time.Time { return t0 }))
	if _, err := jwt.NewParser(opts...).ParseWithClaims(forged, &tokenClaims{}, v.keyfunc); !errors.Is(err, jwt.ErrTokenSignatureInvalid) {
		t.Fatalf("library with the key's options: %v, want a refused method", err)
	}
	lax := jwt.NewParser(jwt.WithTimeFunc(func() time.Time { return t0 }))
	if _, err := lax.ParseWithClaims(forged, &tokenClaims{}, v.keyfunc); err == nil {
		t.Fatal("library without WithValidMethods accepted an HS256 token under an Ed25519 key")
	}
}

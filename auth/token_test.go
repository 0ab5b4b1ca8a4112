package auth

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"strconv"
	"strings"
	"testing"
	"time"
)

var (
	keyA = bytes.Repeat([]byte("a"), 32)
	keyB = bytes.Repeat([]byte("b"), 48)
	t0   = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
)

func ring(t *testing.T, secrets ...[]byte) *Keyring {
	t.Helper()
	k, err := NewKeyring(secrets...)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func mint(t *testing.T, k *Keyring, c Claims) string {
	t.Helper()
	tok, err := k.Mint(c)
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// handMade signs an arbitrary header and payload with secret, as another
// JWT library (or an attacker who knows the key) would.
func handMade(secret []byte, header, payload string) string {
	enc := base64.RawURLEncoding
	signed := enc.EncodeToString([]byte(header)) + "." + enc.EncodeToString([]byte(payload))
	m := hmac.New(sha256.New, secret)
	m.Write([]byte(signed))
	return signed + "." + enc.EncodeToString(m.Sum(nil))
}

// TestVerifyAcceptsOnlyGoodTokens: each row is an HS256 token and the
// error Verify must answer at t0 (nil: accepted). Claims that do not
// decode are ErrMalformed: the JWT library decodes them before it checks
// the signature.
func TestVerifyAcceptsOnlyGoodTokens(t *testing.T) {
	k := ring(t, keyA)
	good := Claims{Subject: "cab-1", Role: RoleDriver, IssuedAt: t0.Add(-time.Minute), Expiry: t0.Add(time.Hour)}
	valid := mint(t, k, good)
	parts := strings.Split(valid, ".")
	enc := base64.RawURLEncoding
	asAdmin := enc.EncodeToString([]byte(`{"sub":"cab-1","role":"admin","exp":` + strconv.FormatInt(t0.Add(time.Hour).Unix(), 10) + `}`))
	exp := strconv.FormatInt(t0.Add(time.Hour).Unix(), 10)
	cases := []struct {
		name  string
		token string
		want  error
	}{
		{"minted", valid, nil},
		{"expired", mint(t, k, Claims{Subject: "cab-1", Role: RoleDriver, Expiry: t0.Add(-ClockLeeway - time.Second)}), ErrExpired},
		{"expired within the leeway", mint(t, k, Claims{Subject: "cab-1", Role: RoleDriver, Expiry: t0.Add(-time.Second)}), nil},
		{"not yet valid", mint(t, k, Claims{Subject: "cab-1", Role: RoleDriver, NotBefore: t0.Add(time.Hour), Expiry: t0.Add(2 * time.Hour)}), ErrNotYetValid},
		{"signed by another key", mint(t, ring(t, keyB), good), ErrUnknownKey},
		{"payload swapped for an admin role", parts[0] + "." + asAdmin + "." + parts[2], ErrSignature},
		{"signature of another token", parts[0] + "." + parts[1] + "." + strings.Split(mint(t, k, Claims{Subject: "cab-2", Role: RoleDriver, Expiry: t0.Add(time.Hour)}), ".")[2], ErrSignature},
		{"no key id, standard JWT", handMade(keyA, `{"alg":"HS256","typ":"JWT"}`, `{"sub":"alice","role":"rider","exp":`+exp+`}`), nil},
		{"no key id, wrong key", handMade(keyB, `{"alg":"HS256"}`, `{"sub":"alice","role":"rider","exp":`+exp+`}`), ErrSignature},
		{"alg none", enc.EncodeToString([]byte(`{"alg":"none"}`)) + "." + parts[1] + ".", ErrMalformed},
		{"alg HS512", handMade(keyA, `{"alg":"HS512"}`, `{"sub":"alice","role":"rider","exp":`+exp+`}`), ErrMalformed},
		{"alg lower case", handMade(keyA, `{"alg":"hs256"}`, `{"sub":"alice","role":"rider","exp":`+exp+`}`), ErrMalformed},
		{"typ not JWT", handMade(keyA, `{"alg":"HS256","typ":"JWE"}`, `{"sub":"alice","role":"rider","exp":`+exp+`}`), ErrMalformed},
		{"no exp", handMade(keyA, `{"alg":"HS256"}`, `{"sub":"alice","role":"rider"}`), ErrClaims},
		{"no sub", handMade(keyA, `{"alg":"HS256"}`, `{"role":"rider","exp":`+exp+`}`), ErrClaims},
		{"unknown role", handMade(keyA, `{"alg":"HS256"}`, `{"sub":"alice","role":"root","exp":`+exp+`}`), ErrClaims},
		{"role not a string", handMade(keyA, `{"alg":"HS256"}`, `{"sub":"alice","role":1,"exp":`+exp+`}`), ErrMalformed},
		{"exp not an integer", handMade(keyA, `{"alg":"HS256"}`, `{"sub":"alice","role":"rider","exp":"soon"}`), ErrMalformed},
		{"subject too long", handMade(keyA, `{"alg":"HS256"}`, `{"sub":"`+strings.Repeat("x", MaxSubjectBytes+1)+`","role":"rider","exp":`+exp+`}`), ErrClaims},
		{"payload not JSON", handMade(keyA, `{"alg":"HS256"}`, `sub=alice`), ErrMalformed},
		{"header not JSON", handMade(keyA, `HS256`, `{}`), ErrMalformed},
		{"empty", "", ErrMalformed},
		{"two parts", parts[0] + "." + parts[1], ErrMalformed},
		{"four parts", valid + ".x", ErrMalformed},
		{"padded base64", parts[0] + "=." + parts[1] + "." + parts[2], ErrMalformed},
		{"short signature", parts[0] + "." + parts[1] + "." + parts[2][:20], ErrSignature},
		{"too long", strings.Repeat("a", MaxTokenBytes+1), ErrMalformed},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, err := k.Verify(c.token, t0)
			if c.want == nil {
				if err != nil {
					t.Fatalf("Verify: %v, want accepted", err)
				}
				if got.Subject == "" || got.Role == "" || got.Expiry.IsZero() {
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

// TestMintVerifyRoundTrip: what Mint signs, Verify returns, to the second.
func TestMintVerifyRoundTrip(t *testing.T) {
	k := ring(t, keyA)
	for _, role := range Roles {
		c := Claims{Subject: "sub-" + string(role), Role: role, IssuedAt: t0, NotBefore: t0, Expiry: t0.Add(90 * time.Minute)}
		got, err := k.Verify(mint(t, k, c), t0.Add(time.Minute))
		if err != nil {
			t.Fatalf("%s: %v", role, err)
		}
		if got.Subject != c.Subject || got.Role != role || !got.IssuedAt.Equal(t0) || !got.NotBefore.Equal(t0) || !got.Expiry.Equal(c.Expiry) {
			t.Fatalf("%s: claims %+v, want %+v", role, got, c)
		}
	}
}

// TestMintRefusesBadClaims: a token that Verify would refuse is never
// minted.
func TestMintRefusesBadClaims(t *testing.T) {
	k := ring(t, keyA)
	for name, c := range map[string]Claims{
		"no subject":        {Role: RoleRider, Expiry: t0},
		"no role":           {Subject: "a", Expiry: t0},
		"unknown role":      {Subject: "a", Role: "root", Expiry: t0},
		"no expiry":         {Subject: "a", Role: RoleRider},
		"expiry before iat": {Subject: "a", Role: RoleRider, IssuedAt: t0, Expiry: t0.Add(-time.Second)},
		"bad UTF-8":         {Subject: "\xff", Role: RoleRider, Expiry: t0},
	} {
		if _, err := k.Mint(c); err == nil {
			t.Errorf("%s: minted", name)
		}
	}
	if _, err := k.Issue("a", RoleRider, 0, t0); err == nil {
		t.Error("zero ttl: minted")
	}
}

// TestKeyRotation: a keyring signs with its first key and verifies with
// all of them, so tokens of the old key stay valid while it is listed.
func TestKeyRotation(t *testing.T) {
	old := ring(t, keyA)
	rotated := ring(t, keyB, keyA)
	oldTok, err := old.Issue("cab-1", RoleDriver, time.Hour, t0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := rotated.Verify(oldTok, t0); err != nil {
		t.Fatalf("old token on the rotated ring: %v", err)
	}
	newTok, err := rotated.Issue("cab-1", RoleDriver, time.Hour, t0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := old.Verify(newTok, t0); !errors.Is(err, ErrUnknownKey) {
		t.Fatalf("new token on the old ring: %v, want ErrUnknownKey", err)
	}
	if _, err := ring(t, keyB).Verify(oldTok, t0); !errors.Is(err, ErrUnknownKey) {
		t.Fatalf("old token after the old key is gone: %v, want ErrUnknownKey", err)
	}
}

// TestRFC7515Signature: the HS256 example of RFC 7515 (appendix A.1)
// passes the signature check; it is refused only for its claims, which
// carry no subject and no role.
func TestRFC7515Signature(t *testing.T) {
	k, err := base64.RawURLEncoding.DecodeString("AyM1SysPpbyDfgZld3umj1qzKObwVMkoqQ-EstJQLr_T-1qS0gZH75aKtMN3Yj0iPS4hcgUuTwjAzZr1Z9CAow")
	if err != nil {
		t.Fatal(err)
	}
	tok := "eyJ0eXAiOiJKV1QiLA0KICJhbGciOiJIUzI1NiJ9" +
		".eyJpc3MiOiJqb2UiLA0KICJleHAiOjEzMDA4MTkzODAsDQogImh0dHA6Ly9leGFtcGxlLmNvbS9pc19yb290Ijp0cnVlfQ" +
		".dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"
	if _, err := ring(t, k).Verify(tok, time.Unix(1300819000, 0)); !errors.Is(err, ErrClaims) {
		t.Fatalf("Verify: %v, want ErrClaims (a good signature)", err)
	}
}

// TestParseKeys: the key file format.
func TestParseKeys(t *testing.T) {
	std := EncodeKey(keyA)
	url := base64.RawURLEncoding.EncodeToString(append(bytes.Repeat([]byte{0xfb}, 32), 0xff))
	k, err := ParseKeys([]byte("# geomatch keys\n\n" + std + "\n  " + url + "  \n"))
	if err != nil {
		t.Fatal(err)
	}
	if ids := k.KeyIDs(); len(ids) != 2 || ids[0] != SecretKeyID(keyA) || k.SigningKeyID() != SecretKeyID(keyA) {
		t.Fatalf("parsed keys %q, signing %q", ids, k.SigningKeyID())
	}
	for name, text := range map[string]string{
		"empty":      "\n# nothing\n",
		"too short":  EncodeKey([]byte("short")),
		"not base64": "not a key!",
		"too many":   strings.Repeat(std+"\n", maxKeys+1),
	} {
		if _, err := ParseKeys([]byte(text)); err == nil {
			t.Errorf("%s: parsed", name)
		}
	}
}

// TestFromHeader: the authorization metadata value.
func TestFromHeader(t *testing.T) {
	for v, want := range map[string]string{
		"Bearer abc": "abc", "bearer abc": "abc", " BEARER  abc ": "abc",
		"Basic abc": "", "Bearer": "", "Bearer  ": "", "abc": "",
	} {
		got, ok := FromHeader(v)
		if got != want || ok != (want != "") {
			t.Errorf("FromHeader(%q) = %q, %v; want %q", v, got, ok, want)
		}
	}
	md, _ := Bearer{Token: "t"}.GetRequestMetadata(t.Context())
	if md[MetadataKey] != "Bearer t" || !(Bearer{}).RequireTransportSecurity() || (Bearer{Insecure: true}).RequireTransportSecurity() {
		t.Fatalf("Bearer metadata %v", md)
	}
}

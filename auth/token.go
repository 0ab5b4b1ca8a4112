package auth

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"
	"unicode/utf8"
)

// Bounds of tokens and keys.
const (
	// MinKeyBytes is the shortest secret key accepted: 256 bits, the size of
	// the HMAC-SHA256 output.
	MinKeyBytes = 32
	// MaxTokenBytes bounds a token; longer ones are refused before any
	// decoding.
	MaxTokenBytes = 4096
	// MaxSubjectBytes bounds a subject, as the API bounds ids.
	MaxSubjectBytes = 128
	// ClockLeeway is how far the verifier's clock may be behind the
	// minter's: a token is still accepted this long after its expiry, and
	// this long before its not-before time.
	ClockLeeway = 30 * time.Second
	// maxKeys bounds a keyring: a token without a key id is tried against
	// every key.
	maxKeys = 16
)

// Claims are what a token says about its holder.
type Claims struct {
	// Subject is whom the token is for: a driver id (role driver), a rider
	// id (role rider) or an operator's name (role admin).
	Subject string
	// Role is what the holder may do.
	Role Role
	// IssuedAt is when the token was minted (optional on verify).
	IssuedAt time.Time
	// NotBefore, when not zero, is when the token becomes valid.
	NotBefore time.Time
	// Expiry is when the token stops being valid; required.
	Expiry time.Time
}

// validate checks the claims themselves (not the times against a clock).
func (c Claims) validate() error {
	switch {
	case c.Subject == "":
		return errors.New("sub: required")
	case len(c.Subject) > MaxSubjectBytes:
		return fmt.Errorf("sub: %d bytes, at most %d", len(c.Subject), MaxSubjectBytes)
	case !utf8.ValidString(c.Subject):
		return errors.New("sub: not valid UTF-8")
	case c.Expiry.IsZero():
		return errors.New("exp: required")
	}
	if _, err := ParseRole(string(c.Role)); err != nil {
		return fmt.Errorf("role: %w", err)
	}
	return nil
}

// header is the JWT header.
type header struct {
	Alg string `json:"alg"`
	Kid string `json:"kid,omitempty"`
	Typ string `json:"typ,omitempty"`
}

// payload is the JWT claims set: registered claims in seconds since the
// epoch, plus the role.
type payload struct {
	Sub  string `json:"sub"`
	Role string `json:"role"`
	Iat  int64  `json:"iat,omitempty"`
	Nbf  int64  `json:"nbf,omitempty"`
	Exp  int64  `json:"exp"`
}

// key is one secret of a keyring.
type key struct {
	id     string
	secret []byte
	// header is the encoded header Mint writes with this key: a token
	// that starts with it needs no header decoding.
	header string
}

// Keyring signs and verifies tokens. The first key signs; every key
// verifies. A Keyring is immutable and safe for concurrent use.
type Keyring struct {
	keys []key
}

// NewKeyring returns a keyring of the given secrets, the first of which
// signs. Each must be at least MinKeyBytes long.
func NewKeyring(secrets ...[]byte) (*Keyring, error) {
	if len(secrets) == 0 {
		return nil, errors.New("auth keys: none given")
	}
	if len(secrets) > maxKeys {
		return nil, fmt.Errorf("auth keys: %d keys, at most %d", len(secrets), maxKeys)
	}
	k := &Keyring{}
	for i, s := range secrets {
		if len(s) < MinKeyBytes {
			return nil, fmt.Errorf("auth key %d: %d bytes, at least %d (e.g. `openssl rand -base64 32`)", i+1, len(s), MinKeyBytes)
		}
		sum := sha256.Sum256(s)
		id := hex.EncodeToString(sum[:8])
		h, err := json.Marshal(header{Alg: "HS256", Kid: id, Typ: "JWT"})
		if err != nil {
			return nil, fmt.Errorf("auth key %d: %w", i+1, err)
		}
		k.keys = append(k.keys, key{id: id, secret: bytes.Clone(s), header: base64.RawURLEncoding.EncodeToString(h)})
	}
	return k, nil
}

// ParseKeys returns the keyring written in text: one base64-encoded key a
// line (standard or URL alphabet, padded or not), the signing key first;
// blank lines and lines starting with # are skipped.
func ParseKeys(text []byte) (*Keyring, error) {
	var secrets [][]byte
	for i, line := range strings.Split(string(text), "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		s, err := decodeKey(line)
		if err != nil {
			return nil, fmt.Errorf("auth keys: line %d: %w", i+1, err)
		}
		secrets = append(secrets, s)
	}
	return NewKeyring(secrets...)
}

// EncodeKey returns the text form of a secret key, as ParseKeys reads it.
func EncodeKey(secret []byte) string { return base64.StdEncoding.EncodeToString(secret) }

func decodeKey(s string) ([]byte, error) {
	s = strings.TrimRight(s, "=")
	if b, err := base64.RawStdEncoding.DecodeString(s); err == nil {
		return b, nil
	}
	b, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil {
		return nil, errors.New("not base64")
	}
	return b, nil
}

// Issue mints a token for subject in role, valid from now for ttl.
func (k *Keyring) Issue(subject string, role Role, ttl time.Duration, now time.Time) (string, error) {
	if ttl <= 0 {
		return "", fmt.Errorf("mint token: ttl %v must be positive", ttl)
	}
	return k.Mint(Claims{Subject: subject, Role: role, IssuedAt: now, Expiry: now.Add(ttl)})
}

// Mint signs c with the keyring's first key. Times are kept to the second.
func (k *Keyring) Mint(c Claims) (string, error) {
	if err := c.validate(); err != nil {
		return "", fmt.Errorf("mint token: %w", err)
	}
	if !c.IssuedAt.IsZero() && !c.Expiry.After(c.IssuedAt) {
		return "", fmt.Errorf("mint token: exp %v is not after iat %v", c.Expiry, c.IssuedAt)
	}
	sk := k.keys[0]
	p, err := json.Marshal(payload{Sub: c.Subject, Role: string(c.Role), Iat: unix(c.IssuedAt), Nbf: unix(c.NotBefore), Exp: c.Expiry.Unix()})
	if err != nil {
		return "", fmt.Errorf("mint token: %w", err)
	}
	enc := base64.RawURLEncoding
	signed := sk.header + "." + enc.EncodeToString(p)
	return signed + "." + enc.EncodeToString(sign(sk.secret, signed)), nil
}

func unix(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.Unix()
}

func sign(secret []byte, signed string) []byte {
	m := hmac.New(sha256.New, secret)
	m.Write([]byte(signed))
	return m.Sum(nil)
}

// Verify checks token's form, signature and validity at now and returns
// its claims. The error wraps ErrMalformed, ErrUnknownKey, ErrSignature,
// ErrClaims, ErrExpired or ErrNotYetValid.
func (k *Keyring) Verify(token string, now time.Time) (Claims, error) {
	if len(token) > MaxTokenBytes {
		return Claims{}, fmt.Errorf("%w: %d bytes, at most %d", ErrMalformed, len(token), MaxTokenBytes)
	}
	hs, rest, ok := strings.Cut(token, ".")
	ps, ss, ok2 := strings.Cut(rest, ".")
	if !ok || !ok2 || strings.Contains(ss, ".") {
		return Claims{}, fmt.Errorf("%w: want three dot-separated parts", ErrMalformed)
	}
	enc := base64.RawURLEncoding.Strict()
	h, err := k.header(hs)
	if err != nil {
		return Claims{}, err
	}
	sig, err := enc.DecodeString(ss)
	if err != nil || len(sig) != sha256.Size {
		return Claims{}, fmt.Errorf("%w: signature is not a base64url HMAC-SHA256", ErrMalformed)
	}
	signed := token[:len(hs)+1+len(ps)]
	if !k.check(h.Kid, signed, sig) {
		if h.Kid != "" && !k.has(h.Kid) {
			return Claims{}, fmt.Errorf("%w: key id %q", ErrUnknownKey, truncate(h.Kid))
		}
		return Claims{}, ErrSignature
	}
	pb, err := enc.DecodeString(ps)
	if err != nil {
		return Claims{}, fmt.Errorf("%w: claims are not base64url", ErrMalformed)
	}
	var p payload
	if err := json.Unmarshal(pb, &p); err != nil {
		return Claims{}, fmt.Errorf("%w: claims are not a JSON object with string sub and role and integer times", ErrClaims)
	}
	c := Claims{Subject: p.Sub, Role: Role(p.Role), Expiry: time.Unix(p.Exp, 0)}
	if p.Exp == 0 {
		c.Expiry = time.Time{}
	}
	if p.Iat != 0 {
		c.IssuedAt = time.Unix(p.Iat, 0)
	}
	if p.Nbf != 0 {
		c.NotBefore = time.Unix(p.Nbf, 0)
	}
	if err := c.validate(); err != nil {
		return Claims{}, fmt.Errorf("%w: %v", ErrClaims, err)
	}
	if !now.Before(c.Expiry.Add(ClockLeeway)) {
		return Claims{}, fmt.Errorf("%w at %s", ErrExpired, c.Expiry.UTC().Format(time.RFC3339))
	}
	if !c.NotBefore.IsZero() && now.Before(c.NotBefore.Add(-ClockLeeway)) {
		return Claims{}, fmt.Errorf("%w before %s", ErrNotYetValid, c.NotBefore.UTC().Format(time.RFC3339))
	}
	return c, nil
}

// header decodes and checks the header segment hs. The headers Mint
// writes are recognised as they are, without decoding.
func (k *Keyring) header(hs string) (header, error) {
	for _, key := range k.keys {
		if hs == key.header {
			return header{Alg: "HS256", Kid: key.id, Typ: "JWT"}, nil
		}
	}
	hb, err := base64.RawURLEncoding.Strict().DecodeString(hs)
	if err != nil {
		return header{}, fmt.Errorf("%w: header is not base64url", ErrMalformed)
	}
	var h header
	if err := json.Unmarshal(hb, &h); err != nil {
		return header{}, fmt.Errorf("%w: header is not a JSON object", ErrMalformed)
	}
	if h.Alg != "HS256" {
		return header{}, fmt.Errorf("%w: algorithm %q, only HS256 is accepted", ErrMalformed, truncate(h.Alg))
	}
	if h.Typ != "" && !strings.EqualFold(h.Typ, "JWT") {
		return header{}, fmt.Errorf("%w: type %q, want JWT", ErrMalformed, truncate(h.Typ))
	}
	return h, nil
}

// check reports whether sig is the signature of signed by the key kid
// (any key when kid is empty).
func (k *Keyring) check(kid, signed string, sig []byte) bool {
	for _, key := range k.keys {
		if kid != "" && key.id != kid {
			continue
		}
		if hmac.Equal(sign(key.secret, signed), sig) {
			return true
		}
	}
	return false
}

func (k *Keyring) has(kid string) bool {
	for _, key := range k.keys {
		if key.id == kid {
			return true
		}
	}
	return false
}

// truncate shortens an untrusted string for an error message.
func truncate(s string) string {
	if len(s) > 32 {
		s = s[:32] + "…"
	}
	return strings.ToValidUTF8(s, "?")
}

package auth

import (
	"bytes"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/golang-jwt/jwt/v5"
)

// Bounds and defaults of tokens and keys.
const (
	// MinKeyBytes is the shortest HS256 secret key accepted: 256 bits, the
	// size of the HMAC-SHA256 output.
	MinKeyBytes = 32
	// MaxTokenBytes bounds a token; longer ones are refused before any
	// decoding.
	MaxTokenBytes = 4096
	// MaxSubjectBytes bounds a subject, as the API bounds ids.
	MaxSubjectBytes = 128
	// ClockLeeway is the clock skew tolerated between the minter and the
	// verifier: a token is still accepted this long after its expiry, and
	// this long before its not-before time.
	ClockLeeway = 30 * time.Second
	// DefaultIssuer is the "iss" claim tokens carry and verifiers require
	// unless configured otherwise.
	DefaultIssuer = "geomatch"
	// DefaultAudience is the "aud" claim tokens carry and verifiers
	// require unless configured otherwise.
	DefaultAudience = "geomatch"
	// maxKeys bounds the HS256 secrets of a keyring: a token without a key
	// id is tried against every one.
	maxKeys = 16
)

// The algorithms ("alg") a keyring knows.
const (
	algEdDSA = "EdDSA"
	algHS256 = "HS256"
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
	// KeyID is the id of the key that verified the token, set by Verify
	// ("" for an HS256 token without a key id); Mint ignores it and names
	// its own signing key.
	KeyID string
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

// tokenClaims is the JWT claims set: the registered claims and the role.
type tokenClaims struct {
	jwt.RegisteredClaims
	Role string `json:"role"`
}

// header is the part of the JWT header Verify reads before the library
// does, to pick the key.
type header struct {
	Alg string `json:"alg"`
	Kid string `json:"kid,omitempty"`
	Typ string `json:"typ,omitempty"`
	// Crit lists header extensions the verifier must understand (RFC
	// 7515 section 4.1.11); geomatch understands none, so a token that
	// has it is refused.
	Crit json.RawMessage `json:"crit,omitempty"`
}

// verifier is what verifies the tokens of one key id: the key, pinned to
// its one algorithm.
type verifier struct {
	id  string
	alg string
	// keyfunc returns the key material: an ed25519.PublicKey for EdDSA, a
	// []byte secret (or a jwt.VerificationKeySet of them, for tokens
	// without a key id) for HS256.
	keyfunc jwt.Keyfunc
	// opts are the parser options of the key: its algorithm only, and the
	// claims it requires.
	opts []jwt.ParserOption
	// legacy: an HS256 key, whose tokens may predate the iss and aud
	// claims (they are checked when present).
	legacy bool
}

// signer is the key Mint signs with.
type signer struct {
	id     string
	method jwt.SigningMethod
	key    any
}

// Config is what a Keyring is made of.
type Config struct {
	// PublicKeys verify EdDSA (Ed25519) tokens, each the tokens naming its
	// ID in their "kid" header.
	PublicKeys []PublicKey
	// SigningKey, when set, signs EdDSA tokens (Mint, Issue) and verifies
	// them; only an issuer of tokens has one, never a router.
	SigningKey *SigningKey
	// Secrets are HS256 keys, deprecated: whoever verifies with one can
	// also mint tokens, admin tokens included. Without SigningKey the
	// first one signs; every one verifies.
	Secrets [][]byte
	// Issuer is the "iss" claim minted and required; default
	// DefaultIssuer.
	Issuer string
	// Audience is the "aud" claim minted and required; default
	// DefaultAudience.
	Audience string
}

// Keyring signs and verifies tokens. It verifies with every key it holds,
// each key pinned to its own algorithm, and signs with its signing key, if
// it has one. A Keyring is immutable and safe for concurrent use.
type Keyring struct {
	byID map[string]*verifier
	// byHeader holds the verifier of each key under the header segment
	// Mint writes for it ({"alg":...,"kid":...,"typ":"JWT"}): tokens
	// that start with it need no decoding to pick their key.
	byHeader map[string]*verifier
	ids      []string
	// anyHS256 verifies HS256 tokens without a key id against every
	// secret; nil without secrets.
	anyHS256 *verifier
	signer   *signer
	issuer   string
	audience string
}

// New returns the keyring of cfg. It needs at least one key; key ids must
// be unique across all of them.
func New(cfg Config) (*Keyring, error) {
	k := &Keyring{byID: map[string]*verifier{}, byHeader: map[string]*verifier{}, issuer: cfg.Issuer, audience: cfg.Audience}
	if k.issuer == "" {
		k.issuer = DefaultIssuer
	}
	if k.audience == "" {
		k.audience = DefaultAudience
	}
	pubs := cfg.PublicKeys
	if s := cfg.SigningKey; s != nil {
		if len(s.Key) != ed25519.PrivateKeySize {
			return nil, fmt.Errorf("auth keys: signing key %q: %d bytes, want an Ed25519 private key", s.ID, len(s.Key))
		}
		if err := checkKeyID(s.ID); err != nil {
			return nil, fmt.Errorf("auth keys: signing key: %w", err)
		}
		pub := s.Public()
		if i := slices.IndexFunc(pubs, func(p PublicKey) bool { return p.ID == s.ID }); i >= 0 {
			if !pubs[i].Key.Equal(pub.Key) {
				return nil, fmt.Errorf("auth keys: kid %q names one key in the key set and another as the signing key", s.ID)
			}
		} else {
			pubs = append(slices.Clip(pubs), pub)
		}
		k.signer = &signer{id: s.ID, method: jwt.SigningMethodEdDSA, key: s.Key}
	}
	if len(pubs) > MaxPublicKeys {
		return nil, fmt.Errorf("auth keys: %d public keys, at most %d", len(pubs), MaxPublicKeys)
	}
	for _, p := range pubs {
		if err := checkKeyID(p.ID); err != nil {
			return nil, fmt.Errorf("auth keys: %w", err)
		}
		if len(p.Key) != ed25519.PublicKeySize {
			return nil, fmt.Errorf("auth keys: key %q: %d bytes, want an Ed25519 public key (%d)", p.ID, len(p.Key), ed25519.PublicKeySize)
		}
		key := ed25519.PublicKey(bytes.Clone(p.Key))
		if err := k.add(&verifier{id: p.ID, alg: algEdDSA, keyfunc: func(*jwt.Token) (any, error) { return key, nil }}); err != nil {
			return nil, err
		}
	}
	if len(cfg.Secrets) > maxKeys {
		return nil, fmt.Errorf("auth keys: %d HS256 keys, at most %d", len(cfg.Secrets), maxKeys)
	}
	var all jwt.VerificationKeySet
	for i, s := range cfg.Secrets {
		if len(s) < MinKeyBytes {
			return nil, fmt.Errorf("auth key %d: %d bytes, at least %d (e.g. `openssl rand -base64 32`)", i+1, len(s), MinKeyBytes)
		}
		secret := bytes.Clone(s)
		id := SecretKeyID(secret)
		if err := k.add(&verifier{id: id, alg: algHS256, legacy: true, keyfunc: func(*jwt.Token) (any, error) { return secret, nil }}); err != nil {
			return nil, err
		}
		all.Keys = append(all.Keys, secret)
		if i == 0 && k.signer == nil {
			k.signer = &signer{id: id, method: jwt.SigningMethodHS256, key: secret}
		}
	}
	if len(all.Keys) > 0 {
		k.anyHS256 = &verifier{alg: algHS256, legacy: true, keyfunc: func(*jwt.Token) (any, error) { return all, nil }}
		k.anyHS256.opts = k.options(k.anyHS256)
	}
	if len(k.ids) == 0 {
		return nil, errors.New("auth keys: none given")
	}
	return k, nil
}

// add registers v under its key id.
func (k *Keyring) add(v *verifier) error {
	if _, dup := k.byID[v.id]; dup {
		return fmt.Errorf("auth keys: key id %q given twice", v.id)
	}
	v.opts = k.options(v)
	k.byID[v.id] = v
	h, err := json.Marshal(header{Alg: v.alg, Kid: v.id, Typ: "JWT"})
	if err != nil {
		return fmt.Errorf("auth keys: key id %q: %w", v.id, err)
	}
	k.byHeader[base64.RawURLEncoding.EncodeToString(h)] = v
	k.ids = append(k.ids, v.id)
	return nil
}

// options are the parser options of v's tokens: v's algorithm only (so
// that the token's "alg" never chooses how its signature is checked), an
// expiry, the clock leeway, and, except for legacy HS256 tokens, the
// issuer and the audience.
func (k *Keyring) options(v *verifier) []jwt.ParserOption {
	opts := []jwt.ParserOption{
		jwt.WithValidMethods([]string{v.alg}),
		jwt.WithExpirationRequired(),
		jwt.WithLeeway(ClockLeeway),
		jwt.WithStrictDecoding(),
	}
	if !v.legacy {
		opts = append(opts, jwt.WithIssuer(k.issuer), jwt.WithAudience(k.audience))
	}
	return opts
}

// NewKeyring returns a keyring of HS256 secrets (deprecated), the first of
// which signs. Each must be at least MinKeyBytes long.
func NewKeyring(secrets ...[]byte) (*Keyring, error) {
	return New(Config{Secrets: secrets})
}

// SecretKeyID is the key id of an HS256 secret: the first 8 bytes of its
// SHA-256, in hex.
func SecretKeyID(secret []byte) string {
	sum := sha256.Sum256(secret)
	return hex.EncodeToString(sum[:8])
}

// ParseSecrets returns the HS256 secrets written in text: one
// base64-encoded key a line (standard or URL alphabet, padded or not), the
// signing key first; blank lines and lines starting with # are skipped.
func ParseSecrets(text []byte) ([][]byte, error) {
	var secrets [][]byte
	for i, line := range strings.Split(string(text), "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		if strings.HasPrefix(line, "-----BEGIN") || strings.HasPrefix(line, "{") {
			return nil, fmt.Errorf("auth keys: line %d: a PEM block or JSON document, not base64 HS256 keys (an Ed25519 key set goes to --auth-public-keys, a signing key to --signing-key-file)", i+1)
		}
		s, err := decodeKey(line)
		if err != nil {
			return nil, fmt.Errorf("auth keys: line %d: %w", i+1, err)
		}
		secrets = append(secrets, s)
	}
	return secrets, nil
}

// ParseKeys returns the HS256 keyring (deprecated) written in text, in the
// form ParseSecrets reads.
func ParseKeys(text []byte) (*Keyring, error) {
	secrets, err := ParseSecrets(text)
	if err != nil {
		return nil, err
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

// KeyIDs lists the ids of the keys k verifies with.
func (k *Keyring) KeyIDs() []string { return slices.Clone(k.ids) }

// HasSecrets reports whether k verifies HS256 tokens (deprecated): whoever
// holds it can mint tokens too.
func (k *Keyring) HasSecrets() bool { return k.anyHS256 != nil }

// CanSign reports whether k can mint tokens.
func (k *Keyring) CanSign() bool { return k.signer != nil }

// SigningKeyID is the key id of the tokens k mints; "" when it cannot.
func (k *Keyring) SigningKeyID() string {
	if k.signer == nil {
		return ""
	}
	return k.signer.id
}

// Issue mints a token for subject in role, valid from now for ttl.
func (k *Keyring) Issue(subject string, role Role, ttl time.Duration, now time.Time) (string, error) {
	if ttl <= 0 {
		return "", fmt.Errorf("mint token: ttl %v must be positive", ttl)
	}
	return k.Mint(Claims{Subject: subject, Role: role, IssuedAt: now, Expiry: now.Add(ttl)})
}

// Mint signs c with the keyring's signing key: EdDSA with a SigningKey,
// else HS256 with the first secret. The token also carries the keyring's
// issuer and audience, and names its key in the "kid" header. Times are
// kept to the second. The error wraps ErrCannotSign for a keyring of
// public keys only.
func (k *Keyring) Mint(c Claims) (string, error) {
	if k.signer == nil {
		return "", fmt.Errorf("mint token: %w", ErrCannotSign)
	}
	if err := c.validate(); err != nil {
		return "", fmt.Errorf("mint token: %w", err)
	}
	if !c.IssuedAt.IsZero() && !c.Expiry.After(c.IssuedAt) {
		return "", fmt.Errorf("mint token: exp %v is not after iat %v", c.Expiry, c.IssuedAt)
	}
	tc := tokenClaims{
		RegisteredClaims: jwt.RegisteredClaims{
			Issuer:    k.issuer,
			Subject:   c.Subject,
			Audience:  jwt.ClaimStrings{k.audience},
			ExpiresAt: jwt.NewNumericDate(c.Expiry),
			IssuedAt:  numericDate(c.IssuedAt),
			NotBefore: numericDate(c.NotBefore),
		},
		Role: string(c.Role),
	}
	t := jwt.NewWithClaims(k.signer.method, tc)
	t.Header["kid"] = k.signer.id
	tok, err := t.SignedString(k.signer.key)
	if err != nil {
		return "", fmt.Errorf("mint token with key %q: %w", k.signer.id, err)
	}
	return tok, nil
}

func numericDate(t time.Time) *jwt.NumericDate {
	if t.IsZero() {
		return nil
	}
	return jwt.NewNumericDate(t)
}

// Verify checks token's form, signature and validity at now and returns
// its claims. The key is the one the token's "kid" header names, and the
// token's "alg" must be that key's algorithm: EdDSA for an Ed25519 key,
// HS256 for a secret. Only an HS256 token may omit its key id (it is then
// tried against every secret). EdDSA tokens must carry the keyring's
// issuer and audience; HS256 tokens are checked for them when they carry
// them. The error wraps ErrMalformed, ErrUnknownKey, ErrSignature,
// ErrClaims, ErrExpired or ErrNotYetValid.
func (k *Keyring) Verify(token string, now time.Time) (Claims, error) {
	if len(token) > MaxTokenBytes {
		return Claims{}, fmt.Errorf("%w: %d bytes, at most %d", ErrMalformed, len(token), MaxTokenBytes)
	}
	if hs, _, ok := strings.Cut(token, "."); ok {
		if v := k.byHeader[hs]; v != nil {
			return k.verify(token, now, v)
		}
	}
	h, err := peekHeader(token)
	if err != nil {
		return Claims{}, err
	}
	if h.Alg != algEdDSA && h.Alg != algHS256 {
		return Claims{}, fmt.Errorf("%w: algorithm %q, want EdDSA (or HS256, deprecated)", ErrMalformed, truncate(h.Alg))
	}
	v := k.byID[h.Kid]
	switch {
	case h.Kid == "" && h.Alg == algHS256 && k.anyHS256 != nil:
		v = k.anyHS256
	case h.Kid == "":
		return Claims{}, fmt.Errorf("%w: the token names no key (kid)", ErrUnknownKey)
	case v == nil:
		return Claims{}, fmt.Errorf("%w: key id %q", ErrUnknownKey, truncate(h.Kid))
	}
	if h.Alg != v.alg {
		// jwt.WithValidMethods refuses it too; this says why.
		return Claims{}, fmt.Errorf("%w: algorithm %q, key %q verifies %s only", ErrMalformed, truncate(h.Alg), v.id, v.alg)
	}
	return k.verify(token, now, v)
}

// verify checks token with v, the verifier of the key its header names.
func (k *Keyring) verify(token string, now time.Time, v *verifier) (Claims, error) {
	var tc tokenClaims
	opts := append(slices.Clip(v.opts), jwt.WithTimeFunc(func() time.Time { return now }))
	if _, err := jwt.NewParser(opts...).ParseWithClaims(token, &tc, v.keyfunc); err != nil {
		return Claims{}, verifyError(err, &tc)
	}
	if v.legacy {
		if tc.Issuer != "" && tc.Issuer != k.issuer {
			return Claims{}, fmt.Errorf("%w: iss %q, want %q", ErrClaims, truncate(tc.Issuer), k.issuer)
		}
		if len(tc.Audience) > 0 && !slices.Contains(tc.Audience, k.audience) {
			return Claims{}, fmt.Errorf("%w: aud does not include %q", ErrClaims, k.audience)
		}
	}
	c := Claims{Subject: tc.Subject, Role: Role(tc.Role), Expiry: tc.ExpiresAt.Time, KeyID: v.id}
	if tc.IssuedAt != nil {
		c.IssuedAt = tc.IssuedAt.Time
	}
	if tc.NotBefore != nil {
		c.NotBefore = tc.NotBefore.Time
	}
	if err := c.validate(); err != nil {
		return Claims{}, fmt.Errorf("%w: %v", ErrClaims, err)
	}
	return c, nil
}

// peekHeader decodes the header of token, which names the key to verify
// it with. The library decodes it again; both read the same bytes.
func peekHeader(token string) (header, error) {
	hs, rest, ok := strings.Cut(token, ".")
	if !ok || strings.Count(rest, ".") != 1 {
		return header{}, fmt.Errorf("%w: want three dot-separated parts", ErrMalformed)
	}
	hb, err := base64.RawURLEncoding.Strict().DecodeString(hs)
	if err != nil {
		return header{}, fmt.Errorf("%w: header is not base64url", ErrMalformed)
	}
	var h header
	if err := json.Unmarshal(hb, &h); err != nil {
		return header{}, fmt.Errorf("%w: header is not a JSON object with string alg, kid and typ", ErrMalformed)
	}
	if h.Crit != nil {
		return header{}, fmt.Errorf("%w: critical header extensions %s are not understood", ErrMalformed, truncate(string(h.Crit)))
	}
	if h.Typ != "" && !strings.EqualFold(h.Typ, "JWT") {
		return header{}, fmt.Errorf("%w: type %q, want JWT", ErrMalformed, truncate(h.Typ))
	}
	return h, nil
}

// verifyError maps an error of the JWT library to the package's errors;
// tc holds what was decoded of the claims.
func verifyError(err error, tc *tokenClaims) error {
	switch {
	case errors.Is(err, jwt.ErrTokenMalformed):
		return fmt.Errorf("%w: %v", ErrMalformed, err)
	case errors.Is(err, jwt.ErrTokenSignatureInvalid):
		return fmt.Errorf("%w: %v", ErrSignature, err)
	case errors.Is(err, jwt.ErrTokenUnverifiable):
		return fmt.Errorf("%w: %v", ErrMalformed, err)
	case errors.Is(err, jwt.ErrTokenExpired) && tc.ExpiresAt != nil:
		return fmt.Errorf("%w at %s", ErrExpired, tc.ExpiresAt.UTC().Format(time.RFC3339))
	case errors.Is(err, jwt.ErrTokenNotValidYet) && tc.NotBefore != nil:
		return fmt.Errorf("%w before %s", ErrNotYetValid, tc.NotBefore.UTC().Format(time.RFC3339))
	}
	return fmt.Errorf("%w: %v", ErrClaims, err)
}

// truncate shortens an untrusted string for an error message.
func truncate(s string) string {
	if len(s) > 32 {
		s = s[:32] + "…"
	}
	return strings.ToValidUTF8(s, "?")
}

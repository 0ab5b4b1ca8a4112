package auth

import (
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"strings"
)

// Bounds of key ids and key sets.
const (
	// MaxKeyIDBytes bounds a key id (the JWT and JWK "kid").
	MaxKeyIDBytes = 64
	// MaxPublicKeys bounds the public keys of a keyring: a key set lists
	// the current key and the few being rotated in or out.
	MaxPublicKeys = 64
	// maxKeySetBytes bounds a key set document.
	maxKeySetBytes = 1 << 20
)

// PublicKey is an Ed25519 key that verifies EdDSA tokens: routers hold
// these, and nothing that could sign.
type PublicKey struct {
	// ID is the key id tokens signed by the matching private key carry in
	// their "kid" header.
	ID string
	// Key is the public key proper.
	Key ed25519.PublicKey
}

// SigningKey is an Ed25519 private key that signs EdDSA tokens, with the
// id its tokens name. Only the issuer of tokens (geomatch admin token, a
// platform's back end) holds one.
type SigningKey struct {
	// ID is the key id written in the "kid" header of every token signed.
	ID string
	// Key is the private key proper.
	Key ed25519.PrivateKey
}

// Public returns the key that verifies k's tokens.
func (k *SigningKey) Public() PublicKey {
	return PublicKey{ID: k.ID, Key: k.Key.Public().(ed25519.PublicKey)}
}

// GenerateSigningKey returns a new random Ed25519 signing key named id; an
// empty id names the key by its RFC 7638 thumbprint.
func GenerateSigningKey(id string) (*SigningKey, error) {
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("generate Ed25519 key: %w", err)
	}
	if id == "" {
		id = Thumbprint(pub)
	}
	if err := checkKeyID(id); err != nil {
		return nil, err
	}
	return &SigningKey{ID: id, Key: priv}, nil
}

// Thumbprint is the RFC 7638 JWK thumbprint of an Ed25519 public key
// (SHA-256, base64url): a key id derived from the key itself.
func Thumbprint(pub ed25519.PublicKey) string {
	// The required members of an OKP key, in lexicographic order, no
	// white space (RFC 7638 section 3.2, RFC 8037 appendix A.3).
	sum := sha256.Sum256([]byte(`{"crv":"Ed25519","kty":"OKP","x":"` + base64.RawURLEncoding.EncodeToString(pub) + `"}`))
	return base64.RawURLEncoding.EncodeToString(sum[:])
}

// checkKeyID refuses an empty, over-long or unprintable key id.
func checkKeyID(id string) error {
	if id == "" {
		return errors.New("key id: empty")
	}
	if len(id) > MaxKeyIDBytes {
		return fmt.Errorf("key id %q: %d bytes, at most %d", truncate(id), len(id), MaxKeyIDBytes)
	}
	for _, r := range id {
		if r <= ' ' || r > '~' || r == '"' || r == '\\' {
			return fmt.Errorf("key id %q: printable ASCII only, no spaces, quotes or backslashes", truncate(id))
		}
	}
	return nil
}

// pemKeyIDPrefix starts the line before the PEM block of a signing key
// file that names the key.
const pemKeyIDPrefix = "kid:"

// MarshalPEM returns the text form of k: a line "kid: ID", then the key as
// a PKCS #8 "PRIVATE KEY" PEM block. Text before a PEM block is allowed
// (RFC 7468 section 5.2), so tools such as openssl read the file as it is.
func (k *SigningKey) MarshalPEM() ([]byte, error) {
	if err := checkKeyID(k.ID); err != nil {
		return nil, err
	}
	der, err := x509.MarshalPKCS8PrivateKey(k.Key)
	if err != nil {
		return nil, fmt.Errorf("encode signing key %q: %w", k.ID, err)
	}
	var b bytes.Buffer
	fmt.Fprintf(&b, "%s %s\n", pemKeyIDPrefix, k.ID)
	if err := pem.Encode(&b, &pem.Block{Type: "PRIVATE KEY", Bytes: der}); err != nil {
		return nil, fmt.Errorf("encode signing key %q: %w", k.ID, err)
	}
	return b.Bytes(), nil
}

// ParseSigningKey reads a signing key in the form MarshalPEM writes. The
// "kid:" line is optional: without it (a key made by `openssl genpkey
// -algorithm ed25519`, say) the key is named by its thumbprint.
func ParseSigningKey(text []byte) (*SigningKey, error) {
	block, _ := pem.Decode(text)
	if block == nil {
		return nil, errors.New("signing key: no PEM block (want a PKCS #8 Ed25519 PRIVATE KEY, as geomatch admin keygen writes)")
	}
	if block.Type != "PRIVATE KEY" {
		return nil, fmt.Errorf("signing key: PEM block %q, want PRIVATE KEY (PKCS #8 Ed25519)", block.Type)
	}
	key, err := x509.ParsePKCS8PrivateKey(block.Bytes)
	if err != nil {
		return nil, fmt.Errorf("signing key: %w", err)
	}
	priv, ok := key.(ed25519.PrivateKey)
	if !ok {
		return nil, fmt.Errorf("signing key: a %T, want Ed25519", key)
	}
	k := &SigningKey{Key: priv}
	before, _, _ := bytes.Cut(text, []byte("-----BEGIN"))
	for line := range strings.SplitSeq(string(before), "\n") {
		if id, ok := strings.CutPrefix(strings.TrimSpace(line), pemKeyIDPrefix); ok {
			k.ID = strings.TrimSpace(id)
		}
	}
	if k.ID == "" {
		k.ID = Thumbprint(k.Public().Key)
	}
	if err := checkKeyID(k.ID); err != nil {
		return nil, fmt.Errorf("signing key: %w", err)
	}
	return k, nil
}

// jwk is one member of a JSON Web Key Set (RFC 7517) as far as geomatch
// reads it: Ed25519 public keys are "OKP" keys of curve "Ed25519" (RFC
// 8037).
type jwk struct {
	Kty string `json:"kty"`
	Crv string `json:"crv,omitempty"`
	Kid string `json:"kid,omitempty"`
	Use string `json:"use,omitempty"`
	Alg string `json:"alg,omitempty"`
	X   string `json:"x,omitempty"`
	// D is the private part; a key set for verifiers must not carry it.
	D string `json:"d,omitempty"`
}

// keySetDoc is a JSON Web Key Set whose members are kept as they are, so
// that appending a key keeps the others untouched.
type keySetDoc struct {
	Keys []json.RawMessage `json:"keys"`
}

// ParseKeySet reads a JSON Web Key Set (RFC 7517 section 5) and returns its
// Ed25519 public keys, in order. Members that are not signature keys of
// ours (another key type, "use": "enc") are skipped, as RFC 7517 asks; an
// Ed25519 member without a "kid", with an "alg" other than EdDSA, with a
// malformed "x" or with a private part ("d") is an error, as are a
// duplicate kid and a set with no Ed25519 key.
func ParseKeySet(doc []byte) ([]PublicKey, error) {
	if len(doc) > maxKeySetBytes {
		return nil, fmt.Errorf("key set: %d bytes, at most %d", len(doc), maxKeySetBytes)
	}
	var set keySetDoc
	if err := json.Unmarshal(doc, &set); err != nil {
		return nil, fmt.Errorf("key set: not a JSON Web Key Set ({\"keys\": [...]}): %w", err)
	}
	var keys []PublicKey
	seen := map[string]bool{}
	for i, raw := range set.Keys {
		pk, ok, err := parseJWK(raw)
		if err != nil {
			return nil, fmt.Errorf("key set: key %d: %w", i+1, err)
		}
		if !ok {
			continue
		}
		if seen[pk.ID] {
			return nil, fmt.Errorf("key set: key %d: kid %q listed twice", i+1, pk.ID)
		}
		seen[pk.ID] = true
		keys = append(keys, pk)
	}
	if len(keys) == 0 {
		return nil, errors.New(`key set: no Ed25519 key (want {"kty":"OKP","crv":"Ed25519","kid":...,"x":...}; geomatch admin keygen makes one)`)
	}
	if len(keys) > MaxPublicKeys {
		return nil, fmt.Errorf("key set: %d Ed25519 keys, at most %d", len(keys), MaxPublicKeys)
	}
	return keys, nil
}

// parseJWK returns the Ed25519 key of one key set member; false for a
// member that is not one.
func parseJWK(raw json.RawMessage) (PublicKey, bool, error) {
	var k jwk
	if err := json.Unmarshal(raw, &k); err != nil {
		return PublicKey{}, false, fmt.Errorf("not a JSON Web Key: %w", err)
	}
	if k.Kty != "OKP" || k.Crv != "Ed25519" || k.Use == "enc" {
		return PublicKey{}, false, nil
	}
	if k.D != "" {
		return PublicKey{}, false, fmt.Errorf("kid %q holds a private key (\"d\"): a key set for verifiers lists public keys only", truncate(k.Kid))
	}
	if k.Alg != "" && k.Alg != algEdDSA {
		return PublicKey{}, false, fmt.Errorf("kid %q: alg %q, want EdDSA", truncate(k.Kid), truncate(k.Alg))
	}
	if err := checkKeyID(k.Kid); err != nil {
		return PublicKey{}, false, err
	}
	x, err := base64.RawURLEncoding.Strict().DecodeString(k.X)
	if err != nil || len(x) != ed25519.PublicKeySize {
		return PublicKey{}, false, fmt.Errorf("kid %q: x is not a base64url Ed25519 public key (%d bytes)", k.Kid, ed25519.PublicKeySize)
	}
	return PublicKey{ID: k.Kid, Key: ed25519.PublicKey(x)}, true, nil
}

// marshalJWK returns the key set member of k.
func marshalJWK(k PublicKey) (json.RawMessage, error) {
	if err := checkKeyID(k.ID); err != nil {
		return nil, err
	}
	if len(k.Key) != ed25519.PublicKeySize {
		return nil, fmt.Errorf("key %q: %d bytes, want an Ed25519 public key (%d)", k.ID, len(k.Key), ed25519.PublicKeySize)
	}
	b, err := json.Marshal(jwk{Kty: "OKP", Crv: "Ed25519", Kid: k.ID, Use: "sig", Alg: algEdDSA, X: base64.RawURLEncoding.EncodeToString(k.Key)})
	if err != nil {
		return nil, fmt.Errorf("key %q: %w", k.ID, err)
	}
	return b, nil
}

// MarshalKeySet returns the JSON Web Key Set of keys, as ParseKeySet
// reads it.
func MarshalKeySet(keys ...PublicKey) ([]byte, error) {
	return AppendKeySet(nil, keys...)
}

// AppendKeySet returns the key set doc (nil or empty: a new set) with keys
// added at its end; the members already there are kept as they are. A kid
// already listed is an error: rotating means adding a new key id.
func AppendKeySet(doc []byte, keys ...PublicKey) ([]byte, error) {
	var set keySetDoc
	if len(bytes.TrimSpace(doc)) > 0 {
		if _, err := ParseKeySet(doc); err != nil {
			return nil, err
		}
		if err := json.Unmarshal(doc, &set); err != nil {
			return nil, fmt.Errorf("key set: %w", err)
		}
	}
	for _, k := range keys {
		m, err := marshalJWK(k)
		if err != nil {
			return nil, fmt.Errorf("key set: %w", err)
		}
		set.Keys = append(set.Keys, m)
	}
	if set.Keys == nil {
		set.Keys = []json.RawMessage{}
	}
	out, err := json.MarshalIndent(set, "", "  ")
	if err != nil {
		return nil, fmt.Errorf("key set: %w", err)
	}
	out = append(out, '\n')
	if len(keys) > 0 {
		if _, err := ParseKeySet(out); err != nil { // a duplicate kid, too many keys
			return nil, err
		}
	}
	return out, nil
}

// RemoveFromKeySet returns the key set doc without the key id, the other
// members kept as they are: the last step of a rotation, once no token of
// the old key is still valid. Removing the last Ed25519 key is an error.
func RemoveFromKeySet(doc []byte, id string) ([]byte, error) {
	if _, err := ParseKeySet(doc); err != nil {
		return nil, err
	}
	var set keySetDoc
	if err := json.Unmarshal(doc, &set); err != nil {
		return nil, fmt.Errorf("key set: %w", err)
	}
	kept := set.Keys[:0]
	found := false
	for _, raw := range set.Keys {
		if pk, ok, _ := parseJWK(raw); ok && pk.ID == id {
			found = true
			continue
		}
		kept = append(kept, raw)
	}
	if !found {
		return nil, fmt.Errorf("key set: no key %q", truncate(id))
	}
	set.Keys = kept
	out, err := json.MarshalIndent(set, "", "  ")
	if err != nil {
		return nil, fmt.Errorf("key set: %w", err)
	}
	out = append(out, '\n')
	if _, err := ParseKeySet(out); err != nil {
		return nil, fmt.Errorf("remove %q: %w", truncate(id), err)
	}
	return out, nil
}

// Package auth holds the identity of geomatch's public API callers: signed
// bearer tokens that say who the caller is (a subject, such as a driver or
// rider id), in which role (driver, rider or admin), and until when.
//
// # Tokens and algorithms
//
// Tokens are JSON Web Tokens signed and checked with
// github.com/golang-jwt/jwt/v5, so any JWT library can mint them for
// geomatch from a platform's own back end. The claims are "sub", "role",
// "exp" (required), "iat" and "nbf" (optional), "iss" and "aud".
//
// The algorithm is EdDSA (Ed25519, RFC 8037): the issuer of tokens holds
// the private key (a SigningKey); routers hold only public keys, listed in
// a JSON Web Key Set (ParseKeySet), so a router that is broken into cannot
// mint tokens. HS256 (HMAC-SHA256 with a shared secret, the package's
// first algorithm) still verifies, for existing deployments, but is
// deprecated: whoever can verify an HS256 token can mint one, admin tokens
// included. A Keyring may hold both kinds of keys while a deployment moves
// from one to the other.
//
// # Verification
//
// Verify picks the key by the token's "kid" header, and the algorithm is
// the key's, never the token's: each key is pinned to its one algorithm
// (jwt.WithValidMethods), so "alg": "none", and an HS256 token whose HMAC
// key is an Ed25519 public key's bytes (algorithm confusion), are refused.
// A kid the keyring does not hold is refused; only an HS256 token may omit
// its kid (it is then tried against every secret). The token must carry an
// expiry; "iss" and "aud" must be the keyring's (DefaultIssuer and
// DefaultAudience, "geomatch", unless configured otherwise). HS256 tokens
// minted before this package wrote "iss" and "aud" are accepted without
// them, but are checked when they carry them.
//
// Clock skew: the clocks of the issuer and of the verifiers may differ by
// up to ClockLeeway (30 s). A token is accepted until ClockLeeway after its
// "exp" and from ClockLeeway before its "nbf"; keep token lifetimes well
// above it.
//
// # Rotation
//
// Ed25519 keys rotate by key id, without a failed call: (1) add the new
// public key to the key set (AppendKeySet; `geomatch admin keygen` does it)
// and give the set to every router; (2) switch the issuer to the new
// private key; (3) once the longest-lived token of the old key has expired
// (plus ClockLeeway), remove the old key from the set (RemoveFromKeySet).
// Tokens of both keys verify between steps 1 and 3. HS256 keyrings rotate
// the same way: the first secret signs and every one verifies.
//
// The package does no I/O: callers load keys from files or the environment
// (ParseKeySet, ParseSigningKey, ParseSecrets read their text forms) and
// pass the time in. The gRPC side — reading the token from call metadata
// and enforcing roles per method — lives in the router; Bearer puts a
// token on a client's calls.
//
//	signer, _ := auth.ParseSigningKey(pemText)         // issuer side only
//	issuer, _ := auth.New(auth.Config{SigningKey: signer})
//	tok, _ := issuer.Issue("cab-1", auth.RoleDriver, time.Hour, time.Now())
//
//	keys, _ := auth.ParseKeySet(jwksText)              // router side
//	router, _ := auth.New(auth.Config{PublicKeys: keys})
//	claims, err := router.Verify(tok, time.Now()) // claims.Subject == "cab-1"
package auth

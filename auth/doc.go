// Package auth holds the identity of geomatch's public API callers: signed
// bearer tokens that say who the caller is (a subject, such as a driver or
// rider id), in which role (driver, rider or admin), and until when.
//
// Tokens are JSON Web Tokens signed with HMAC-SHA256 (HS256), so any JWT
// library can mint them for geomatch from a platform's own back end. The
// verifier is deliberately narrow: it accepts HS256 only (never "none" or an
// asymmetric algorithm), checks the signature in constant time before it
// looks at the claims, and requires a subject, a known role and an expiry.
//
// A Keyring holds one or more secret keys: the first signs, every one
// verifies, so keys can be rotated by adding the new key first, waiting out
// the longest token lifetime, and removing the old one. Each token names the
// key that signed it (the JWT "kid" header, derived from the key).
//
// The package does no I/O: callers load keys from files or the environment
// (ParseKeys reads their text form) and pass the time in. The gRPC side —
// reading the token from call metadata and enforcing roles per method —
// lives in the router; Bearer puts a token on a client's calls.
//
//	ring, _ := auth.ParseKeys([]byte(os.Getenv("GEOMATCH_AUTH_KEY")))
//	tok, _ := ring.Issue("cab-1", auth.RoleDriver, time.Hour, time.Now())
//	claims, err := ring.Verify(tok, time.Now()) // claims.Subject == "cab-1"
package auth

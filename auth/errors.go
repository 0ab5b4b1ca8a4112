package auth

import "errors"

// Errors of Verify and Mint; the returned error wraps one of them and says
// more.
var (
	// ErrMalformed: the token is not a well-formed JWT of an accepted
	// algorithm (EdDSA, or HS256 while it is deprecated), or its algorithm
	// is not the one of the key it names.
	ErrMalformed = errors.New("malformed token")
	// ErrUnknownKey: the token names a key the keyring does not hold, or
	// no key where it must.
	ErrUnknownKey = errors.New("token signed by an unknown key")
	// ErrSignature: the signature does not match the token's content.
	ErrSignature = errors.New("bad token signature")
	// ErrClaims: the signature is good but a claim is missing or invalid
	// (subject, role, issuer, audience).
	ErrClaims = errors.New("invalid token claims")
	// ErrExpired: the token's expiry has passed.
	ErrExpired = errors.New("token expired")
	// ErrNotYetValid: the token's not-before time is still ahead.
	ErrNotYetValid = errors.New("token not yet valid")
	// ErrCannotSign: Mint on a keyring that holds no signing key (a
	// verifier's keyring of public keys).
	ErrCannotSign = errors.New("no signing key: this keyring only verifies")
)

package auth

import "errors"

// Errors of Verify; the returned error wraps one of them and says more.
var (
	// ErrMalformed: the token is not a well-formed HS256 JWT.
	ErrMalformed = errors.New("malformed token")
	// ErrUnknownKey: the token names a key the keyring does not hold.
	ErrUnknownKey = errors.New("token signed by an unknown key")
	// ErrSignature: the signature does not match the token's content.
	ErrSignature = errors.New("bad token signature")
	// ErrClaims: the signature is good but a claim is missing or invalid.
	ErrClaims = errors.New("invalid token claims")
	// ErrExpired: the token's expiry has passed.
	ErrExpired = errors.New("token expired")
	// ErrNotYetValid: the token's not-before time is still ahead.
	ErrNotYetValid = errors.New("token not yet valid")
)

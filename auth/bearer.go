package auth

import (
	"context"
	"strings"
)

// MetadataKey is the call metadata entry that carries the token, as
// "Bearer <token>".
const MetadataKey = "authorization"

// Bearer puts a token on every call of a gRPC client connection: it
// implements credentials.PerRPCCredentials (use it with
// grpc.WithPerRPCCredentials).
type Bearer struct {
	// Token is the signed token.
	Token string
	// Insecure allows the token on a connection without TLS; only for
	// loopback development setups, where nobody can listen in.
	Insecure bool
}

// GetRequestMetadata implements credentials.PerRPCCredentials.
func (b Bearer) GetRequestMetadata(context.Context, ...string) (map[string]string, error) {
	return map[string]string{MetadataKey: "Bearer " + b.Token}, nil
}

// RequireTransportSecurity implements credentials.PerRPCCredentials.
func (b Bearer) RequireTransportSecurity() bool { return !b.Insecure }

// FromHeader returns the token of an authorization value "Bearer <token>"
// (the scheme in any case), or false.
func FromHeader(v string) (string, bool) {
	scheme, tok, ok := strings.Cut(strings.TrimSpace(v), " ")
	if !ok || !strings.EqualFold(scheme, "bearer") {
		return "", false
	}
	tok = strings.TrimSpace(tok)
	return tok, tok != ""
}

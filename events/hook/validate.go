package hook

import (
	"fmt"
	"net/textproto"
	"strings"

	"github.com/geomatch/geomatch/internal/validate"
	geomatchv1 "github.com/geomatch/geomatch/proto/geomatch/v1"
)

// Bounds of a hook definition, checked by Validate. They keep one hook's
// filter cheap to evaluate per event and its definition small in the store.
const (
	// MaxHookIDBytes bounds hook_id (as every id of the public API).
	MaxHookIDBytes = validate.MaxIDBytes
	// MaxFilterValues bounds sets and fence_ids, each.
	MaxFilterValues = 100
	// MaxKinds bounds kinds (there are three kinds; repeats are allowed
	// but pointless).
	MaxKinds = 8
	// MaxHeaders bounds the extra headers of a webhook.
	MaxHeaders = 64
	// MaxHeaderNameBytes and MaxHeaderValueBytes bound one extra header.
	MaxHeaderNameBytes  = 128
	MaxHeaderValueBytes = 4096
	// MaxSecretBytes bounds a webhook's HMAC key.
	MaxSecretBytes = 256
)

// Validate checks a hook definition as PutHook receives it. Each error
// starts with the field's name ("hook_id: ...", "endpoint: ...",
// "headers[\"X-A\"]: ..."), for the gRPC layer to return as
// InvalidArgument. The rules:
//
//   - hook_id: 1..128 bytes of ASCII letters, digits and "-_.:/@";
//   - endpoint: as ParseEndpoint;
//   - sets, fence_ids: at most 100 each, every value an id (1..128 bytes of
//     UTF-8);
//   - kinds: at most 8, each a known EventKind (UNSPECIFIED means every
//     kind);
//   - headers: webhooks only; at most 64; names are HTTP tokens of at most
//     128 bytes and not ones the sink sets itself (Content-Type,
//     Content-Length, Host, Connection, Transfer-Encoding, X-Geomatch-*);
//     values at most 4096 bytes without control characters;
//   - secret: at most 256 bytes; webhooks only (other sinks sign nothing).
//
// stats is ignored: the service sets it.
func Validate(h *geomatchv1.Hook) error {
	if h == nil {
		return fmt.Errorf("hook: required")
	}
	if err := validateID(h.GetHookId()); err != nil {
		return err
	}
	ep, err := ParseEndpoint(h.GetEndpoint())
	if err != nil {
		return err
	}
	if err := validateIDs("sets", h.GetSets()); err != nil {
		return err
	}
	if err := validateIDs("fence_ids", h.GetFenceIds()); err != nil {
		return err
	}
	if n := len(h.GetKinds()); n > MaxKinds {
		return fmt.Errorf("kinds: %d values, at most %d", n, MaxKinds)
	}
	for i, k := range h.GetKinds() {
		if _, ok := geomatchv1.EventKind_name[int32(k)]; !ok {
			return fmt.Errorf("kinds[%d]: unknown kind %d", i, k)
		}
	}
	webhook := ep.Scheme == SchemeHTTP || ep.Scheme == SchemeHTTPS
	if len(h.GetHeaders()) > 0 && !webhook {
		return fmt.Errorf("headers: only webhooks (http, https) send headers, not %s", ep.Scheme)
	}
	if n := len(h.GetHeaders()); n > MaxHeaders {
		return fmt.Errorf("headers: %d headers, at most %d", n, MaxHeaders)
	}
	for name, value := range h.GetHeaders() {
		if err := validateHeader(name, value); err != nil {
			return fmt.Errorf("headers[%q]: %w", truncate(name, 64), err)
		}
	}
	if len(h.GetSecret()) > MaxSecretBytes {
		return fmt.Errorf("secret: %d bytes, at most %d", len(h.GetSecret()), MaxSecretBytes)
	}
	if h.GetSecret() != "" && !webhook {
		return fmt.Errorf("secret: only webhooks (http, https) are signed, not %s", ep.Scheme)
	}
	return nil
}

// validateID checks a hook id.
func validateID(id string) error {
	if err := validate.Name(id); err != nil {
		return fmt.Errorf("hook_id: %w", err)
	}
	return nil
}

// validateIDs checks a filter list.
func validateIDs(field string, ids []string) error {
	if len(ids) > MaxFilterValues {
		return fmt.Errorf("%s: %d values, at most %d", field, len(ids), MaxFilterValues)
	}
	for i, id := range ids {
		if err := validate.Name(id); err != nil {
			return fmt.Errorf("%s[%d]: %w", field, i, err)
		}
	}
	return nil
}

// reservedHeaders are set by the webhook sink or by net/http.
var reservedHeaders = map[string]bool{
	"Content-Type":      true,
	"Content-Length":    true,
	"Host":              true,
	"Connection":        true,
	"Transfer-Encoding": true,
}

// validateHeader checks one extra webhook header.
func validateHeader(name, value string) error {
	if name == "" {
		return fmt.Errorf("empty name")
	}
	if len(name) > MaxHeaderNameBytes {
		return fmt.Errorf("name of %d bytes, at most %d", len(name), MaxHeaderNameBytes)
	}
	for i := 0; i < len(name); i++ {
		if !isTokenByte(name[i]) {
			return fmt.Errorf("name has %q, not allowed in an HTTP header name", name[i])
		}
	}
	canon := textproto.CanonicalMIMEHeaderKey(name)
	if reservedHeaders[canon] || strings.HasPrefix(canon, "X-Geomatch-") {
		return fmt.Errorf("reserved: the webhook sets %s itself", canon)
	}
	if len(value) > MaxHeaderValueBytes {
		return fmt.Errorf("value of %d bytes, at most %d", len(value), MaxHeaderValueBytes)
	}
	for i := 0; i < len(value); i++ {
		if c := value[i]; c < ' ' && c != '\t' || c == 0x7f {
			return fmt.Errorf("value has control byte %q", c)
		}
	}
	return nil
}

// isTokenByte reports whether c may appear in an HTTP token (RFC 9110).
func isTokenByte(c byte) bool {
	return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' ||
		strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0
}

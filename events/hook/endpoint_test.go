package hook

import (
	"errors"
	"strings"
	"testing"

	geomatchv1 "github.com/geomatch/geomatch/proto/geomatch/v1"
)

func TestParseEndpoint(t *testing.T) {
	tests := []struct {
		in      string
		want    Endpoint
		wantErr string // substring; "" for success
	}{
		{in: "http://example.com/hook", want: Endpoint{Scheme: SchemeHTTP, URL: "http://example.com/hook"}},
		{in: "https://example.com:8443/a?b=c", want: Endpoint{Scheme: SchemeHTTPS, URL: "https://example.com:8443/a?b=c"}},
		{in: "nats://127.0.0.1:4222/geomatch.events", want: Endpoint{Scheme: SchemeNATS, Addr: "127.0.0.1:4222", Target: "geomatch.events"}},
		{in: "nats://nats.local/a.b", want: Endpoint{Scheme: SchemeNATS, Addr: "nats.local:4222", Target: "a.b"}},
		{in: "nats://u:p@h:1/s", want: Endpoint{Scheme: SchemeNATS, Addr: "h:1", User: "u", Password: "p", Target: "s"}},
		{in: "redis://127.0.0.1:6379/events", want: Endpoint{Scheme: SchemeRedis, Addr: "127.0.0.1:6379", Target: "events"}},
		{in: "redis://[::1]/geo:events/x", want: Endpoint{Scheme: SchemeRedis, Addr: "[::1]:6379", Target: "geo:events/x"}},

		{in: "", wantErr: "endpoint: required"},
		{in: "ftp://example.com/x", wantErr: `endpoint: unknown scheme "ftp" (want http, https, nats or redis)`},
		{in: "example.com/hook", wantErr: "endpoint: \"example.com/hook\" has no scheme"},
		{in: "http:///path", wantErr: "endpoint: no host"},
		{in: "http://host:99999/", wantErr: "endpoint: bad port"},
		{in: "http://u:p@host/", wantErr: "endpoint: credentials in a webhook URL"},
		{in: "http://host/%zz", wantErr: "endpoint: malformed"},
		{in: "nats://host:4222", wantErr: "endpoint: no subject"},
		{in: "nats://host:4222/a.*.c", wantErr: "wildcard"},
		{in: "nats://host:4222/a..c", wantErr: "empty token"},
		{in: "nats://host:4222/a b", wantErr: "space"},
		{in: "nats://host:/a", wantErr: "empty port"},
		{in: "nats://:4222/a", wantErr: "no host"},
		{in: "redis://host:6379/", wantErr: "endpoint: no stream"},
		{in: "redis://host:6379/s?x=1", wantErr: "no query"},
		{in: "http://h/" + strings.Repeat("a", MaxEndpointBytes), wantErr: "at most 2048"},
	}
	for _, tt := range tests {
		got, err := ParseEndpoint(tt.in)
		if tt.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("ParseEndpoint(%.40q) = %v, want error containing %q", tt.in, err, tt.wantErr)
			}
			continue
		}
		if err != nil || got != tt.want {
			t.Errorf("ParseEndpoint(%q) = %+v, %v; want %+v", tt.in, got, err, tt.want)
		}
	}
}

func TestEndpointStringHidesPassword(t *testing.T) {
	ep, err := ParseEndpoint("redis://user:secret@h:1/s")
	if err != nil {
		t.Fatal(err)
	}
	if s := ep.String(); strings.Contains(s, "secret") {
		t.Fatalf("String() = %q shows the password", s)
	}
}

func TestValidate(t *testing.T) {
	ok := func() *geomatchv1.Hook {
		return &geomatchv1.Hook{HookId: "h-1", Endpoint: "https://example.com/x", Sets: []string{"city"}, Headers: map[string]string{"Authorization": "Bearer x"}}
	}
	many := func(n int) []string {
		s := make([]string, n)
		for i := range s {
			s[i] = "v"
		}
		return s
	}
	manyHeaders := map[string]string{}
	for i := range MaxHeaders + 1 {
		manyHeaders["X-H"+strings.Repeat("a", i)] = "v"
	}
	tests := []struct {
		name    string
		edit    func(h *geomatchv1.Hook)
		wantErr string
	}{
		{"valid", func(*geomatchv1.Hook) {}, ""},
		{"id with every allowed byte", func(h *geomatchv1.Hook) { h.HookId = "aZ09-_.:/@" }, ""},
		{"nats with no headers", func(h *geomatchv1.Hook) { h.Endpoint = "nats://h:1/s"; h.Headers = nil }, ""},
		{"empty id", func(h *geomatchv1.Hook) { h.HookId = "" }, "hook_id: required"},
		{"long id", func(h *geomatchv1.Hook) { h.HookId = strings.Repeat("a", 129) }, "hook_id: 129 bytes, at most 128"},
		{"bad id byte", func(h *geomatchv1.Hook) { h.HookId = "a b" }, "hook_id: \"a b\" has ' '"},
		{"unknown scheme", func(h *geomatchv1.Hook) { h.Endpoint = "ftp://x/y" }, `endpoint: unknown scheme "ftp"`},
		{"too many sets", func(h *geomatchv1.Hook) { h.Sets = many(MaxFilterValues + 1) }, "sets: 101 values, at most 100"},
		{"empty fence id", func(h *geomatchv1.Hook) { h.FenceIds = []string{"a", ""} }, "fence_ids[1]: required"},
		{"unknown kind", func(h *geomatchv1.Hook) { h.Kinds = []geomatchv1.EventKind{1, 9} }, "kinds[1]: unknown kind 9"},
		{"too many headers", func(h *geomatchv1.Hook) { h.Headers = manyHeaders }, "headers: 65 headers, at most 64"},
		{"reserved header", func(h *geomatchv1.Hook) { h.Headers = map[string]string{"x-geomatch-signature": "x"} }, "reserved"},
		{"bad header name", func(h *geomatchv1.Hook) { h.Headers = map[string]string{"a b": "x"} }, `headers["a b"]: name has ' '`},
		{"header value newline", func(h *geomatchv1.Hook) { h.Headers = map[string]string{"X-A": "a\nb"} }, "control byte"},
		{"headers on nats", func(h *geomatchv1.Hook) { h.Endpoint = "nats://h:1/s" }, "headers: only webhooks"},
		{"secret on redis", func(h *geomatchv1.Hook) { h.Endpoint = "redis://h/s"; h.Headers = nil; h.Secret = "x" }, "secret: only webhooks"},
		{"long secret", func(h *geomatchv1.Hook) { h.Secret = strings.Repeat("s", MaxSecretBytes+1) }, "secret: 257 bytes"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := ok()
			tt.edit(h)
			err := Validate(h)
			if tt.wantErr == "" {
				if err != nil {
					t.Fatalf("Validate = %v, want nil", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("Validate = %v, want error containing %q", err, tt.wantErr)
			}
		})
	}
}

func TestPutRejectsInvalidWithErrInvalid(t *testing.T) {
	m := newTestManager(t, NewMemoryStore(0), newTestLog(t), Config{})
	_, err := m.Put(t.Context(), &geomatchv1.Hook{HookId: "x", Endpoint: "ftp://h/x"})
	if !errors.Is(err, ErrInvalid) || !strings.HasPrefix(err.Error(), "endpoint: unknown scheme") {
		t.Fatalf("Put = %v, want ErrInvalid naming the endpoint", err)
	}
	if err := m.Delete(t.Context(), "bad id"); !errors.Is(err, ErrInvalid) {
		t.Fatalf("Delete(bad id) = %v, want ErrInvalid", err)
	}
	if err := m.Delete(t.Context(), "absent"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("Delete(absent) = %v, want ErrNotFound", err)
	}
}

func FuzzParseEndpoint(f *testing.F) {
	for _, s := range []string{"http://a/b", "nats://h:1/a.b", "redis://u:p@h/s", "ftp://x", "nats://h/a..b", "%"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		ep, err := ParseEndpoint(s)
		if err != nil {
			if !strings.HasPrefix(err.Error(), "endpoint: ") {
				t.Fatalf("error %q does not name the field", err)
			}
			return
		}
		if ep.Scheme == SchemeNATS || ep.Scheme == SchemeRedis {
			if ep.Target == "" || ep.Addr == "" {
				t.Fatalf("accepted %q without a target or address: %+v", s, ep)
			}
		}
	})
}

package hook

import (
	"fmt"
	"net"
	"net/url"
	"strconv"
	"strings"
)

// Scheme is the kind of sink an endpoint names.
type Scheme string

// The endpoint schemes a hook may use.
const (
	SchemeHTTP  Scheme = "http"
	SchemeHTTPS Scheme = "https"
	SchemeNATS  Scheme = "nats"
	SchemeRedis Scheme = "redis"
)

// Default ports of the schemes whose endpoints may leave the port out.
const (
	defaultNATSPort  = "4222"
	defaultRedisPort = "6379"
)

// MaxEndpointBytes bounds a hook's endpoint string.
const MaxEndpointBytes = 2048

// maxTargetBytes bounds a NATS subject or a Redis stream key.
const maxTargetBytes = 256

// Endpoint is a parsed hook endpoint.
type Endpoint struct {
	// Scheme selects the sink.
	Scheme Scheme
	// URL is the whole endpoint for http and https: where the webhook
	// POSTs.
	URL string
	// Addr is host:port of the NATS or Redis server (the scheme's default
	// port when the endpoint leaves it out).
	Addr string
	// User and Password are the endpoint's credentials
	// (nats://user:pass@host:port/subject, redis://user:pass@host/stream),
	// empty when it has none.
	User, Password string
	// Target is the NATS subject or the Redis stream key.
	Target string
}

// String returns the endpoint without its password, for logs.
func (e Endpoint) String() string {
	if e.Scheme == SchemeHTTP || e.Scheme == SchemeHTTPS {
		u, err := url.Parse(e.URL)
		if err != nil {
			return string(e.Scheme) + "://?"
		}
		return u.Redacted()
	}
	user := ""
	if e.User != "" || e.Password != "" {
		user = e.User + ":xxxxx@"
	}
	return string(e.Scheme) + "://" + user + e.Addr + "/" + e.Target
}

// ParseEndpoint parses a hook endpoint:
//
//	http://host[:port]/path, https://host[:port]/path   webhook
//	nats://[user:pass@]host[:port]/subject               JetStream
//	redis://[user:pass@]host[:port]/stream               Redis stream
//
// A NATS subject is dot-separated tokens without wildcards or spaces; a
// Redis stream is any non-empty key of at most 256 bytes (its slashes
// kept). Errors start with "endpoint: ".
func ParseEndpoint(s string) (Endpoint, error) {
	ep, err := parseEndpoint(s)
	if err != nil {
		return Endpoint{}, fmt.Errorf("endpoint: %w", err)
	}
	return ep, nil
}

func parseEndpoint(s string) (Endpoint, error) {
	switch {
	case s == "":
		return Endpoint{}, fmt.Errorf("required")
	case len(s) > MaxEndpointBytes:
		return Endpoint{}, fmt.Errorf("%d bytes, at most %d", len(s), MaxEndpointBytes)
	}
	scheme, _, ok := strings.Cut(s, "://")
	if !ok {
		return Endpoint{}, fmt.Errorf("%q has no scheme (want http://, https://, nats:// or redis://)", truncate(s, 64))
	}
	u, err := url.Parse(s)
	if err != nil {
		return Endpoint{}, fmt.Errorf("malformed: %v", unwrapURLError(err))
	}
	switch Scheme(strings.ToLower(scheme)) {
	case SchemeHTTP, SchemeHTTPS:
		return parseHTTP(u)
	case SchemeNATS:
		return parseServer(u, SchemeNATS, defaultNATSPort, checkSubject)
	case SchemeRedis:
		return parseServer(u, SchemeRedis, defaultRedisPort, checkStream)
	default:
		return Endpoint{}, fmt.Errorf("unknown scheme %q (want http, https, nats or redis)", truncate(scheme, 32))
	}
}

func parseHTTP(u *url.URL) (Endpoint, error) {
	if u.Host == "" || u.Hostname() == "" {
		return Endpoint{}, fmt.Errorf("no host in %q", u.Redacted())
	}
	if err := checkPort(u.Port(), u.Host); err != nil {
		return Endpoint{}, err
	}
	if u.User != nil {
		return Endpoint{}, fmt.Errorf("credentials in a webhook URL are not supported: use headers")
	}
	if u.Fragment != "" {
		return Endpoint{}, fmt.Errorf("a webhook URL has no fragment")
	}
	return Endpoint{Scheme: Scheme(strings.ToLower(u.Scheme)), URL: u.String()}, nil
}

func parseServer(u *url.URL, scheme Scheme, defPort string, checkTarget func(string) error) (Endpoint, error) {
	host := u.Hostname()
	if host == "" {
		return Endpoint{}, fmt.Errorf("no host in the %s endpoint", scheme)
	}
	port := u.Port()
	if port == "" {
		if strings.HasSuffix(u.Host, ":") {
			return Endpoint{}, fmt.Errorf("empty port in %q", u.Host)
		}
		port = defPort
	}
	if err := checkPort(port, u.Host); err != nil {
		return Endpoint{}, err
	}
	if u.RawQuery != "" || u.Fragment != "" {
		return Endpoint{}, fmt.Errorf("%s endpoints take no query or fragment", scheme)
	}
	target := strings.TrimPrefix(u.Path, "/")
	if target == "" {
		what := "subject"
		if scheme == SchemeRedis {
			what = "stream"
		}
		return Endpoint{}, fmt.Errorf("no %s: want %s://host:port/%s", what, scheme, what)
	}
	if err := checkTarget(target); err != nil {
		return Endpoint{}, err
	}
	ep := Endpoint{Scheme: scheme, Addr: net.JoinHostPort(host, port), Target: target}
	if u.User != nil {
		ep.User = u.User.Username()
		ep.Password, _ = u.User.Password()
	}
	return ep, nil
}

func checkPort(port, host string) error {
	if port == "" {
		return nil
	}
	n, err := strconv.Atoi(port)
	if err != nil || n < 1 || n > 65535 {
		return fmt.Errorf("bad port in %q", host)
	}
	return nil
}

// checkSubject accepts a NATS subject a publisher may use: dot-separated
// non-empty tokens of printable ASCII without wildcards.
func checkSubject(s string) error {
	if len(s) > maxTargetBytes {
		return fmt.Errorf("subject: %d bytes, at most %d", len(s), maxTargetBytes)
	}
	for tok := range strings.SplitSeq(s, ".") {
		if tok == "" {
			return fmt.Errorf("subject %q has an empty token", s)
		}
		if tok == "*" || tok == ">" {
			return fmt.Errorf("subject %q has a wildcard: a hook publishes to one subject", s)
		}
		for i := 0; i < len(tok); i++ {
			if c := tok[i]; c <= ' ' || c >= 0x7f {
				return fmt.Errorf("subject %q has a space, control or non-ASCII byte", s)
			}
		}
	}
	return nil
}

// checkStream accepts a Redis stream key: any bytes but control bytes, at
// most maxTargetBytes.
func checkStream(s string) error {
	if len(s) > maxTargetBytes {
		return fmt.Errorf("stream: %d bytes, at most %d", len(s), maxTargetBytes)
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < ' ' || c == 0x7f {
			return fmt.Errorf("stream %q has a control byte", s)
		}
	}
	return nil
}

// unwrapURLError drops url.Error's "parse <url>:" prefix, which would
// repeat the endpoint (and could echo a password).
func unwrapURLError(err error) error {
	if ue, ok := err.(*url.Error); ok {
		return ue.Err
	}
	return err
}

// truncate shortens s for an error message.
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}

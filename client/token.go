package client

import (
	"context"
	"fmt"
	"os"
	"strings"
	"sync"
	"time"
)

// tokenRecheck is how often a token file is checked for changes.
const tokenRecheck = time.Second

// bearer puts a bearer token on every call (credentials.PerRPCCredentials),
// from a fixed string or from a file read again when it changes.
type bearer struct {
	static   string
	path     string
	insecure bool // plaintext allowed (loopback only; Dial checked)

	mu      sync.Mutex
	token   string
	modTime time.Time
	size    int64
	checked time.Time
}

func newBearer(token, path string, insecure bool) *bearer {
	return &bearer{static: token, path: path, insecure: insecure}
}

// GetRequestMetadata implements credentials.PerRPCCredentials.
func (b *bearer) GetRequestMetadata(context.Context, ...string) (map[string]string, error) {
	tok, err := b.current(time.Now())
	if err != nil {
		return nil, err
	}
	return map[string]string{"authorization": "Bearer " + tok}, nil
}

// RequireTransportSecurity implements credentials.PerRPCCredentials.
func (b *bearer) RequireTransportSecurity() bool { return !b.insecure }

// current returns the token: the static one, or the file's, read again
// when its size or modification time changed (checked at most once per
// tokenRecheck).
func (b *bearer) current(now time.Time) (string, error) {
	if b.path == "" {
		return b.static, nil
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.token != "" && now.Sub(b.checked) < tokenRecheck {
		return b.token, nil
	}
	b.checked = now
	fi, err := os.Stat(b.path)
	if err != nil {
		if b.token != "" {
			return b.token, nil // keep the last good token through a rotation
		}
		return "", fmt.Errorf("token file: %w", err)
	}
	if b.token != "" && fi.ModTime().Equal(b.modTime) && fi.Size() == b.size {
		return b.token, nil
	}
	raw, err := os.ReadFile(b.path)
	if err != nil {
		if b.token != "" {
			return b.token, nil
		}
		return "", fmt.Errorf("token file: %w", err)
	}
	tok := strings.TrimSpace(string(raw))
	if tok == "" {
		if b.token != "" {
			return b.token, nil // a file being rewritten
		}
		return "", fmt.Errorf("token file %s: empty", b.path)
	}
	b.token, b.modTime, b.size = tok, fi.ModTime(), fi.Size()
	return tok, nil
}

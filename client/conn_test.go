package client

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestDialRefusesPlaintextOffLoopback: plaintext (and so a token in the
// clear) is for loopback development clusters only; no security at all
// is refused with a hint.
func TestDialRefusesPlaintextOffLoopback(t *testing.T) {
	for _, tc := range []struct {
		addr string
		opts []Option
		ok   bool
	}{
		{"127.0.0.1:7070", []Option{Insecure()}, true},
		{"localhost:7070", []Option{Insecure(), WithToken("t")}, true},
		{"[::1]:7070", []Option{Insecure()}, true},
		{"10.0.0.8:7070", []Option{Insecure()}, false},
		{"router.example.com:7070", []Option{Insecure()}, false},
		{"127.0.0.1:7070", nil, false},
		{"router.example.com:7070", []Option{WithSystemRoots(), WithToken("t")}, true},
		{"", []Option{Insecure()}, false},
	} {
		c, err := Dial(tc.addr, tc.opts...)
		if (err == nil) != tc.ok {
			t.Errorf("Dial(%q): %v, want ok=%v", tc.addr, err, tc.ok)
		}
		if c != nil {
			c.Close()
		}
	}
	if _, err := Dial("127.0.0.1:1", WithCAFile(filepath.Join(t.TempDir(), "missing.pem"))); err == nil || !strings.Contains(err.Error(), "CA file") {
		t.Errorf("missing CA file: %v", err)
	}
}

// TestTokenFileReload: a token file is read on first use and again once
// it changes; a file emptied or removed mid-rotation keeps the last good
// token.
func TestTokenFileReload(t *testing.T) {
	path := filepath.Join(t.TempDir(), "token")
	if err := os.WriteFile(path, []byte("one\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	b := newBearer("", path, false)
	now := time.Now()
	if got, _ := b.current(now); got != "one" {
		t.Fatalf("token %q, want one", got)
	}
	if err := os.WriteFile(path, []byte("second"), 0o600); err != nil {
		t.Fatal(err)
	}
	if got, _ := b.current(now.Add(tokenRecheck / 2)); got != "one" {
		t.Fatalf("token %q before the recheck, want the cached one", got)
	}
	if got, _ := b.current(now.Add(2 * tokenRecheck)); got != "second" {
		t.Fatalf("token %q after the change, want second", got)
	}
	if err := os.WriteFile(path, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if got, _ := b.current(now.Add(4 * tokenRecheck)); got != "second" {
		t.Fatalf("token %q from an emptied file, want the last good one", got)
	}
	md, err := b.GetRequestMetadata(context.Background())
	if err != nil || md["authorization"] != "Bearer second" {
		t.Fatalf("metadata %v, %v; want the bearer token", md, err)
	}
	if _, err := newBearer("", filepath.Join(t.TempDir(), "none"), false).current(now); err == nil {
		t.Fatal("a missing token file with no token yet gave no error")
	}
}

package main

import (
	"github.com/geomatch/geomatch/internal/servertest"

	"context"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/geomatch/geomatch/internal/tlsconfig"
)

// TestRedisTLS: with --redis-ca, --redis-cert and --redis-key the store
// talks TLS to a redis-server that requires client certificates; without
// them, it fails with a reason instead of hanging.
func TestRedisTLS(t *testing.T) {
	path, err := exec.LookPath("redis-server")
	if err != nil {
		servertest.Missing(t, "redis-server not installed: apt-get install redis-server")
	}
	pki, err := tlsconfig.Generate(t.TempDir(), tlsconfig.DevHosts, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	addr := freeAddr(t, "127.0.0.1")
	port := addr[strings.LastIndexByte(addr, ':')+1:]
	cmd := exec.Command(path, "--port", "0", "--tls-port", port, "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
		"--dir", t.TempDir(), "--tls-cert-file", pki.Files.Cert, "--tls-key-file", pki.Files.Key, "--tls-ca-cert-file", pki.Files.CA)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
	})
	sf := storeFlags{addr: addr, prefix: "gm:", ca: pki.Files.CA, cert: pki.Files.Cert, key: pki.Files.Key}
	var lastErr error
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		st, err := sf.open(ctx)
		cancel()
		if err == nil {
			if err := st.Close(); err != nil {
				t.Fatalf("close: %v", err)
			}
			lastErr = nil
			break
		}
		lastErr = err
	}
	if lastErr != nil {
		t.Fatalf("store over TLS: %v", lastErr)
	}
	for name, bad := range map[string]storeFlags{
		"plaintext":             {addr: addr, prefix: "gm:"},
		"no client certificate": {addr: addr, prefix: "gm:", ca: pki.Files.CA},
	} {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		st, err := bad.open(ctx)
		cancel()
		if err == nil {
			st.Close()
			t.Errorf("%s: connected to a Redis that requires TLS client certificates", name)
		} else if !strings.Contains(err.Error(), "--redis") {
			t.Errorf("%s: %v does not name the flag", name, err)
		}
	}
}

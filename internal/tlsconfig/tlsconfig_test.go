package tlsconfig

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"io"
	"net"
	"os"
	"testing"
	"time"
)

func generate(t *testing.T) Generated {
	t.Helper()
	g, err := Generate(t.TempDir(), DevHosts, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	return g
}

// handshake serves one TLS connection with srv and dials it with cli (nil:
// plain TCP that writes a byte and reads), returning the client's and the
// server's errors.
func handshake(t *testing.T, srv, cli *tls.Config) (clientErr, serverErr error) {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer lis.Close()
	done := make(chan error, 1)
	go func() {
		c, err := lis.Accept()
		if err != nil {
			done <- err
			return
		}
		defer c.Close()
		tc := tls.Server(c, srv)
		tc.SetDeadline(time.Now().Add(5 * time.Second))
		if err := tc.Handshake(); err != nil {
			done <- err
			return
		}
		_, err = tc.Write([]byte("ok"))
		done <- err
	}()
	if cli == nil {
		c, err := net.Dial("tcp", lis.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		c.Write([]byte("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"))
		c.SetDeadline(time.Now().Add(5 * time.Second))
		_, _ = io.ReadAll(c)
		c.Close()
		return errors.New("plaintext"), <-done
	}
	c, err := tls.DialWithDialer(&net.Dialer{Timeout: 5 * time.Second}, "tcp", lis.Addr().String(), cli)
	if err == nil {
		buf := make([]byte, 2)
		_, err = io.ReadFull(c, buf)
		c.Close()
	}
	return err, <-done
}

// TestMutualTLS: the handshakes the cluster's hops allow and refuse.
func TestMutualTLS(t *testing.T) {
	g, other := generate(t), generate(t)
	internal, err := Server(g.Files, RequireClientCert)
	if err != nil {
		t.Fatal(err)
	}
	public, err := Server(g.Files, VerifyIfGiven)
	if err != nil {
		t.Fatal(err)
	}
	client := func(f Files) *tls.Config {
		c, err := Client(f)
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	withCert := client(g.Files)
	caOnly := client(Files{CA: g.Files.CA})
	wrongCA := client(Files{CA: other.Files.CA})
	foreignCert := client(Files{CA: g.Files.CA, Cert: other.Files.Cert, Key: other.Files.Key})
	cases := []struct {
		name    string
		srv     *tls.Config
		cli     *tls.Config
		wantErr bool
	}{
		{"internal, cluster certificate", internal, withCert, false},
		{"internal, no client certificate", internal, caOnly, true},
		{"internal, client certificate of another CA", internal, foreignCert, true},
		{"internal, client trusts another CA", internal, client(Files{CA: other.Files.CA, Cert: g.Files.Cert, Key: g.Files.Key}), true},
		{"internal, plaintext client", internal, nil, true},
		{"public, no client certificate", public, caOnly, false},
		{"public, cluster certificate", public, withCert, false},
		{"public, client trusts another CA", public, wrongCA, true},
		{"public, client certificate of another CA", public, foreignCert, true},
		{"public, plaintext client", public, nil, true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			cerr, serr := handshake(t, c.srv, c.cli)
			if got := cerr != nil || serr != nil; got != c.wantErr {
				t.Fatalf("client error %v, server error %v; want failure %v", cerr, serr, c.wantErr)
			}
		})
	}
}

// TestConfigErrors: incomplete flags are refused with a reason.
func TestConfigErrors(t *testing.T) {
	g := generate(t)
	if _, err := Server(Files{Cert: g.Files.Cert}, VerifyIfGiven); err == nil {
		t.Error("server without a key")
	}
	if _, err := Server(Files{Cert: g.Files.Cert, Key: g.Files.Key}, RequireClientCert); err == nil {
		t.Error("mutual TLS without a CA")
	}
	if _, err := Client(Files{CA: g.Files.CA, Cert: g.Files.Cert}); err == nil {
		t.Error("client certificate without its key")
	}
	if _, err := Client(Files{CA: g.Files.Key}); err == nil {
		t.Error("a CA file without a certificate")
	}
	if _, err := Server(Files{Cert: g.Files.Cert, Key: g.Files.Cert}, VerifyIfGiven); err == nil {
		t.Error("a certificate as its own key")
	}
}

// TestGeneratedCertificate: the generated certificate is valid for the
// loopback names, for serving and for client authentication, and its key
// file is private.
func TestGeneratedCertificate(t *testing.T) {
	g := generate(t)
	kp, err := tls.LoadX509KeyPair(g.Files.Cert, g.Files.Key)
	if err != nil {
		t.Fatal(err)
	}
	pool, err := loadPool(g.Files.CA)
	if err != nil {
		t.Fatal(err)
	}
	cert := kp.Leaf
	for _, host := range DevHosts {
		for _, usage := range []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth} {
			if _, err := cert.Verify(x509.VerifyOptions{DNSName: host, Roots: pool, KeyUsages: []x509.ExtKeyUsage{usage}}); err != nil {
				t.Errorf("%s, usage %v: %v", host, usage, err)
			}
		}
	}
	fi, err := os.Stat(g.Files.Key)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("key file mode %v, want 0600", fi.Mode().Perm())
	}
}

// TestReload: a server picks up a certificate replaced on disk.
func TestReload(t *testing.T) {
	g := generate(t)
	kp, err := newKeyPair(g.Files.Cert, g.Files.Key)
	if err != nil {
		t.Fatal(err)
	}
	first, _ := kp.get()
	next := generate(t)
	for _, p := range [][2]string{{next.Files.Cert, g.Files.Cert}, {next.Files.Key, g.Files.Key}} {
		b, err := os.ReadFile(p[0])
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p[1], b, 0o600); err != nil {
			t.Fatal(err)
		}
		later := time.Now().Add(time.Minute)
		os.Chtimes(p[1], later, later)
	}
	if again, _ := kp.get(); again != first {
		t.Fatal("reloaded before the recheck interval")
	}
	kp.mu.Lock()
	kp.checked = time.Time{}
	kp.mu.Unlock()
	if again, _ := kp.get(); again == first || !again.Leaf.Equal(mustLeaf(t, next)) {
		t.Fatal("the replaced certificate was not loaded")
	}
	// A broken file keeps the last good pair.
	os.WriteFile(g.Files.Key, []byte("garbage"), 0o600)
	much := time.Now().Add(2 * time.Minute)
	os.Chtimes(g.Files.Key, much, much)
	kp.mu.Lock()
	kp.checked = time.Time{}
	kp.mu.Unlock()
	if again, err := kp.get(); err != nil || again == nil || !again.Leaf.Equal(mustLeaf(t, next)) {
		t.Fatalf("after a broken reload: %v, %v", again, err)
	}
}

func mustLeaf(t *testing.T, g Generated) *x509.Certificate {
	t.Helper()
	kp, err := tls.LoadX509KeyPair(g.Files.Cert, g.Files.Key)
	if err != nil {
		t.Fatal(err)
	}
	return kp.Leaf
}

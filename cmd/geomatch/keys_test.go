package main

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/geomatch/geomatch/auth"
	"github.com/geomatch/geomatch/internal/identity"
	"github.com/geomatch/geomatch/internal/serve"
	geomatchv1 "github.com/geomatch/geomatch/proto/geomatch/v1"
)

// TestKeygenTokenVerify: `geomatch admin keygen` makes a key pair and key
// set, `geomatch admin token --signing-key-file` mints with it, and a
// router given the set (GEOMATCH_AUTH_PUBLIC_KEYS) serves those tokens and
// refuses forged ones. A second keygen rotates: tokens of both keys verify
// while both are listed; `geomatch admin keys --remove` drops the old one.
func TestKeygenTokenVerify(t *testing.T) {
	dir := t.TempDir()
	set := filepath.Join(dir, "keys.json")
	oldPriv, newPriv := filepath.Join(dir, "old.pem"), filepath.Join(dir, "new.pem")
	run := func(args ...string) string {
		t.Helper()
		out, errOut, err := runCmd(t, []string{"GEOMATCH_SIGNING_KEY_FILE=", "GEOMATCH_AUTH_KEY_FILE=", "GEOMATCH_AUTH_KEY="}, args...)
		if err != nil {
			t.Fatalf("geomatch %v: %v\n%s%s", args, err, out, errOut)
		}
		return out
	}
	fails := func(want string, env []string, args ...string) {
		t.Helper()
		out, errOut, err := runCmd(t, append([]string{"GEOMATCH_SIGNING_KEY_FILE=", "GEOMATCH_AUTH_KEY_FILE=", "GEOMATCH_AUTH_KEY="}, env...), args...)
		if err == nil || !strings.Contains(errOut, want) {
			t.Fatalf("geomatch %v: %v, stdout %q stderr %q; want a failure mentioning %q", args, err, out, errOut, want)
		}
	}
	verifier := func() *auth.Keyring {
		t.Helper()
		doc, err := os.ReadFile(set)
		if err != nil {
			t.Fatal(err)
		}
		keys, err := auth.ParseKeySet(doc)
		if err != nil {
			t.Fatal(err)
		}
		k, err := auth.New(auth.Config{PublicKeys: keys})
		if err != nil {
			t.Fatal(err)
		}
		return k
	}
	token := func(priv, subject, role string) string {
		t.Helper()
		return strings.TrimSpace(run("admin", "token", "--signing-key-file", priv, "--subject", subject, "--role", role, "--ttl", "10m"))
	}

	out := run("admin", "keygen", "--kid", "2026-01", "--private-key-file", oldPriv, "--public-keys-file", set)
	if !strings.Contains(out, "key 2026-01") || !strings.Contains(out, "lists 1 key(s): 2026-01") {
		t.Fatalf("keygen said %q", out)
	}
	if fi, err := os.Stat(oldPriv); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("private key file: %v, %v", fi, err)
	}
	oldTok := token(oldPriv, "ops", "admin")
	c, err := verifier().Verify(oldTok, time.Now())
	if err != nil || c.Subject != "ops" || c.Role != auth.RoleAdmin || c.KeyID != "2026-01" || time.Until(c.Expiry) > 10*time.Minute || time.Until(c.Expiry) < 9*time.Minute {
		t.Fatalf("minted token: %+v, %v", c, err)
	}

	// A router with the key set in its environment.
	t.Setenv("GEOMATCH_AUTH_PUBLIC_KEYS", set)
	t.Setenv("GEOMATCH_AUTH_KEY_FILE", "")
	t.Setenv("GEOMATCH_AUTH_KEY", "")
	rp := start(t, "router", append([]string{"router", "--listen", "127.0.0.1:0", "--peers", "m1=127.0.0.1:1", "--public-tls=off"}, newTestCA(t, "test").args(identity.RoleRouter, "r1")...)...)
	addr := rp.waitFor(listening, 20*time.Second)[1]
	rp.waitFor(regexp.MustCompile(`verifying tokens.*key_ids=2026-01 hs256=false`), 5*time.Second)
	call := func(tok string) error {
		conn, err := grpc.NewClient(addr, serve.DialCreds(nil), grpc.WithPerRPCCredentials(auth.Bearer{Token: tok, Insecure: true}))
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		_, err = geomatchv1.NewAdminServiceClient(conn).GetRing(ctxFor(t, 10*time.Second), &geomatchv1.GetRingRequest{})
		return err
	}
	if err := call(oldTok); err != nil {
		t.Fatalf("admin token of the listed key: %v", err)
	}
	if err := call(token(oldPriv, "cab-1", "driver")); status.Code(err) != codes.PermissionDenied {
		t.Fatalf("driver token on the admin service: %v, want PERMISSION_DENIED", err)
	}
	if err := call(forgeHS256(t, set, "2026-01")); status.Code(err) != codes.Unauthenticated {
		t.Fatalf("HS256 token keyed with the public key: %v, want UNAUTHENTICATED", err)
	}
	rp.stop(15 * time.Second)
	for _, line := range rp.out {
		if strings.Contains(line, "deprecated") {
			t.Fatalf("router with Ed25519 keys only logged %q", line)
		}
	}

	// Rotation: a new key joins; both verify; the old one leaves.
	out = run("admin", "keygen", "--kid", "2026-03", "--private-key-file", newPriv, "--public-keys-file", set)
	if !strings.Contains(out, "lists 2 key(s): 2026-01, 2026-03") {
		t.Fatalf("second keygen said %q", out)
	}
	newTok := token(newPriv, "ops", "admin")
	for _, tok := range []string{oldTok, newTok} {
		if _, err := verifier().Verify(tok, time.Now()); err != nil {
			t.Fatalf("during the rotation: %v", err)
		}
	}
	if out := run("admin", "keys", "--public-keys-file", set, "--remove", "2026-01"); !strings.Contains(out, "removed key 2026-01") || strings.Contains(out, "2026-01\tEd25519") {
		t.Fatalf("keys --remove said %q", out)
	}
	if _, err := verifier().Verify(newTok, time.Now()); err != nil {
		t.Fatalf("new token after the rotation: %v", err)
	}
	if _, err := verifier().Verify(oldTok, time.Now()); !errors.Is(err, auth.ErrUnknownKey) {
		t.Fatalf("old token after its key is removed: %v, want ErrUnknownKey", err)
	}

	secretFile := filepath.Join(dir, "hs256.key")
	if err := os.WriteFile(secretFile, []byte(auth.EncodeKey([]byte(strings.Repeat("s", 32)))+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	fails("file exists", nil, "admin", "keygen", "--kid", "x", "--private-key-file", newPriv, "--public-keys-file", set)
	fails("listed twice", nil, "admin", "keygen", "--kid", "2026-03", "--private-key-file", filepath.Join(dir, "dup.pem"), "--public-keys-file", set)
	fails("give one key", nil, "admin", "token", "--signing-key-file", newPriv, "--auth-key-file", secretFile, "--subject", "a", "--role", "rider")
	fails("no PEM block", nil, "admin", "token", "--signing-key-file", set, "--subject", "a", "--role", "rider")
	fails("no key", nil, "admin", "token", "--subject", "a", "--role", "rider")
	fails("--auth-public-keys", []string{"GEOMATCH_AUTH_PUBLIC_KEYS=" + newPriv}, "router", "--listen", "127.0.0.1:0", "--peers", "m1=127.0.0.1:1")
	fails("--auth-public-keys", []string{"GEOMATCH_AUTH_PUBLIC_KEYS=", "GEOMATCH_AUTH_KEY_FILE=" + set}, "router", "--listen", "127.0.0.1:0", "--peers", "m1=127.0.0.1:1")
	if _, err := os.Stat(filepath.Join(dir, "dup.pem")); !os.IsNotExist(err) {
		t.Fatalf("a refused keygen left its private key: %v", err)
	}
}

// forgeHS256 returns an admin token signed with HS256 keyed by the bytes
// of the public key kid of the key set file (algorithm confusion).
func forgeHS256(t *testing.T, set, kid string) string {
	t.Helper()
	doc, err := os.ReadFile(set)
	if err != nil {
		t.Fatal(err)
	}
	keys, err := auth.ParseKeySet(doc)
	if err != nil {
		t.Fatal(err)
	}
	enc := base64.RawURLEncoding
	for _, k := range keys {
		if k.ID != kid {
			continue
		}
		signed := enc.EncodeToString([]byte(`{"alg":"HS256","kid":"`+kid+`","typ":"JWT"}`)) + "." +
			enc.EncodeToString([]byte(`{"iss":"geomatch","aud":"geomatch","sub":"ops","role":"admin","exp":`+strconv.FormatInt(time.Now().Add(time.Hour).Unix(), 10)+`}`))
		m := hmac.New(sha256.New, k.Key)
		m.Write([]byte(signed))
		return signed + "." + enc.EncodeToString(m.Sum(nil))
	}
	t.Fatalf("no key %q in %s", kid, set)
	return ""
}

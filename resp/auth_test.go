package resp_test

import (
	"bytes"
	"crypto/ed25519"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/geomatch/geomatch/auth"
	"github.com/geomatch/geomatch/cluster"
	"github.com/geomatch/geomatch/router"
)

// TestAuth: with authentication on, AUTH takes the gRPC API's bearer
// tokens, and the same roles hold: riders and admins search, drivers and
// admins update, a driver only its own id.
func TestAuth(t *testing.T) {
	key := &auth.SigningKey{ID: "resp-test", Key: ed25519.NewKeyFromSeed(bytes.Repeat([]byte{9}, ed25519.SeedSize))}
	minter, err := auth.New(auth.Config{SigningKey: key})
	if err != nil {
		t.Fatal(err)
	}
	verifier, err := auth.New(auth.Config{PublicKeys: []auth.PublicKey{key.Public()}})
	if err != nil {
		t.Fatal(err)
	}
	token := func(sub string, role auth.Role) string {
		tok, err := minter.Issue(sub, role, time.Hour, time.Now())
		if err != nil {
			t.Fatal(err)
		}
		return tok
	}
	d := startDoor(t, cluster.DevConfig{Router: router.Config{Auth: verifier}})
	ctx := ctxT(t)
	search := []any{"NEARBY", "fleet", "IDS", "POINT", 1, 1, 1000}

	anon := d.client(t)
	if err := anon.Ping(ctx).Err(); err != nil {
		t.Errorf("PING without a token: %v", err)
	}
	for _, args := range [][]any{search, {"SET", "fleet", "cab-1", "POINT", 1, 1}} {
		if err := anon.Do(ctx, args...).Err(); err == nil || !strings.HasPrefix(err.Error(), "NOAUTH ") {
			t.Errorf("%v without a token: %v, want NOAUTH", args[0], err)
		}
	}
	if err := anon.Do(ctx, "AUTH", "not-a-token").Err(); err == nil || !strings.Contains(err.Error(), "invalid token") {
		t.Errorf("AUTH garbage: %v", err)
	}
	expired, _ := minter.Mint(auth.Claims{Subject: "x", Role: auth.RoleAdmin, Expiry: time.Now().Add(-time.Hour)})
	if err := anon.Do(ctx, "AUTH", expired).Err(); err == nil || !strings.Contains(err.Error(), "invalid token") {
		t.Errorf("AUTH expired: %v", err)
	}

	// go-redis sends AUTH itself on each new connection (Password).
	as := func(sub string, role auth.Role) *redis.Client {
		return d.client(t, func(o *redis.Options) { o.Password = token(sub, role) })
	}
	drv := as("cab-1", auth.RoleDriver)
	if err := drv.Do(ctx, "SET", "fleet", "cab-1", "POINT", 1, 1).Err(); err != nil {
		t.Errorf("driver SET of itself: %v", err)
	}
	if err := drv.Do(ctx, "SET", "fleet", "cab-2", "POINT", 1, 1).Err(); err == nil || !strings.HasPrefix(err.Error(), "NOPERM SET: id: \"cab-2\" is not the token's subject \"cab-1\"") {
		t.Errorf("driver SET of another: %v", err)
	}
	err = drv.GeoAdd(ctx, "fleet", &redis.GeoLocation{Name: "cab-1", Latitude: 1, Longitude: 2}, &redis.GeoLocation{Name: "cab-3", Latitude: 1, Longitude: 2}).Err()
	if err == nil || !strings.HasPrefix(err.Error(), "NOPERM ") {
		t.Errorf("driver GEOADD naming another: %v", err)
	}
	if err := drv.Do(ctx, search...).Err(); err == nil || !strings.Contains(err.Error(), "needs role rider or admin") {
		t.Errorf("driver search: %v", err)
	}

	rider := as("alice", auth.RoleRider)
	v, err := rider.Do(ctx, search...).Slice()
	if err != nil || len(v) != 2 || len(v[1].([]any)) != 1 || v[1].([]any)[0] != "cab-1" {
		t.Errorf("rider search: %v, %v; want cab-1 only (at 1,1: the refused GEOADD moved nobody)", v, err)
	}
	if err := rider.Do(ctx, "SET", "fleet", "alice", "POINT", 1, 1).Err(); err == nil || !strings.Contains(err.Error(), "needs role driver or admin") {
		t.Errorf("rider SET: %v", err)
	}

	admin := as("ops", auth.RoleAdmin)
	if err := admin.Do(ctx, "SET", "fleet", "cab-9", "POINT", 1, 1).Err(); err != nil {
		t.Errorf("admin SET: %v", err)
	}
	if err := admin.Do(ctx, search...).Err(); err != nil {
		t.Errorf("admin search: %v", err)
	}
}

package router_test

import (
	"context"
	"log/slog"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/geomatch/geomatch/cluster"
	"github.com/geomatch/geomatch/fleet"
	"github.com/geomatch/geomatch/internal/geo"
	"github.com/geomatch/geomatch/internal/serve"
	"github.com/geomatch/geomatch/internal/tlsconfig"
	matcherv1 "github.com/geomatch/geomatch/proto/geomatch/matcher/v1"
	geomatchv1 "github.com/geomatch/geomatch/proto/geomatch/v1"
)

func generatePKI(t *testing.T) tlsconfig.Generated {
	t.Helper()
	g, err := tlsconfig.Generate(t.TempDir(), tlsconfig.DevHosts, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	return g
}

func tlsClient(t *testing.T, f tlsconfig.Files) grpc.DialOption {
	t.Helper()
	cfg, err := tlsconfig.Client(f)
	if err != nil {
		t.Fatal(err)
	}
	return serve.DialCreds(cfg)
}

// TestTLSEveryHop: with TLS on, the public API works for clients that
// trust the cluster's CA (the router reaching the matchers over mutual
// TLS), and fails cleanly — UNAVAILABLE at once, no hang — for plaintext
// clients and clients that trust another CA. The matchers' internal API
// refuses clients without a certificate of the cluster's CA, so a router
// with a certificate of another CA reaches no matcher.
func TestTLSEveryHop(t *testing.T) {
	pki, other := generatePKI(t), generatePKI(t)
	c := startCluster(t, cluster.DevConfig{Matchers: 2, TLS: &pki.Files})

	// c's own clients are plaintext.
	_, err := c.riders.NearbyDrivers(ctxFor(t, 10*time.Second), &geomatchv1.NearbyDriversRequest{Position: ll(40.75, -73.98), Limit: 1, RadiusM: 1000})
	wantCode(t, "plaintext client", err, codes.Unavailable)
	wrong := dialAPI(t, c.RouterAddr, tlsClient(t, tlsconfig.Files{CA: other.Files.CA}))
	_, err = wrong.riders.NearbyDrivers(ctxFor(t, 10*time.Second), &geomatchv1.NearbyDriversRequest{Position: ll(40.75, -73.98), Limit: 1, RadiusM: 1000})
	wantCode(t, "client trusting another CA", err, codes.Unavailable, "certificate")

	good := dialAPI(t, c.RouterAddr, tlsClient(t, tlsconfig.Files{CA: pki.Files.CA}))
	var ups []*geomatchv1.LocationUpdate
	for i, lng := range []float64{-74.2, -73.98, -73.7} { // spread over shards of both matchers
		ups = append(ups, update("cab-"+string(rune('a'+i)), 40.75, lng))
	}
	resp, err := good.drivers.UpdateLocations(ctxT(t), &geomatchv1.UpdateLocationsRequest{Updates: ups})
	if err != nil || resp.GetAccepted() != 3 {
		t.Fatalf("updates over TLS: %v, %v", resp, err)
	}
	near, err := good.riders.NearbyDrivers(ctxT(t), &geomatchv1.NearbyDriversRequest{Position: ll(40.75, -73.98), Limit: 10, RadiusM: 50_000})
	if err != nil || len(near.GetDrivers()) != 3 {
		t.Fatalf("nearby over TLS: %v, %v", near, err)
	}
	st, err := good.admin.GetClusterStatus(ctxT(t), &geomatchv1.GetClusterStatusRequest{})
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range st.GetNodes() {
		if n.GetState() != geomatchv1.NodeState_NODE_STATE_SERVING {
			t.Fatalf("router → %s over mutual TLS: %v (%s)", n.GetId(), n.GetState(), n.GetError())
		}
	}

	// The internal API, dialled directly.
	stats := func(opt grpc.DialOption) error {
		conn, err := grpc.NewClient(c.Members[0].Addr, opt)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		_, err = matcherv1.NewMatcherServiceClient(conn).Stats(ctxFor(t, 10*time.Second), &matcherv1.StatsRequest{})
		return err
	}
	if err := stats(tlsClient(t, pki.Files)); err != nil {
		t.Fatalf("matcher with the cluster's certificate: %v", err)
	}
	wantCode(t, "matcher, plaintext", stats(serve.DialCreds(nil)), codes.Unavailable)
	wantCode(t, "matcher, no client certificate", stats(tlsClient(t, tlsconfig.Files{CA: pki.Files.CA})), codes.Unavailable)
	wantCode(t, "matcher, client certificate of another CA", stats(tlsClient(t, tlsconfig.Files{CA: pki.Files.CA, Cert: other.Files.Cert, Key: other.Files.Key})), codes.Unavailable)
	wantCode(t, "matcher, trusting another CA", stats(tlsClient(t, other.Files)), codes.Unavailable, "certificate")

	// A fleet client with another CA's identity reaches no matcher.
	rogue, err := fleet.New(fleet.Config{DialOptions: []grpc.DialOption{tlsClient(t, tlsconfig.Files{CA: pki.Files.CA, Cert: other.Files.Cert, Key: other.Files.Key})}},
		c.Membership, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- rogue.Run(ctx) }()
	defer func() {
		cancel()
		<-done
	}()
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		_, err = rogue.Nearby(ctxFor(t, 10*time.Second), fleet.Query{Pos: geo.LatLng{Lat: 40.75, Lng: -73.98}, RadiusM: 50_000, K: 10})
		if err == nil || !strings.Contains(err.Error(), "not running") || time.Now().After(deadline) {
			break // Run has started
		}
	}
	if code := status.Code(err); code != codes.Unavailable && code != codes.DeadlineExceeded {
		t.Fatalf("router with a foreign certificate: %v, want UNAVAILABLE", err)
	}
	if !strings.Contains(err.Error(), "matcher") {
		t.Fatalf("error %v does not name the matcher", err)
	}
}

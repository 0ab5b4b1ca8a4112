package cluster_test

import (
	"context"
	"crypto/tls"
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"

	"github.com/geomatch/geomatch/cluster"
	"github.com/geomatch/geomatch/internal/identity"
	"github.com/geomatch/geomatch/internal/serve"
	"github.com/geomatch/geomatch/internal/tlsconfig"
	matcherv1 "github.com/geomatch/geomatch/proto/geomatch/matcher/v1"
	geomatchv1 "github.com/geomatch/geomatch/proto/geomatch/v1"
	"github.com/geomatch/geomatch/shardmap"
)

// TestDevInternalIdentity: with an internal CA, the router reaches the
// matchers over mutual TLS (searches and updates with InternalGRPC) and
// the matchers hand shards over to each other over it, while the internal
// API refuses anonymous callers, other CAs and roles a method is not for.
func TestDevInternalIdentity(t *testing.T) {
	ca, err := tlsconfig.NewCA("devtest", tlsconfig.ECDSAP256, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	c, err := cluster.StartDev(cluster.DevConfig{Matchers: 2, InternalCA: ca, InternalGRPC: true, Log: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Stop()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	pub, err := grpc.NewClient(c.RouterAddr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer pub.Close()
	req := &geomatchv1.UpdateLocationsRequest{}
	for i := range 200 {
		req.Updates = append(req.Updates, &geomatchv1.LocationUpdate{DriverId: fmt.Sprintf("d%d", i),
			Position: &geomatchv1.LatLng{Lat: 40.55 + 0.01*float64(i%20), Lng: -74.10 + 0.01*float64(i/20)}, TimestampMs: time.Now().UnixMilli()})
	}
	if resp, err := geomatchv1.NewDriverServiceClient(pub).UpdateLocations(ctx, req); err != nil || resp.GetAccepted() != 200 {
		t.Fatalf("updates over the internal mutual TLS: %v %v", resp, err)
	}
	count := func() int {
		near, err := geomatchv1.NewRiderServiceClient(pub).NearbyDrivers(ctx, &geomatchv1.NearbyDriversRequest{
			Position: &geomatchv1.LatLng{Lat: 40.65, Lng: -74.05}, Limit: 1000, RadiusM: 50_000})
		if err != nil {
			t.Fatalf("nearby over the internal mutual TLS: %v", err)
		}
		return len(near.GetDrivers())
	}
	if n := count(); n != 200 {
		t.Fatalf("nearby: %d drivers, want 200", n)
	}
	// Handoff between matchers (Transfer, Holding) over mutual TLS.
	if _, err := c.Membership.Update(func(d *shardmap.Doc) error { d.Drained = []string{"m1"}; return nil }); err != nil {
		t.Fatal(err)
	}
	for c.Nodes[0].Index().Len() != 0 || c.Nodes[1].Index().Len() != 200 {
		if ctx.Err() != nil {
			t.Fatalf("after draining m1: m1 holds %d, m2 %d; want 0 and 200", c.Nodes[0].Index().Len(), c.Nodes[1].Index().Len())
		}
		time.Sleep(20 * time.Millisecond)
	}
	if n := count(); n != 200 {
		t.Fatalf("nearby after the handoff: %d drivers, want 200", n)
	}

	// Callers of a matcher's internal API.
	addr := c.Matchers[1].Addr
	call := func(opt grpc.DialOption, transfer bool) error {
		conn, err := grpc.NewClient(addr, opt)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		mc := matcherv1.NewMatcherServiceClient(conn)
		if transfer {
			st, err := mc.Transfer(ctx, &matcherv1.TransferRequest{})
			if err != nil {
				return err
			}
			_, err = st.Recv()
			return err
		}
		_, err = mc.Stats(ctx, &matcherv1.StatsRequest{})
		return err
	}
	node := func(ca *tlsconfig.CA, role identity.Role, id string) grpc.DialOption {
		n, err := ca.Node(role, id, nil, time.Hour)
		if err != nil {
			t.Fatal(err)
		}
		return serve.DialCreds(n.ClientConfig(identity.RoleMatcher))
	}
	other, err := tlsconfig.NewCA("devtest", tlsconfig.ECDSAP256, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	noCert := serve.DialCreds(&tls.Config{InsecureSkipVerify: true}) // a TLS client without a certificate
	cases := []struct {
		name     string
		opt      grpc.DialOption
		transfer bool
		want     codes.Code
		mentions string
	}{
		{"router stats", node(ca, identity.RoleRouter, "r1"), false, codes.OK, ""},
		{"matcher transfer", node(ca, identity.RoleMatcher, "m9"), true, codes.OK, ""},
		{"router transfer", node(ca, identity.RoleRouter, "r1"), true, codes.PermissionDenied, "spiffe://devtest/router/r1 may not call /geomatch.matcher.v1.MatcherService/Transfer"},
		{"no client certificate", noCert, false, codes.Unauthenticated, "no client certificate"},
		{"plaintext", grpc.WithTransportCredentials(insecure.NewCredentials()), false, codes.Unavailable, ""},
		{"another CA", node(other, identity.RoleRouter, "r1"), false, codes.Unavailable, ""},
	}
	for _, tc := range cases {
		err := call(tc.opt, tc.transfer)
		if c := status.Code(err); tc.want == codes.OK && c != codes.Unauthenticated && c != codes.PermissionDenied && c != codes.Unavailable {
			err = nil // admitted (the handler may still refuse an empty request)
		}
		if status.Code(err) != tc.want || !strings.Contains(status.Convert(err).Message(), tc.mentions) {
			t.Errorf("%s: %v, want %v mentioning %q", tc.name, err, tc.want, tc.mentions)
		}
	}
}

// BenchmarkNearbyInternalGRPC: nearby searches through the router, which
// asks the matchers over loopback gRPC, in plaintext and over mutual TLS
// with identities: the cost of securing the internal hop.
func BenchmarkNearbyInternalGRPC(b *testing.B) {
	for _, secure := range []bool{false, true} {
		name := "plaintext"
		cfg := cluster.DevConfig{Matchers: 3, InternalGRPC: true, Log: slog.New(slog.DiscardHandler)}
		if secure {
			name = "mtls"
			ca, err := tlsconfig.NewCA("bench", tlsconfig.ECDSAP256, time.Hour)
			if err != nil {
				b.Fatal(err)
			}
			cfg.InternalCA = ca
		}
		b.Run(name, func(b *testing.B) {
			c, err := cluster.StartDev(cfg)
			if err != nil {
				b.Fatal(err)
			}
			defer c.Stop()
			conn, err := grpc.NewClient(c.RouterAddr, grpc.WithTransportCredentials(insecure.NewCredentials()))
			if err != nil {
				b.Fatal(err)
			}
			defer conn.Close()
			ctx := context.Background()
			req := &geomatchv1.UpdateLocationsRequest{}
			for i := range 5000 {
				req.Updates = append(req.Updates, &geomatchv1.LocationUpdate{DriverId: fmt.Sprintf("d%d", i),
					Position: &geomatchv1.LatLng{Lat: 40.60 + 0.003*float64(i%100), Lng: -74.05 + 0.003*float64(i/100)}, TimestampMs: time.Now().UnixMilli()})
			}
			if _, err := geomatchv1.NewDriverServiceClient(conn).UpdateLocations(ctx, req); err != nil {
				b.Fatal(err)
			}
			riders := geomatchv1.NewRiderServiceClient(conn)
			q := &geomatchv1.NearbyDriversRequest{Position: &geomatchv1.LatLng{Lat: 40.75, Lng: -73.98}, Limit: 10, RadiusM: 3000}
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					if _, err := riders.NearbyDrivers(ctx, q); err != nil {
						b.Error(err)
						return
					}
				}
			})
		})
	}
}

package router_test

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/emptypb"

	"github.com/geomatch/geomatch/auth"
	"github.com/geomatch/geomatch/cluster"
	geomatchv1 "github.com/geomatch/geomatch/proto/geomatch/v1"
	"github.com/geomatch/geomatch/router"
)

var testKey = bytes.Repeat([]byte("geomatch-test-key"), 2)

// testSigningKey is the Ed25519 key test tokens are signed with.
var testSigningKey = &auth.SigningKey{ID: "test-1", Key: ed25519.NewKeyFromSeed(bytes.Repeat([]byte{7}, ed25519.SeedSize))}

// testKeyring returns the keyring that mints test tokens (the issuer's,
// with the private key).
func testKeyring(t testing.TB) *auth.Keyring {
	t.Helper()
	k, err := auth.New(auth.Config{SigningKey: testSigningKey})
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// testVerifier returns the keyring routers get: the public key only.
func testVerifier(t testing.TB) *auth.Keyring {
	t.Helper()
	k, err := auth.New(auth.Config{PublicKeys: []auth.PublicKey{testSigningKey.Public()}})
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// apiClients are the public API's clients over one connection.
type apiClients struct {
	conn    *grpc.ClientConn
	drivers geomatchv1.DriverServiceClient
	riders  geomatchv1.RiderServiceClient
	admin   geomatchv1.AdminServiceClient
}

// dialAPI connects to the router at addr with opts (plaintext unless they
// say otherwise).
func dialAPI(t testing.TB, addr string, opts ...grpc.DialOption) apiClients {
	t.Helper()
	conn, err := grpc.NewClient(addr, append([]grpc.DialOption{grpc.WithTransportCredentials(insecure.NewCredentials())}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return apiClients{conn: conn, drivers: geomatchv1.NewDriverServiceClient(conn),
		riders: geomatchv1.NewRiderServiceClient(conn), admin: geomatchv1.NewAdminServiceClient(conn)}
}

// as connects to c's router with a token for subject in role.
func as(t testing.TB, c *testCluster, k *auth.Keyring, subject string, role auth.Role) apiClients {
	t.Helper()
	tok, err := k.Issue(subject, role, time.Hour, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	return dialAPI(t, c.RouterAddr, grpc.WithPerRPCCredentials(auth.Bearer{Token: tok, Insecure: true}))
}

// startAuthCluster starts a cluster whose router verifies tokens with the
// test public key, and returns the keyring that mints them.
func startAuthCluster(t *testing.T, cfg cluster.DevConfig) (*testCluster, *auth.Keyring) {
	t.Helper()
	cfg.Router.Auth = testVerifier(t)
	return startCluster(t, cfg), testKeyring(t)
}

// wantCode fails the test unless err has code want and its message
// contains every one of words.
func wantCode(t *testing.T, what string, err error, want codes.Code, words ...string) {
	t.Helper()
	st := status.Convert(err)
	if st.Code() != want {
		t.Fatalf("%s: %v, want %v", what, err, want)
	}
	for _, w := range words {
		if !strings.Contains(st.Message(), w) {
			t.Fatalf("%s: message %q does not mention %q", what, st.Message(), w)
		}
	}
}

func update(id string, lat, lng float64) *geomatchv1.LocationUpdate {
	return &geomatchv1.LocationUpdate{DriverId: id, Position: ll(lat, lng), TimestampMs: time.Now().UnixMilli()}
}

// TestEveryMethodNeedsAToken: with authentication on, every method of the
// public services answers UNAUTHENTICATED to a call without a token, or
// with a token that is forged, expired or malformed, and changes nothing.
// Health checks need no token.
func TestEveryMethodNeedsAToken(t *testing.T) {
	c, k := startAuthCluster(t, cluster.DevConfig{Matchers: 1})
	expired, err := k.Mint(auth.Claims{Subject: "ops", Role: auth.RoleAdmin, Expiry: time.Now().Add(-time.Hour)})
	if err != nil {
		t.Fatal(err)
	}
	other, err := auth.NewKeyring(bytes.Repeat([]byte("x"), 32))
	if err != nil {
		t.Fatal(err)
	}
	forged, err := other.Issue("ops", auth.RoleAdmin, time.Hour, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	tokens := map[string]struct {
		opts []grpc.DialOption
		word string
	}{
		"no token": {nil, "missing token"},
		"forged":   {[]grpc.DialOption{grpc.WithPerRPCCredentials(auth.Bearer{Token: forged, Insecure: true})}, "unknown key"},
		"expired":  {[]grpc.DialOption{grpc.WithPerRPCCredentials(auth.Bearer{Token: expired, Insecure: true})}, "expired"},
		"garbage":  {[]grpc.DialOption{grpc.WithPerRPCCredentials(auth.Bearer{Token: "not.a.token", Insecure: true})}, "invalid token"},
	}
	for name, tc := range tokens {
		cl := dialAPI(t, c.RouterAddr, tc.opts...)
		for _, sd := range []grpc.ServiceDesc{geomatchv1.DriverService_ServiceDesc, geomatchv1.RiderService_ServiceDesc, geomatchv1.AdminService_ServiceDesc} {
			for _, m := range sd.Methods {
				method := "/" + sd.ServiceName + "/" + m.MethodName
				err := cl.conn.Invoke(ctxT(t), method, &emptypb.Empty{}, &emptypb.Empty{})
				wantCode(t, name+" "+method, err, codes.Unauthenticated, tc.word)
			}
			for _, s := range sd.Streams {
				method := "/" + sd.ServiceName + "/" + s.StreamName
				st, err := cl.conn.NewStream(ctxT(t), &grpc.StreamDesc{ServerStreams: true, ClientStreams: true}, method)
				if err == nil {
					err = st.RecvMsg(&emptypb.Empty{})
				}
				wantCode(t, name+" "+method, err, codes.Unauthenticated, tc.word)
			}
		}
	}
	if n := c.Nodes[0].Index().Len(); n != 0 {
		t.Fatalf("refused calls left %d drivers", n)
	}
}

// TestDriverMovesOnlyItself: a driver's token updates that driver and no
// other, on UpdateLocations (a batch naming anybody else is refused whole)
// and on its Connect stream; riders cannot move drivers; an admin can.
func TestDriverMovesOnlyItself(t *testing.T) {
	c, k := startAuthCluster(t, cluster.DevConfig{Matchers: 2})
	cab1 := as(t, c, k, "cab-1", auth.RoleDriver)
	resp, err := cab1.drivers.UpdateLocations(ctxT(t), &geomatchv1.UpdateLocationsRequest{Updates: []*geomatchv1.LocationUpdate{update("cab-1", 40.75, -73.98)}})
	if err != nil || resp.GetAccepted() != 1 {
		t.Fatalf("own update: %v, %v", resp, err)
	}
	_, err = cab1.drivers.UpdateLocations(ctxT(t), &geomatchv1.UpdateLocationsRequest{Updates: []*geomatchv1.LocationUpdate{update("cab-2", 40.75, -73.98)}})
	wantCode(t, "another driver", err, codes.PermissionDenied, "updates[0].driver_id", "cab-2", "cab-1")
	_, err = cab1.drivers.UpdateLocations(ctxT(t), &geomatchv1.UpdateLocationsRequest{Updates: []*geomatchv1.LocationUpdate{
		update("cab-1", 41.0, -73.98), update("cab-2", 40.75, -73.98)}})
	wantCode(t, "a batch with another driver", err, codes.PermissionDenied, "updates[1].driver_id")

	alice := as(t, c, k, "alice", auth.RoleRider)
	_, err = alice.drivers.UpdateLocations(ctxT(t), &geomatchv1.UpdateLocationsRequest{Updates: []*geomatchv1.LocationUpdate{update("alice", 40.75, -73.98)}})
	wantCode(t, "a rider's update", err, codes.PermissionDenied, "needs role driver or admin", "rider")

	stream, err := cab1.drivers.Connect(ctxT(t))
	if err != nil {
		t.Fatal(err)
	}
	if err := stream.Send(&geomatchv1.DriverMessage{Msg: &geomatchv1.DriverMessage_Hello{Hello: &geomatchv1.DriverHello{DriverId: "cab-2"}}}); err != nil {
		t.Fatal(err)
	}
	_, err = stream.Recv()
	wantCode(t, "hello as another driver", err, codes.PermissionDenied, "hello.driver_id")

	ops := as(t, c, k, "ops", auth.RoleAdmin)
	resp, err = ops.drivers.UpdateLocations(ctxT(t), &geomatchv1.UpdateLocationsRequest{Updates: []*geomatchv1.LocationUpdate{update("cab-3", 40.751, -73.98)}})
	if err != nil || resp.GetAccepted() != 1 {
		t.Fatalf("admin update of a driver: %v, %v", resp, err)
	}
	near, err := alice.riders.NearbyDrivers(ctxT(t), &geomatchv1.NearbyDriversRequest{Position: ll(40.75, -73.98), Limit: 10, RadiusM: 50_000})
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, d := range near.GetDrivers() {
		ids = append(ids, d.GetDriverId())
	}
	if strings.Join(ids, ",") != "cab-1,cab-3" {
		t.Fatalf("drivers %v, want cab-1 (at its first position) and cab-3: refused calls must change nothing", ids)
	}
	if lat := near.GetDrivers()[0].GetPosition().GetLat(); lat != 40.75 {
		t.Fatalf("cab-1 at %v: the refused batch moved it", lat)
	}
}

// TestRidersSeeOnlyTheirTrips: a rider requests rides, reads and cancels
// trips as itself only; another rider's trip is PERMISSION_DENIED; a driver
// reads only the trips assigned to it; an admin reads any.
func TestRidersSeeOnlyTheirTrips(t *testing.T) {
	c, k := startAuthCluster(t, cluster.DevConfig{Matchers: 2})
	ops := as(t, c, k, "ops", auth.RoleAdmin)
	onStream(t, ops.drivers, update("cab-1", 40.7581, -73.9855))
	alice, bob := as(t, c, k, "alice", auth.RoleRider), as(t, c, k, "bob", auth.RoleRider)
	req := &geomatchv1.RequestRideRequest{RequestId: "r-1", RiderId: "bob", Pickup: ll(40.758, -73.9855), Dropoff: ll(40.70, -74.0)}
	_, err := alice.riders.RequestRide(ctxT(t), req)
	wantCode(t, "ride for another rider", err, codes.PermissionDenied, "rider_id", "bob", "alice")
	req.RiderId = "alice"
	tr, err := alice.riders.RequestRide(ctxT(t), req)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := alice.riders.GetTrip(ctxT(t), &geomatchv1.GetTripRequest{TripId: tr.GetTripId()}); err != nil {
		t.Fatalf("own trip: %v", err)
	}
	_, err = bob.riders.GetTrip(ctxT(t), &geomatchv1.GetTripRequest{TripId: tr.GetTripId()})
	wantCode(t, "another rider's trip", err, codes.PermissionDenied, "trip_id", "bob")
	_, err = bob.riders.CancelTrip(ctxT(t), &geomatchv1.CancelTripRequest{TripId: tr.GetTripId(), RiderId: "alice"})
	wantCode(t, "cancel as another rider", err, codes.PermissionDenied, "rider_id")
	_, err = bob.riders.CancelTrip(ctxT(t), &geomatchv1.CancelTripRequest{TripId: tr.GetTripId(), RiderId: "bob"})
	wantCode(t, "cancel another rider's trip", err, codes.PermissionDenied)
	cab2 := as(t, c, k, "cab-2", auth.RoleDriver)
	_, err = cab2.riders.GetTrip(ctxT(t), &geomatchv1.GetTripRequest{TripId: tr.GetTripId()})
	wantCode(t, "a trip of another driver", err, codes.PermissionDenied)
	_, err = cab2.riders.RequestRide(ctxT(t), req)
	wantCode(t, "a driver requesting a ride", err, codes.PermissionDenied, "needs role rider or admin")
	if _, err := ops.riders.GetTrip(ctxT(t), &geomatchv1.GetTripRequest{TripId: tr.GetTripId()}); err != nil {
		t.Fatalf("admin reads a trip: %v", err)
	}
	got, err := alice.riders.CancelTrip(ctxT(t), &geomatchv1.CancelTripRequest{TripId: tr.GetTripId(), RiderId: "alice"})
	if err != nil || got.GetState() != geomatchv1.TripState_TRIP_STATE_CANCELLED {
		t.Fatalf("own cancel: %v, %v", got, err)
	}
}

// TestRolesPerService: nearby searches are for riders and admins, the admin
// service for admins only.
func TestRolesPerService(t *testing.T) {
	c, k := startAuthCluster(t, cluster.DevConfig{Matchers: 1})
	near := &geomatchv1.NearbyDriversRequest{Position: ll(40.75, -73.98), Limit: 1, RadiusM: 1000}
	for _, tc := range []struct {
		role              auth.Role
		nearby, adminCall codes.Code
	}{
		{auth.RoleDriver, codes.PermissionDenied, codes.PermissionDenied},
		{auth.RoleRider, codes.OK, codes.PermissionDenied},
		{auth.RoleAdmin, codes.OK, codes.OK},
	} {
		cl := as(t, c, k, "someone", tc.role)
		_, err := cl.riders.NearbyDrivers(ctxT(t), near)
		wantCode(t, string(tc.role)+" NearbyDrivers", err, tc.nearby)
		_, err = cl.admin.GetClusterStatus(ctxT(t), &geomatchv1.GetClusterStatusRequest{})
		wantCode(t, string(tc.role)+" GetClusterStatus", err, tc.adminCall)
		_, err = cl.admin.GetRing(ctxT(t), &geomatchv1.GetRingRequest{})
		wantCode(t, string(tc.role)+" GetRing", err, tc.adminCall)
		if tc.adminCall != codes.OK {
			wantCode(t, "message", err, codes.PermissionDenied, "needs role admin", string(tc.role))
		}
	}
}

// TestAuthOffByDefault: without a keyring the API takes calls without
// tokens (the dev cluster and the existing tests), and ignores a token.
func TestAuthOffByDefault(t *testing.T) {
	c := startCluster(t, cluster.DevConfig{Matchers: 1})
	if _, err := c.riders.NearbyDrivers(ctxT(t), &geomatchv1.NearbyDriversRequest{Position: ll(1, 1), Limit: 1, RadiusM: 10}); err != nil {
		t.Fatal(err)
	}
	cl := dialAPI(t, c.RouterAddr, grpc.WithPerRPCCredentials(auth.Bearer{Token: "ignored", Insecure: true}))
	if _, err := cl.admin.GetRing(ctxT(t), &geomatchv1.GetRingRequest{}); err != nil {
		t.Fatal(err)
	}
}

// TestForgedAlgorithmsRefused: a router holding an Ed25519 public key
// answers UNAUTHENTICATED to an admin token forged with HS256 keyed by
// that public key (algorithm confusion) and to an unsigned one ("alg":
// "none"), and serves a token signed by the private key.
func TestForgedAlgorithmsRefused(t *testing.T) {
	c, k := startAuthCluster(t, cluster.DevConfig{Matchers: 1})
	enc := base64.RawURLEncoding
	claims := enc.EncodeToString([]byte(`{"iss":"geomatch","aud":"geomatch","sub":"ops","role":"admin","exp":` + strconv.FormatInt(time.Now().Add(time.Hour).Unix(), 10) + `}`))
	hs := enc.EncodeToString([]byte(`{"alg":"HS256","kid":"test-1","typ":"JWT"}`)) + "." + claims
	m := hmac.New(sha256.New, testSigningKey.Public().Key)
	m.Write([]byte(hs))
	for name, tok := range map[string]string{
		"HS256 keyed with the public key": hs + "." + enc.EncodeToString(m.Sum(nil)),
		"alg none":                        enc.EncodeToString([]byte(`{"alg":"none","kid":"test-1"}`)) + "." + claims + ".",
	} {
		cl := dialAPI(t, c.RouterAddr, grpc.WithPerRPCCredentials(auth.Bearer{Token: tok, Insecure: true}))
		_, err := cl.admin.GetRing(ctxT(t), &geomatchv1.GetRingRequest{})
		wantCode(t, name, err, codes.Unauthenticated, "invalid token")
	}
	if _, err := as(t, c, k, "ops", auth.RoleAdmin).admin.GetRing(ctxT(t), &geomatchv1.GetRingRequest{}); err != nil {
		t.Fatalf("EdDSA admin token: %v", err)
	}
}

// TestHS256StillWorksAndIsDeprecated: a router given an HS256 secret (an
// existing deployment) serves the tokens it signs, and says once, at
// start, that HS256 is deprecated.
func TestHS256StillWorksAndIsDeprecated(t *testing.T) {
	k, err := auth.NewKeyring(testKey)
	if err != nil {
		t.Fatal(err)
	}
	var logs syncBuffer
	c := startCluster(t, cluster.DevConfig{Matchers: 1, Router: router.Config{Auth: k}, Log: slog.New(slog.NewTextHandler(&logs, nil))})
	if _, err := as(t, c, k, "ops", auth.RoleAdmin).admin.GetRing(ctxT(t), &geomatchv1.GetRingRequest{}); err != nil {
		t.Fatalf("HS256 admin token: %v", err)
	}
	if n := strings.Count(logs.String(), "deprecated: HS256"); n != 1 {
		t.Fatalf("%d deprecation warnings in the log, want 1:\n%s", n, logs.String())
	}
}

// syncBuffer is a bytes.Buffer safe for a logger's concurrent writes.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func ctxFor(t *testing.T, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

// onStream opens a Connect stream for driver u.DriverId, reports u on it
// and waits for its acknowledgement: a driver only rides are offered to.
// The stream stays open until the test ends.
func onStream(t *testing.T, drivers geomatchv1.DriverServiceClient, u *geomatchv1.LocationUpdate) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	stream, err := drivers.Connect(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := stream.Send(&geomatchv1.DriverMessage{Msg: &geomatchv1.DriverMessage_Hello{Hello: &geomatchv1.DriverHello{DriverId: u.GetDriverId(), WantAcks: true}}}); err != nil {
		t.Fatal(err)
	}
	if err := stream.Send(&geomatchv1.DriverMessage{Msg: &geomatchv1.DriverMessage_Location{Location: u}}); err != nil {
		t.Fatal(err)
	}
	for {
		ev, err := stream.Recv()
		if err != nil {
			t.Fatalf("driver %s: %v before its update was acknowledged", u.GetDriverId(), err)
		}
		if a := ev.GetUpdatesAck(); a != nil && a.GetThroughTimestampMs() >= u.GetTimestampMs() {
			if a.GetApplied() != 1 {
				t.Fatalf("driver %s: update not applied (%v)", u.GetDriverId(), a)
			}
			return
		}
		if rj := ev.GetRejected(); rj != nil {
			t.Fatalf("driver %s: update rejected: %v", u.GetDriverId(), rj)
		}
	}
}

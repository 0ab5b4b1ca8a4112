package router

import (
	"context"
	"net"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	grpcpeer "google.golang.org/grpc/peer"
	"google.golang.org/grpc/status"

	"github.com/geomatch/geomatch/auth"
	geomatchv1 "github.com/geomatch/geomatch/proto/geomatch/v1"
)

// caller is who makes a public call, as the router's interceptors
// established it.
type caller struct {
	// key identifies the client to its limits: "driver cab-1",
	// "rider alice", or "peer 10.0.0.7" when authentication is off.
	key string
	// claims are the token's; zero when authentication is off.
	claims auth.Claims
	authed bool
}

// admin reports whether c holds an admin token.
func (c caller) admin() bool { return c.authed && c.claims.Role == auth.RoleAdmin }

// actsFor reports whether c may act as subject (a driver or rider id):
// its own, any for an admin, and any when authentication is off.
func (c caller) actsFor(subject string) bool {
	return !c.authed || c.admin() || c.claims.Subject == subject
}

// notSubject is the PERMISSION_DENIED of a call that names somebody else.
func (c caller) notSubject(field, got string) error {
	return status.Errorf(codes.PermissionDenied, "%s: %q is not the token's subject %q", field, got, c.claims.Subject)
}

type callerKey struct{}

// callerFrom returns the caller the interceptors put on ctx; without them
// (authentication off), a caller that may do everything.
func callerFrom(ctx context.Context) caller {
	c, _ := ctx.Value(callerKey{}).(caller)
	return c
}

// rule is what a public method needs: one of the roles, and the bucket
// its calls are charged to.
type rule struct {
	roles  []auth.Role
	bucket bucket
}

var (
	drivers     = []auth.Role{auth.RoleDriver, auth.RoleAdmin}
	riders      = []auth.Role{auth.RoleRider, auth.RoleAdmin}
	tripReaders = []auth.Role{auth.RoleRider, auth.RoleDriver, auth.RoleAdmin}
	admins      = []auth.Role{auth.RoleAdmin}
)

// policy is the access rule of every public method. A method of the public
// API missing here is refused while authentication is on (default deny).
// Per-subject checks (a driver moves only itself, a rider sees only its
// own trips) are made on the requests themselves (checkSubjects) and in
// the handlers that must read a trip first.
var policy = map[string]rule{
	geomatchv1.DriverService_UpdateLocations_FullMethodName: {drivers, bucketUpdates},
	geomatchv1.DriverService_Connect_FullMethodName:         {drivers, bucketRequests},
	geomatchv1.RiderService_NearbyDrivers_FullMethodName:    {riders, bucketRequests},
	geomatchv1.RiderService_NearbyStream_FullMethodName:     {riders, bucketRequests},
	geomatchv1.RiderService_RequestRide_FullMethodName:      {riders, bucketRequests},
	geomatchv1.RiderService_GetTrip_FullMethodName:          {tripReaders, bucketRequests},
	geomatchv1.RiderService_CancelTrip_FullMethodName:       {riders, bucketRequests},
	geomatchv1.AdminService_GetClusterStatus_FullMethodName: {admins, bucketRequests},
	geomatchv1.AdminService_ListShards_FullMethodName:       {admins, bucketRequests},
	geomatchv1.AdminService_GetRing_FullMethodName:          {admins, bucketRequests},
	geomatchv1.AdminService_MoveShard_FullMethodName:        {admins, bucketRequests},
	geomatchv1.AdminService_Unpin_FullMethodName:            {admins, bucketRequests},
	geomatchv1.AdminService_DrainNode_FullMethodName:        {admins, bucketRequests},
	geomatchv1.AdminService_UndrainNode_FullMethodName:      {admins, bucketRequests},
	geomatchv1.AdminService_SplitShard_FullMethodName:       {admins, bucketRequests},
	geomatchv1.AdminService_MergeShard_FullMethodName:       {admins, bucketRequests},
	geomatchv1.AdminService_Rebalance_FullMethodName:        {admins, bucketRequests},
	geomatchv1.FenceService_PutFence_FullMethodName:         {admins, bucketRequests},
	geomatchv1.FenceService_GetFence_FullMethodName:         {admins, bucketRequests},
	geomatchv1.FenceService_DeleteFence_FullMethodName:      {admins, bucketRequests},
	geomatchv1.FenceService_ListFences_FullMethodName:       {admins, bucketRequests},
	geomatchv1.FenceService_GetFenceCounts_FullMethodName:   {admins, bucketRequests},
	geomatchv1.EventService_Subscribe_FullMethodName:        {admins, bucketRequests},
	geomatchv1.EventService_PutHook_FullMethodName:          {admins, bucketRequests},
	geomatchv1.EventService_DeleteHook_FullMethodName:       {admins, bucketRequests},
	geomatchv1.EventService_ListHooks_FullMethodName:        {admins, bucketRequests},
}

// publicPrefix starts the full name of every public method.
const publicPrefix = "/geomatch.v1."

// ServerOptions returns the interceptors that enforce Config.Auth and
// Config.Limits on the gRPC server the router's services are registered
// on. Other services of that server (health, reflection) are left alone.
// It is called once, when the server is built: it logs the key ids tokens
// are verified with, and a deprecation warning when they include HS256
// secrets.
func (r *Router) ServerOptions() []grpc.ServerOption {
	if k := r.cfg.Auth; k != nil {
		r.log.Info("authentication on: verifying tokens", "key_ids", strings.Join(k.KeyIDs(), ","), "hs256", k.HasSecrets())
		if k.HasSecrets() {
			r.log.Warn("deprecated: HS256 token keys (--auth-key-file, GEOMATCH_AUTH_KEY): whoever holds them can mint tokens, admin tokens included; " +
				"move to Ed25519 (geomatch admin keygen, then --auth-public-keys on the routers) and remove the HS256 keys")
		} else if k.CanSign() {
			r.log.Warn("the router's keyring holds a private signing key; a router needs public keys only")
		}
	}
	return []grpc.ServerOption{
		grpc.ChainUnaryInterceptor(r.guardUnary),
		grpc.ChainStreamInterceptor(r.guardStream),
	}
}

// guarded reports whether the interceptors have anything to enforce.
func (r *Router) guarded() bool { return r.cfg.Auth != nil || r.limits.active() }

// identify authenticates the caller of method and checks its role. public
// is false for methods outside the public API, which pass unchecked.
func (r *Router) identify(ctx context.Context, method string) (c caller, rl rule, public bool, err error) {
	if !strings.HasPrefix(method, publicPrefix) {
		return caller{}, rule{}, false, nil
	}
	rl, known := policy[method]
	if r.cfg.Auth == nil {
		return caller{key: "peer " + peerHost(ctx)}, rl, true, nil
	}
	tok, err := bearerToken(ctx)
	if err != nil {
		return caller{}, rl, true, err
	}
	claims, err := r.verify(tok, time.Now())
	if err != nil {
		return caller{}, rl, true, status.Errorf(codes.Unauthenticated, "invalid token: %v", err)
	}
	if !known {
		return caller{}, rl, true, status.Errorf(codes.PermissionDenied, "%s: no access rule for this method", method)
	}
	if !slices.Contains(rl.roles, claims.Role) {
		return caller{}, rl, true, status.Errorf(codes.PermissionDenied, "%s needs role %s; the token of %q has role %s", method, roleList(rl.roles), claims.Subject, claims.Role)
	}
	return caller{key: string(claims.Role) + " " + claims.Subject, claims: claims, authed: true}, rl, true, nil
}

// verify returns the claims of tok, from the cache of recently verified
// tokens when it is there.
func (r *Router) verify(tok string, now time.Time) (auth.Claims, error) {
	if c, ok := r.tokens.get(tok, now); ok {
		return c, nil
	}
	c, err := r.cfg.Auth.Verify(tok, now)
	if err != nil {
		return c, err
	}
	r.tokens.put(tok, c)
	return c, nil
}

// tokenCacheSize bounds the verified tokens remembered: some 4 MB of
// typical tokens.
const tokenCacheSize = 16384

// tokenCache remembers the claims of recently verified tokens, so a
// client's repeated calls skip the signature check and the JSON decoding
// (some 100 µs a call for EdDSA, 15 µs for HS256). Only tokens that
// passed Verify enter; every use checks the validity period again. The
// keyring is fixed for the router's life, so a cached token's key is
// still listed. Beyond its bound an arbitrary entry makes room (Go's map
// iteration order is randomised).
type tokenCache struct {
	mu sync.Mutex
	m  map[string]auth.Claims
}

func newTokenCache() *tokenCache { return &tokenCache{m: make(map[string]auth.Claims)} }

// get returns the claims of tok if it is cached and valid at now.
func (c *tokenCache) get(tok string, now time.Time) (auth.Claims, bool) {
	c.mu.Lock()
	cl, ok := c.m[tok]
	c.mu.Unlock()
	if !ok || !now.Before(cl.Expiry.Add(auth.ClockLeeway)) || (!cl.NotBefore.IsZero() && now.Before(cl.NotBefore.Add(-auth.ClockLeeway))) {
		return auth.Claims{}, false // Verify says why
	}
	return cl, true
}

func (c *tokenCache) put(tok string, cl auth.Claims) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.m) >= tokenCacheSize {
		for k := range c.m {
			delete(c.m, k)
			break
		}
	}
	c.m[tok] = cl
}

// bearerToken reads the token of the call's authorization metadata.
func bearerToken(ctx context.Context) (string, error) {
	md, _ := metadata.FromIncomingContext(ctx)
	vals := md.Get(auth.MetadataKey)
	if len(vals) == 0 {
		return "", status.Error(codes.Unauthenticated, "missing token: send the metadata `authorization: Bearer <token>` (geomatch admin token mints one)")
	}
	if len(vals) > 1 {
		return "", status.Error(codes.Unauthenticated, "invalid token: more than one authorization entry")
	}
	tok, ok := auth.FromHeader(vals[0])
	if !ok {
		return "", status.Error(codes.Unauthenticated, "invalid token: the authorization metadata must be `Bearer <token>`")
	}
	return tok, nil
}

func roleList(roles []auth.Role) string {
	s := make([]string, len(roles))
	for i, r := range roles {
		s[i] = string(r)
	}
	return strings.Join(s, " or ")
}

// peerHost is the IP address of the call's peer ("unknown" when not
// known): clients are told apart by address when nobody has a token.
func peerHost(ctx context.Context) string {
	p, ok := grpcpeer.FromContext(ctx)
	if !ok || p.Addr == nil {
		return "unknown"
	}
	host, _, err := net.SplitHostPort(p.Addr.String())
	if err != nil {
		return p.Addr.String()
	}
	return host
}

// checkSubjects refuses a request that names a driver or rider other than
// the caller: every update's driver_id, a ride request's or cancel's
// rider_id. The whole call is refused, nothing of it applied.
func checkSubjects(c caller, req any) error {
	if !c.authed || c.admin() {
		return nil
	}
	switch m := req.(type) {
	case *geomatchv1.UpdateLocationsRequest:
		for i, u := range m.GetUpdates() {
			if !c.actsFor(u.GetDriverId()) {
				return c.notSubject("updates["+strconv.Itoa(i)+"].driver_id", u.GetDriverId())
			}
		}
	case *geomatchv1.RequestRideRequest:
		if !c.actsFor(m.GetRiderId()) {
			return c.notSubject("rider_id", m.GetRiderId())
		}
	case *geomatchv1.CancelTripRequest:
		if !c.actsFor(m.GetRiderId()) {
			return c.notSubject("rider_id", m.GetRiderId())
		}
	}
	return nil
}

// cost is what a call takes from its bucket: one per update of an
// UpdateLocations call (at least one), one for any other call.
func cost(req any) int {
	if m, ok := req.(*geomatchv1.UpdateLocationsRequest); ok {
		return max(1, len(m.GetUpdates()))
	}
	return 1
}

// guardUnary authenticates, authorises and rate-limits a public unary call.
func (r *Router) guardUnary(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
	if !r.guarded() {
		return handler(ctx, req)
	}
	c, rl, public, err := r.identify(ctx, info.FullMethod)
	if err != nil {
		return nil, err
	}
	if !public {
		return handler(ctx, req)
	}
	if err := r.limits.admit(c, rl.bucket, cost(req)); err != nil {
		return nil, err
	}
	if err := checkSubjects(c, req); err != nil {
		return nil, err
	}
	return handler(context.WithValue(ctx, callerKey{}, c), req)
}

// guardStream authenticates, authorises and rate-limits the opening of a
// public stream, and counts it against its client's stream limit.
func (r *Router) guardStream(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, handler grpc.StreamHandler) error {
	if !r.guarded() {
		return handler(srv, ss)
	}
	c, rl, public, err := r.identify(ss.Context(), info.FullMethod)
	if err != nil {
		return err
	}
	if !public {
		return handler(srv, ss)
	}
	if err := r.limits.admit(c, rl.bucket, 1); err != nil {
		return err
	}
	if info.FullMethod == geomatchv1.DriverService_Connect_FullMethodName {
		// The per-client stream bound is of driver streams; event
		// subscriptions have their own (Config.MaxSubscriptions).
		release, err := r.limits.openStream(c)
		if err != nil {
			return err
		}
		defer release()
	}
	return handler(srv, callerStream{ServerStream: ss, ctx: context.WithValue(ss.Context(), callerKey{}, c)})
}

// callerStream is a server stream whose context carries its caller.
type callerStream struct {
	grpc.ServerStream
	ctx context.Context
}

func (s callerStream) Context() context.Context { return s.ctx }

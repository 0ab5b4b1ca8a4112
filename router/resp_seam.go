package router

import (
	"fmt"
	"net"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/geomatch/geomatch/auth"
	"github.com/geomatch/geomatch/driver"
	"github.com/geomatch/geomatch/fleet"
	"github.com/geomatch/geomatch/internal/geo"
	geomatchv1 "github.com/geomatch/geomatch/proto/geomatch/v1"
)

// This file is the seam another front door of the public API (the RESP
// server of package resp) goes through, so that it shares the router's
// fleet client, token verification, access rules and per-client limits
// instead of keeping copies of them.

// Caller is a client of another front door, as the router identified it:
// anonymous (authentication off, or not yet authenticated) or the holder of
// a verified token. The zero Caller is anonymous with an unknown address.
type Caller struct{ c caller }

// Subject returns the token's subject; "" for an anonymous caller.
func (c Caller) Subject() string { return c.c.claims.Subject }

// Role returns the token's role; "" for an anonymous caller.
func (c Caller) Role() auth.Role { return c.c.claims.Role }

// Authenticated reports whether c holds a verified token.
func (c Caller) Authenticated() bool { return c.c.authed }

// Action is what a call of another front door does, as the gRPC method
// whose access rule and rate bucket it takes.
type Action string

// The actions of the RESP front door.
const (
	// ActionUpdate reports driver positions (UpdateLocations' rule: driver
	// or admin tokens; a driver only its own id; the updates bucket).
	ActionUpdate Action = Action(geomatchv1.DriverService_UpdateLocations_FullMethodName)
	// ActionNearby searches drivers (NearbyDrivers' rule: rider or admin
	// tokens; the requests bucket).
	ActionNearby Action = Action(geomatchv1.RiderService_NearbyDrivers_FullMethodName)
)

// Fleet returns the router's client of the matcher fleet.
func (r *Router) Fleet() *fleet.Client { return r.fleet }

// AuthRequired reports whether calls need a token (Config.Auth is set).
func (r *Router) AuthRequired() bool { return r.cfg.Auth != nil }

// UpdateTimeout is how long a location update may take (Config.UpdateTimeout).
func (r *Router) UpdateTimeout() time.Duration { return r.cfg.UpdateTimeout }

// Anonymous returns the caller of a connection from remoteAddr (host:port)
// with no token: limited by its IP address, like a gRPC peer when
// authentication is off.
func (r *Router) Anonymous(remoteAddr string) Caller {
	host, _, err := net.SplitHostPort(remoteAddr)
	if err != nil {
		host = remoteAddr
	}
	if host == "" {
		host = "unknown"
	}
	return Caller{caller{key: "peer " + host}}
}

// Authenticate verifies a bearer token as the gRPC API does (the same
// keyring and cache of verified tokens) and returns its caller. The error
// is UNAUTHENTICATED; with authentication off every token is refused with
// FAILED_PRECONDITION, since none can be verified.
func (r *Router) Authenticate(token string, now time.Time) (Caller, error) {
	if r.cfg.Auth == nil {
		return Caller{}, status.Error(codes.FailedPrecondition, "authentication is off on this router: no token is needed")
	}
	claims, err := r.verify(token, now)
	if err != nil {
		return Caller{}, status.Errorf(codes.Unauthenticated, "invalid token: %v", err)
	}
	return Caller{caller{key: string(claims.Role) + " " + claims.Subject, claims: claims, authed: true}}, nil
}

// Admit applies the access rule and the per-client limit of a to c for a
// call of cost (updates in it; 1 for a search): UNAUTHENTICATED without a
// token while authentication is on, PERMISSION_DENIED for a role the rule
// does not list, RESOURCE_EXHAUSTED beyond the client's rate. The limits
// hold with authentication off too, by the caller's address.
func (r *Router) Admit(c Caller, a Action, cost int) error {
	rl, ok := policy[string(a)]
	if !ok {
		return status.Errorf(codes.PermissionDenied, "%s: no access rule for this action", a)
	}
	if r.cfg.Auth != nil {
		if !c.c.authed {
			return status.Error(codes.Unauthenticated, "missing token: authenticate first (AUTH <token>; geomatch admin token mints one)")
		}
		if !roleIn(rl.roles, c.c.claims.Role) {
			return status.Errorf(codes.PermissionDenied, "%s needs role %s; the token of %q has role %s", a, roleList(rl.roles), c.c.claims.Subject, c.c.claims.Role)
		}
	}
	if !r.limits.active() {
		return nil
	}
	return r.limits.admit(c.c, rl.bucket, cost)
}

// MayUpdate refuses (PERMISSION_DENIED) an update of driverID by c unless c
// may act for it: its own id, any for an admin, any when authentication is
// off. field names the request's field in the error.
func (c Caller) MayUpdate(field, driverID string) error {
	if c.c.actsFor(driverID) {
		return nil
	}
	return c.c.notSubject(field, driverID)
}

func roleIn(roles []auth.Role, r auth.Role) bool {
	for _, x := range roles {
		if x == r {
			return true
		}
	}
	return false
}

// PositionUpdate is a location update of another front door, before
// validation.
type PositionUpdate struct {
	DriverID     string
	Lat, Lng     float64
	TimestampMs  int64
	VehicleClass string // "": keep the driver's class
}

// ValidatePosition checks u with the gRPC API's update validation
// (ValidateLocationUpdate) and returns it as the fleet client takes it.
func ValidatePosition(u PositionUpdate, now time.Time) (fleet.Update, error) {
	pos := geomatchv1.LatLng{Lat: u.Lat, Lng: u.Lng}
	lu := geomatchv1.LocationUpdate{DriverId: u.DriverID, Position: &pos, TimestampMs: u.TimestampMs, VehicleClass: u.VehicleClass}
	if err := ValidateLocationUpdate(&lu, now); err != nil {
		return fleet.Update{}, err
	}
	return fleet.Update{DriverID: u.DriverID, Pos: geo.LatLng{Lat: u.Lat, Lng: u.Lng}, TimestampMs: u.TimestampMs, VehicleClass: u.VehicleClass}, nil
}

// ValidateSearch checks a search with the gRPC API's nearby validation
// (ValidateNearby: position, limit within [1, MaxLimit], radius within
// (0, MaxRadiusM], vehicle class) and returns it as the fleet client takes
// it: available drivers only, as NearbyDrivers.
func ValidateSearch(lat, lng, radiusM float64, limit int, vehicleClass string) (fleet.Query, error) {
	pos := geomatchv1.LatLng{Lat: lat, Lng: lng}
	l := int32(limit)
	if limit > MaxLimit || limit < 0 {
		l = MaxLimit + 1 // out of range whatever int32 makes of it
	}
	req := geomatchv1.NearbyDriversRequest{Position: &pos, RadiusM: radiusM, Limit: l, VehicleClass: vehicleClass}
	if err := ValidateNearby(&req); err != nil {
		if limit > MaxLimit || limit < 0 {
			return fleet.Query{}, fmt.Errorf("limit: must be within [1, %d], got %d", MaxLimit, limit)
		}
		return fleet.Query{}, err
	}
	return fleet.Query{Pos: geo.LatLng{Lat: lat, Lng: lng}, RadiusM: radiusM, K: limit, Status: driver.StatusAvailable, VehicleClass: vehicleClass}, nil
}

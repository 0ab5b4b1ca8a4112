package auth

import "fmt"

// Role is what a token's holder may do.
type Role string

// The roles of the public API.
const (
	// RoleDriver reports its own positions and answers its own offers.
	RoleDriver Role = "driver"
	// RoleRider looks for drivers and requests, reads and cancels its own
	// trips.
	RoleRider Role = "rider"
	// RoleAdmin runs the cluster and may act for any driver or rider
	// (operators, trusted back ends, load tests).
	RoleAdmin Role = "admin"
)

// Roles lists every role.
var Roles = []Role{RoleDriver, RoleRider, RoleAdmin}

// ParseRole returns the role named s.
func ParseRole(s string) (Role, error) {
	for _, r := range Roles {
		if string(r) == s {
			return r, nil
		}
	}
	return "", fmt.Errorf("role %q: want driver, rider or admin", s)
}

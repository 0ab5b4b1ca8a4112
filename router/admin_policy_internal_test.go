package router

import (
	"slices"
	"testing"

	"github.com/geomatch/geomatch/auth"
	geomatchv1 "github.com/geomatch/geomatch/proto/geomatch/v1"
)

// TestEveryAdminMethodIsForAdminsOnly: each method of AdminService has an
// access rule, and only the admin role passes it.
func TestEveryAdminMethodIsForAdminsOnly(t *testing.T) {
	sd := geomatchv1.AdminService_ServiceDesc
	if len(sd.Methods) < 10 {
		t.Fatalf("AdminService has %d methods, want the 3 reads and the 7 changes at least", len(sd.Methods))
	}
	for _, m := range sd.Methods {
		method := "/" + sd.ServiceName + "/" + m.MethodName
		rl, ok := policy[method]
		if !ok {
			t.Errorf("%s: no access rule", method)
			continue
		}
		if !slices.Equal(rl.roles, []auth.Role{auth.RoleAdmin}) {
			t.Errorf("%s: roles %v, want admin only", method, rl.roles)
		}
	}
}

package router_test

import (
	"context"
	"net"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	"github.com/geomatch/geomatch/auth"
	"github.com/geomatch/geomatch/cluster"
	geomatchv1 "github.com/geomatch/geomatch/proto/geomatch/v1"
	"github.com/geomatch/geomatch/router"
)

// TestCallInProcess: Router.Call (the shard map's way to the admin API)
// checks tokens and roles as the gRPC server does, runs the same handler,
// and refuses methods it does not serve.
func TestCallInProcess(t *testing.T) {
	c := startCluster(t, cluster.DevConfig{Matchers: 2, Router: router.Config{Auth: testVerifier(t)}})
	k := testKeyring(t)
	now := time.Now()
	admin, err := k.Issue("ops", auth.RoleAdmin, time.Hour, now)
	if err != nil {
		t.Fatal(err)
	}
	rider, err := k.Issue("alice", auth.RoleRider, time.Hour, now)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	remote := &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 4242}
	tests := []struct {
		name, token, method string
		req                 proto.Message
		code                codes.Code
	}{
		{"no token", "", geomatchv1.AdminService_GetRing_FullMethodName, &geomatchv1.GetRingRequest{}, codes.Unauthenticated},
		{"a rider's token", rider, geomatchv1.AdminService_GetRing_FullMethodName, &geomatchv1.GetRingRequest{}, codes.PermissionDenied},
		{"an admin's", admin, geomatchv1.AdminService_GetRing_FullMethodName, &geomatchv1.GetRingRequest{}, codes.OK},
		{"fences, an admin's", admin, geomatchv1.FenceService_ListFences_FullMethodName, &geomatchv1.ListFencesRequest{}, codes.OK},
		{"a stream is not served", admin, geomatchv1.DriverService_Connect_FullMethodName, nil, codes.InvalidArgument},
		{"an unknown method", admin, "/geomatch.v1.AdminService/Nothing", nil, codes.InvalidArgument},
		{"a request of the wrong type", admin, geomatchv1.AdminService_MoveShard_FullMethodName, &geomatchv1.GetRingRequest{}, codes.InvalidArgument},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := c.Router.Call(ctx, remote, tc.token, tc.method, tc.req); status.Code(err) != tc.code {
				t.Fatalf("%v, want %s", err, tc.code)
			}
		})
	}
	// A change is applied.
	resp, err := c.Router.Call(ctx, remote, admin, geomatchv1.AdminService_DrainNode_FullMethodName, &geomatchv1.DrainNodeRequest{NodeId: "m2"})
	if err != nil {
		t.Fatal(err)
	}
	if rc := resp.(*geomatchv1.RingChange); rc.GetEpoch() != rc.GetEpochBefore()+1 {
		t.Fatalf("drain: %+v", rc)
	}
	if m, _ := c.Router.Ring(); !m.Drained("m2") {
		t.Fatal("m2 is not drained")
	}
}

package router

import (
	"context"
	"net"
	"strings"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	grpcpeer "google.golang.org/grpc/peer"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	"github.com/geomatch/geomatch/auth"
	"github.com/geomatch/geomatch/fleet"
	geomatchv1 "github.com/geomatch/geomatch/proto/geomatch/v1"
	"github.com/geomatch/geomatch/shardmap"
)

// The methods below let the router's own web pages (the live shard map,
// package ui) read the ring and the matchers' load, and act through the
// admin API, in process.

// Ring returns the ring the router routes by, and a channel closed once a
// newer one is published.
func (r *Router) Ring() (*shardmap.Map, <-chan struct{}) { return r.src.Current() }

// MembershipKind names where the router's ring comes from ("local",
// "static", "consul").
func (r *Router) MembershipKind() string { return r.src.Kind() }

// AuthOn reports whether the router checks tokens (Config.Auth).
func (r *Router) AuthOn() bool { return r.cfg.Auth != nil }

// Stats asks every member of m for its stats, in parallel, as the admin
// API's cluster status and shard list do.
func (r *Router) Stats(ctx context.Context, m *shardmap.Map) []fleet.NodeStats {
	return r.probe(ctx, m)
}

// Call calls an AdminService or FenceService method (its full gRPC name,
// such as geomatchv1.AdminService_MoveShard_FullMethodName) with req as
// the router's gRPC server runs a unary call: the same authentication and
// role check (token is the caller's bearer token, "" for none), the same
// per-client limits and audit, the same handler. remote is the caller's
// address, its client key while authentication is off. The error is a
// gRPC status.
func (r *Router) Call(ctx context.Context, remote net.Addr, token, method string, req proto.Message) (proto.Message, error) {
	var (
		desc *grpc.MethodDesc
		srv  any
	)
	for _, svc := range []struct {
		desc *grpc.ServiceDesc
		srv  any
	}{
		{&geomatchv1.AdminService_ServiceDesc, &adminService{r: r}},
		{&geomatchv1.FenceService_ServiceDesc, &fenceService{r: r}},
	} {
		name, ok := strings.CutPrefix(method, "/"+svc.desc.ServiceName+"/")
		if !ok {
			continue
		}
		for i := range svc.desc.Methods {
			if svc.desc.Methods[i].MethodName == name {
				desc, srv = &svc.desc.Methods[i], svc.srv
			}
		}
	}
	if desc == nil {
		return nil, status.Errorf(codes.InvalidArgument, "method: %q is no unary method of AdminService or FenceService", method)
	}
	md := metadata.MD{}
	if token != "" {
		md.Set(auth.MetadataKey, "Bearer "+token)
	}
	ctx = metadata.NewIncomingContext(ctx, md)
	if remote != nil {
		ctx = grpcpeer.NewContext(ctx, &grpcpeer.Peer{Addr: remote})
	}
	dec := func(into any) error {
		m, ok := into.(proto.Message)
		if !ok {
			return status.Errorf(codes.Internal, "%s: request type %T", method, into)
		}
		if req != nil {
			if m.ProtoReflect().Descriptor() != req.ProtoReflect().Descriptor() {
				return status.Errorf(codes.InvalidArgument, "%s: request is a %s, want %s", method, req.ProtoReflect().Descriptor().FullName(), m.ProtoReflect().Descriptor().FullName())
			}
			proto.Merge(m, req)
		}
		return nil
	}
	resp, err := desc.Handler(srv, ctx, dec, r.guardUnary)
	if err != nil {
		if _, ok := status.FromError(err); !ok {
			err = status.Error(codes.Internal, err.Error())
		}
		return nil, err
	}
	out, ok := resp.(proto.Message)
	if !ok {
		return nil, status.Errorf(codes.Internal, "%s: response type %T", method, resp)
	}
	return out, nil
}

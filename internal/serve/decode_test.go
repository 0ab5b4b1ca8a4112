package serve

import (
	"context"
	"log/slog"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/mem"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"
)

// rawCodec sends bytes as they are.
type rawCodec struct{}

func (rawCodec) Name() string { return "proto" }
func (rawCodec) Marshal(v any) (mem.BufferSlice, error) {
	return mem.BufferSlice{mem.SliceBuffer(*v.(*[]byte))}, nil
}
func (rawCodec) Unmarshal(data mem.BufferSlice, v any) error {
	*v.(*[]byte) = data.Materialize()
	return nil
}

// TestUndecodableIsInvalidArgument: bytes that do not decode answer
// INVALID_ARGUMENT naming the message type, on unary calls and streams,
// and interceptors passed to New (call metrics) see that code; requests
// that decode are served as before.
func TestUndecodableIsInvalidArgument(t *testing.T) {
	var mu sync.Mutex
	seen := map[string]codes.Code{}
	record := func(method string, err error) {
		mu.Lock()
		seen[method] = status.Code(err)
		mu.Unlock()
	}
	s := New("test", slog.New(slog.DiscardHandler),
		grpc.ChainUnaryInterceptor(func(ctx context.Context, req any, info *grpc.UnaryServerInfo, h grpc.UnaryHandler) (any, error) {
			resp, err := h(ctx, req)
			record(info.FullMethod, err)
			return resp, err
		}),
		grpc.ChainStreamInterceptor(func(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, h grpc.StreamHandler) error {
			err := h(srv, ss)
			record(info.FullMethod, err)
			return err
		}))
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Serve(ctx, lis, time.Second) }()
	defer func() {
		cancel()
		<-done
	}()
	conn, err := grpc.NewClient(lis.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithDefaultCallOptions(grpc.ForceCodecV2(rawCodec{})))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	cctx, ccancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer ccancel()

	const check, watch = "/grpc.health.v1.Health/Check", "/grpc.health.v1.Health/Watch"
	bad := []byte{0x0a, 0x05, 'a'} // field 1, 5 bytes long, 1 there
	var out []byte
	err = conn.Invoke(cctx, check, &bad, &out, grpc.WaitForReady(true))
	if st := status.Convert(err); st.Code() != codes.InvalidArgument || !strings.HasPrefix(st.Message(), "request does not decode as grpc.health.v1.HealthCheckRequest: ") {
		t.Fatalf("Check with bad bytes: %v, want INVALID_ARGUMENT naming the type", err)
	}
	good, _ := proto.Marshal(&healthpb.HealthCheckRequest{})
	if err := conn.Invoke(cctx, check, &good, &out); err != nil {
		t.Fatalf("Check: %v", err)
	}
	// A mark without the server's nonce is an unknown field like any other.
	forged := protowire.AppendBytes(protowire.AppendTag(nil, markField, protowire.BytesType), []byte("forged"))
	if err := conn.Invoke(cctx, check, &forged, &out); err != nil {
		t.Fatalf("Check with a forged mark: %v, want it served", err)
	}

	st, err := conn.NewStream(cctx, &grpc.StreamDesc{ServerStreams: true}, watch)
	if err != nil {
		t.Fatal(err)
	}
	if err := st.SendMsg(&bad); err != nil {
		t.Fatal(err)
	}
	_ = st.CloseSend()
	err = st.RecvMsg(&out)
	if st := status.Convert(err); st.Code() != codes.InvalidArgument || !strings.Contains(st.Message(), "grpc.health.v1.HealthCheckRequest") {
		t.Fatalf("Watch with bad bytes: %v, want INVALID_ARGUMENT naming the type", err)
	}

	mu.Lock()
	defer mu.Unlock()
	if seen[check] != codes.OK || seen[watch] != codes.InvalidArgument {
		t.Fatalf("interceptors saw %v", seen)
	}
}

// TestUndecodableMark: the codec marks only messages that fail to decode,
// and the mark carries the error.
func TestUndecodableMark(t *testing.T) {
	c := newDecodeCodec()
	var m healthpb.HealthCheckRequest
	if err := c.Unmarshal(mem.BufferSlice{mem.SliceBuffer([]byte{0x0a, 0x02, 'o', 'k'})}, &m); err != nil || m.GetService() != "ok" || c.undecodable(&m) != nil {
		t.Fatalf("valid: %v %v %v", err, &m, c.undecodable(&m))
	}
	if err := c.Unmarshal(mem.BufferSlice{mem.SliceBuffer([]byte{0xff})}, &m); err != nil {
		t.Fatalf("invalid: %v, want the failure swallowed", err)
	}
	err := c.undecodable(&m)
	if status.Code(err) != codes.InvalidArgument || m.GetService() != "" {
		t.Fatalf("invalid: %v (message %v), want INVALID_ARGUMENT and an empty message", err, &m)
	}
	if err := c.Unmarshal(mem.BufferSlice{mem.SliceBuffer([]byte{0xff})}, new(int)); err == nil {
		t.Fatal("not a message: nil error, want the codec's error")
	}
	if c.undecodable(nil) != nil || c.undecodable("x") != nil {
		t.Fatal("undecodable of a non-message")
	}
}

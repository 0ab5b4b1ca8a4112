package router_test

import (
	"context"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"os"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/mem"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/reflect/protoregistry"
	"google.golang.org/protobuf/types/dynamicpb"

	"github.com/geomatch/geomatch/cluster"
	"github.com/geomatch/geomatch/internal/lifecycle"
	_ "github.com/geomatch/geomatch/proto/geomatch/matcher/v1" // registers the internal API
)

// rawCodec sends and receives bytes as they are: the client of a fuzzer.
type rawCodec struct{}

func (rawCodec) Name() string { return "proto" }

func (rawCodec) Marshal(v any) (mem.BufferSlice, error) {
	return mem.BufferSlice{mem.SliceBuffer(*v.(*[]byte))}, nil
}

func (rawCodec) Unmarshal(data mem.BufferSlice, v any) error {
	*v.(*[]byte) = data.Materialize()
	return nil
}

// unaryMethods lists the unary methods of the services of package pkg.
func unaryMethods(pkg protoreflect.FullName) []protoreflect.MethodDescriptor {
	var ms []protoreflect.MethodDescriptor
	protoregistry.GlobalFiles.RangeFilesByPackage(pkg, func(fd protoreflect.FileDescriptor) bool {
		for i := 0; i < fd.Services().Len(); i++ {
			sd := fd.Services().Get(i)
			for j := 0; j < sd.Methods().Len(); j++ {
				if md := sd.Methods().Get(j); !md.IsStreamingClient() && !md.IsStreamingServer() {
					ms = append(ms, md)
				}
			}
		}
		return true
	})
	return ms
}

// filled returns the encoding of a message of md with every field set
// (strings of 24 bytes, nested messages one level deep): cut short, it
// no longer decodes.
func filled(md protoreflect.MessageDescriptor) []byte {
	m := dynamicpb.NewMessage(md)
	fill(m, 2)
	b, _ := proto.Marshal(m)
	return b
}

func fill(m protoreflect.Message, depth int) {
	fields := m.Descriptor().Fields()
	for i := 0; i < fields.Len(); i++ {
		fd := fields.Get(i)
		if fd.ContainingOneof() != nil && m.WhichOneof(fd.ContainingOneof()) != nil {
			continue
		}
		if fd.IsMap() {
			continue
		}
		var v protoreflect.Value
		switch fd.Kind() {
		case protoreflect.MessageKind, protoreflect.GroupKind:
			if depth == 0 {
				continue
			}
			sub := m.NewField(fd)
			if fd.IsList() {
				el := sub.List().NewElement()
				fill(el.Message(), depth-1)
				sub.List().Append(el)
			} else {
				fill(sub.Message(), depth-1)
			}
			m.Set(fd, sub)
			continue
		case protoreflect.StringKind:
			v = protoreflect.ValueOfString("abcdefghijklmnopqrstuvwx")
		case protoreflect.BytesKind:
			v = protoreflect.ValueOfBytes([]byte("abcdefghijklmnopqrstuvwx"))
		case protoreflect.BoolKind:
			v = protoreflect.ValueOfBool(true)
		case protoreflect.EnumKind:
			v = protoreflect.ValueOfEnum(1)
		case protoreflect.FloatKind:
			v = protoreflect.ValueOfFloat32(1.5)
		case protoreflect.DoubleKind:
			v = protoreflect.ValueOfFloat64(40.75)
		case protoreflect.Int32Kind, protoreflect.Sint32Kind, protoreflect.Sfixed32Kind:
			v = protoreflect.ValueOfInt32(7)
		case protoreflect.Int64Kind, protoreflect.Sint64Kind, protoreflect.Sfixed64Kind:
			v = protoreflect.ValueOfInt64(7)
		case protoreflect.Uint32Kind, protoreflect.Fixed32Kind:
			v = protoreflect.ValueOfUint32(7)
		case protoreflect.Uint64Kind, protoreflect.Fixed64Kind:
			v = protoreflect.ValueOfUint64(7)
		default:
			continue
		}
		if fd.IsList() {
			l := m.Mutable(fd).List()
			l.Append(v)
			continue
		}
		m.Set(fd, v)
	}
}

// TestUndecodableRequests sends random bytes, and valid requests cut
// short, to every unary method of the public API (router) and the internal
// API (a matcher) of a real cluster on loopback ports: none may answer
// INTERNAL; those that do not decode answer INVALID_ARGUMENT naming the
// message type, and the call metrics count them with their method and code.
// 2,000 requests a method (200 with -short) keep it quick;
// GEOMATCH_FUZZ_CALLS=10000 sends more (some 30 s, 2 minutes with -race).
func TestUndecodableRequests(t *testing.T) {
	perMethod := 2_000
	if testing.Short() {
		perMethod = 200
	}
	if v := os.Getenv("GEOMATCH_FUZZ_CALLS"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 1_000_000 {
			t.Fatalf("GEOMATCH_FUZZ_CALLS=%q, want 1..1000000", v)
		}
		perMethod = n
	}
	obs := cluster.NewObserver()
	c := startCluster(t, cluster.DevConfig{Matchers: 2, Metrics: obs})
	maddr := freeLoopback(t)
	g := lifecycle.NewGroup()
	if err := obs.Serve(g, maddr, slog.New(slog.DiscardHandler)); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = g.Stop() })

	type target struct {
		addr, server string
		methods      []protoreflect.MethodDescriptor
	}
	targets := []target{
		{c.RouterAddr, "router", unaryMethods("geomatch.v1")},
		{c.Members[0].Addr, "matcher " + c.Members[0].ID, unaryMethods("geomatch.matcher.v1")},
	}
	if len(targets[0].methods) < 20 || len(targets[1].methods) < 4 {
		t.Fatalf("found %d public and %d internal unary methods; the registry is not what this test expects", len(targets[0].methods), len(targets[1].methods))
	}
	rng := rand.New(rand.NewPCG(1, 2))
	for _, tg := range targets {
		conn, err := grpc.NewClient(tg.addr, grpc.WithTransportCredentials(insecure.NewCredentials()),
			grpc.WithDefaultCallOptions(grpc.ForceCodecV2(rawCodec{})))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { conn.Close() })
		for _, md := range tg.methods {
			method := fmt.Sprintf("/%s/%s", md.Parent().FullName(), md.Name())
			// The requests: valid ones cut short, then random bytes.
			var reqs [][]byte
			valid := filled(md.Input())
			for n := 1; n < len(valid) && len(reqs) < 50; n += max(1, len(valid)/50) {
				reqs = append(reqs, valid[:n])
			}
			for len(reqs) < perMethod {
				b := make([]byte, 1+rng.IntN(48))
				for i := range b {
					b[i] = byte(rng.Uint32())
				}
				reqs = append(reqs, b)
			}
			codesSeen := callAll(t, conn, method, reqs, string(md.Input().FullName()))
			if codesSeen[codes.Internal] > 0 || codesSeen[codes.Unknown] > 0 {
				t.Errorf("%s: %v; want no INTERNAL or UNKNOWN", method, codesSeen)
			}
			if codesSeen[codes.InvalidArgument] < len(reqs)/2 {
				t.Errorf("%s: %v; want most INVALID_ARGUMENT", method, codesSeen)
			}
			t.Logf("%s: %v", method, codesSeen)
			// The server counted every call with its code.
			m := scrape(t, maddr)
			for code, n := range codesSeen {
				key := fmt.Sprintf(`geomatch_grpc_requests_total{code="%s",method="%s",server="%s"}`, code, method, tg.server)
				got, err := strconv.Atoi(m[key])
				// The cluster's own calls to its matchers add to their OKs;
				// a call past its deadline may still run on the server.
				if code == codes.DeadlineExceeded {
					continue
				}
				if err != nil || got < n || (got != n && (code != codes.OK || tg.server == "router")) {
					t.Errorf("%s = %q, want %d", key, m[key], n)
				}
			}
			for key := range m {
				if strings.Contains(key, `method="`+method+`"`) && strings.Contains(key, `code="Internal"`) {
					t.Errorf("%s = %s", key, m[key])
				}
			}
		}
	}
}

// callAll sends every request to method over conn, 32 at a time, and
// returns the codes of the answers. An INVALID_ARGUMENT of a request that
// does not decode must name typ.
func callAll(t *testing.T, conn *grpc.ClientConn, method string, reqs [][]byte, typ string) map[codes.Code]int {
	var mu sync.Mutex
	seen := map[codes.Code]int{}
	var badMsg []string
	work := make(chan []byte)
	var wg sync.WaitGroup
	for range 32 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for req := range work {
				ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
				var out []byte
				err := conn.Invoke(ctx, method, &req, &out)
				cancel()
				st := status.Convert(err)
				mu.Lock()
				seen[st.Code()]++
				if st.Code() == codes.InvalidArgument && strings.HasPrefix(st.Message(), "request does not decode") &&
					!strings.HasPrefix(st.Message(), "request does not decode as "+typ+": ") {
					badMsg = append(badMsg, st.Message())
				}
				if st.Code() == codes.Internal || st.Code() == codes.Unknown {
					badMsg = append(badMsg, fmt.Sprintf("%v for %x", err, req))
				}
				if st.Code() == codes.DeadlineExceeded {
					t.Logf("%s: %v for %x", method, err, req)
				}
				mu.Unlock()
			}
		}()
	}
	for _, r := range reqs {
		work <- r
	}
	close(work)
	wg.Wait()
	sort.Strings(badMsg)
	for i, m := range badMsg {
		if i == 5 {
			t.Errorf("%s: ... %d more", method, len(badMsg)-5)
			break
		}
		t.Errorf("%s: %s", method, m)
	}
	return seen
}

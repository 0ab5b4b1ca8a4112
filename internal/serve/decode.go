package serve

import (
	"bytes"
	"context"
	"crypto/rand"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/encoding"
	grpcproto "google.golang.org/grpc/encoding/proto"
	"google.golang.org/grpc/mem"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"
)

// Bytes that do not decode are the client's fault: they answer
// INVALID_ARGUMENT ("request does not decode as geomatch.v1.X: ..."), and
// the call metrics count them under their method like any other refusal.
//
// grpc-go (v1.85, rpc_util.go recv) turns whatever error a codec's
// Unmarshal returns into INTERNAL ("grpc: failed to unmarshal the received
// message"), and a unary request is decoded by the generated handler's
// dec() before any unary interceptor runs, so neither the code nor the
// metrics interceptors can be fixed by returning a better error from the
// codec. Instead the server's codec (decodeCodec) swallows a decoding
// failure: it empties the message and leaves a mark in its unknown fields
// (a reserved field number, a per-process random nonce and the error
// text). The mark lives and dies with the message, so nothing leaks when a
// call is refused before anyone looks at it. The innermost unary
// interceptor (checkUnary) and a stream wrapper installed by the outermost
// stream interceptor (checkStream) turn a marked message into
// INVALID_ARGUMENT before a handler sees it; the interceptors in between
// (call metrics, the router's authentication and limits) see an empty
// request, then the INVALID_ARGUMENT.

// markField is the field number of the mark: the largest a field may have,
// which no geomatch message uses.
const markField protowire.Number = protowire.MaxValidNumber

// maxMarkError bounds the error text carried by a mark.
const maxMarkError = 256

// decodeCodec is the proto codec of every geomatch server, with decoding
// failures marked on the message instead of returned (see above).
type decodeCodec struct {
	inner encoding.CodecV2
	// nonce starts every mark, so a client cannot forge one (a forged mark
	// would only get its own call refused, but its text would be the
	// client's).
	nonce []byte
}

func newDecodeCodec() *decodeCodec {
	nonce := make([]byte, 16)
	_, _ = rand.Read(nonce) // never fails (crypto/rand)
	return &decodeCodec{inner: encoding.GetCodecV2(grpcproto.Name), nonce: nonce}
}

// Name implements encoding.CodecV2.
func (c *decodeCodec) Name() string { return c.inner.Name() }

// Marshal implements encoding.CodecV2. An Encoded message goes out as it
// is.
func (c *decodeCodec) Marshal(v any) (mem.BufferSlice, error) {
	if e, ok := v.(Encoded); ok {
		return mem.BufferSlice{mem.SliceBuffer(e)}, nil
	}
	return c.inner.Marshal(v)
}

// Encoded is a message already in wire form, which the codec of every
// geomatch server sends as it is: a stream that relays stored messages
// (the event log's) sends them with SendMsg(Encoded(b)) without decoding
// and encoding each again. The sender vouches that the bytes are a valid
// encoding of the stream's message type.
type Encoded []byte

// Unmarshal implements encoding.CodecV2: a proto message that does not
// decode is emptied and marked, and nil returned.
func (c *decodeCodec) Unmarshal(data mem.BufferSlice, v any) error {
	err := c.inner.Unmarshal(data, v)
	if err == nil {
		return nil
	}
	m, ok := v.(proto.Message)
	if !ok {
		return err // not a message of ours: a server bug, INTERNAL is right
	}
	proto.Reset(m)
	text := err.Error()
	if len(text) > maxMarkError {
		text = text[:maxMarkError]
	}
	mark := protowire.AppendTag(nil, markField, protowire.BytesType)
	mark = protowire.AppendBytes(mark, append(append([]byte(nil), c.nonce...), text...))
	m.ProtoReflect().SetUnknown(mark)
	return nil
}

// undecodable returns the INVALID_ARGUMENT of a message the codec marked,
// or nil.
func (c *decodeCodec) undecodable(v any) error {
	m, ok := v.(proto.Message)
	if !ok || m == nil {
		return nil
	}
	unk := m.ProtoReflect().GetUnknown()
	if len(unk) == 0 {
		return nil
	}
	num, typ, n := protowire.ConsumeTag(unk)
	if n < 0 || num != markField || typ != protowire.BytesType {
		return nil
	}
	val, k := protowire.ConsumeBytes(unk[n:])
	if k < 0 || n+k != len(unk) || !bytes.HasPrefix(val, c.nonce) {
		return nil
	}
	return status.Errorf(codes.InvalidArgument, "request does not decode as %s: %s",
		m.ProtoReflect().Descriptor().FullName(), val[len(c.nonce):])
}

// checkUnary is the innermost unary interceptor: it refuses a request that
// did not decode, after the interceptors that count and guard calls.
func (c *decodeCodec) checkUnary(ctx context.Context, req any, _ *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
	if err := c.undecodable(req); err != nil {
		return nil, err
	}
	return handler(ctx, req)
}

// checkStream wraps every stream so that a message that did not decode
// ends the stream with INVALID_ARGUMENT instead of reaching the handler.
func (c *decodeCodec) checkStream(srv any, ss grpc.ServerStream, _ *grpc.StreamServerInfo, handler grpc.StreamHandler) error {
	return handler(srv, checkedStream{ServerStream: ss, c: c})
}

// checkedStream is a server stream whose received messages are checked
// for the codec's mark.
type checkedStream struct {
	grpc.ServerStream
	c *decodeCodec
}

// RecvMsg implements grpc.ServerStream.
func (s checkedStream) RecvMsg(m any) error {
	if err := s.ServerStream.RecvMsg(m); err != nil {
		return err
	}
	// A status, not wrapped: gRPC sends its code and message as they are.
	return s.c.undecodable(m)
}

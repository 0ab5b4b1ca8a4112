package fencev1

import (
	"encoding/binary"
	"errors"
	"fmt"

	"google.golang.org/protobuf/proto"

	"github.com/geomatch/geomatch/fence"
	geomatchv1 "github.com/geomatch/geomatch/proto/geomatch/v1"
)

// A stored fence (store.FenceRecord.Data) is the fence's message as the
// API returns it and, beside it, its shape in fence's binary form: the
// router validated the GeoJSON when the fence was put, so a matcher
// rebuilds the shape without parsing and checking the text again (for a
// polygon of 500 vertices, about a hundredth of the work).
//
// Layout: 0x00, version 1, uvarint length of the marshalled message, the
// message, the shape's binary form. A marshalled message never starts
// with 0x00 (field number 0 does not exist), so data without the marker
// is a bare message, as stored by earlier releases; it decodes too.

const storedMarker, storedVersion = 0x00, 1

// EncodeStored returns the stored form of pb, whose fence f is (as Decode
// returned it).
func EncodeStored(pb *geomatchv1.Fence, f *fence.Fence) ([]byte, error) {
	msg, err := proto.Marshal(pb)
	if err != nil {
		return nil, fmt.Errorf("encode fence %s: %w", pb.GetFenceId(), err)
	}
	b := make([]byte, 0, 2+binary.MaxVarintLen64+len(msg)+16*64)
	b = append(b, storedMarker, storedVersion)
	b = binary.AppendUvarint(b, uint64(len(msg)))
	b = append(b, msg...)
	return fence.AppendShape(b, f.Shape), nil
}

// DecodeStored returns the message of a stored fence and its shape's
// binary form (nil for data stored by earlier releases).
func DecodeStored(data []byte) (*geomatchv1.Fence, []byte, error) {
	msg, shape := data, []byte(nil)
	if len(data) > 0 && data[0] == storedMarker {
		if len(data) < 2 || data[1] != storedVersion {
			return nil, nil, errors.New("stored fence: unknown version")
		}
		n, k := binary.Uvarint(data[2:])
		if k <= 0 || n > uint64(len(data)-2-k) {
			return nil, nil, errors.New("stored fence: truncated")
		}
		msg, shape = data[2+k:2+k+int(n)], data[2+k+int(n):]
	}
	pb := &geomatchv1.Fence{}
	if err := proto.Unmarshal(msg, pb); err != nil {
		return nil, nil, fmt.Errorf("stored fence: %w", err)
	}
	return pb, shape, nil
}

// DecodeStoredFence returns the fence of a stored fence: its shape from
// the binary form when there is one, else (data of earlier releases) by
// Decode.
func DecodeStoredFence(data []byte) (*fence.Fence, error) {
	pb, shape, err := DecodeStored(data)
	if err != nil {
		return nil, err
	}
	if shape == nil {
		return Decode(pb)
	}
	f, err := decodeMeta(pb)
	if err != nil {
		return nil, err
	}
	if f.Shape, err = fence.DecodeShape(shape); err != nil {
		return nil, fmt.Errorf("stored fence %s: %w", pb.GetFenceId(), err)
	}
	return f, nil
}

package events

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
)

// EventID returns a deterministic event id for the given parts (e.g. the
// kind, a driver id, a fence id, a timestamp): the hex of the first 128
// bits of the SHA-256 of the parts, each prefixed with its length so that
// ("ab","c") and ("a","bc") differ. The same parts always give the same
// 32-character id, in every process and release.
func EventID(parts ...string) string {
	// One buffer on the stack for the usual ids (a few short parts), one
	// hash call: no allocation but the returned string.
	var buf [256]byte
	b := buf[:0]
	for _, p := range parts {
		b = binary.AppendUvarint(b, uint64(len(p)))
		b = append(b, p...)
	}
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:16])
}

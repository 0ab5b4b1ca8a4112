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
	h := sha256.New()
	var n [binary.MaxVarintLen64]byte
	for _, p := range parts {
		h.Write(n[:binary.PutUvarint(n[:], uint64(len(p)))])
		h.Write([]byte(p))
	}
	var sum [sha256.Size]byte
	return hex.EncodeToString(h.Sum(sum[:0])[:16])
}

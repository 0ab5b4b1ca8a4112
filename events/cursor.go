package events

import (
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"strings"
)

// Position is a place in one partition: the id of the last entry read
// there, or zero for "before everything". A Redis stream id "ms-seq" is
// Position{Ms: ms, Seq: seq}; the in-memory log uses Position{Seq: n}
// with n counting appends from 1. Positions compare as (Ms, Seq) pairs.
type Position struct {
	Ms  uint64
	Seq uint64
}

// Less reports whether p comes before q.
func (p Position) Less(q Position) bool {
	return p.Ms < q.Ms || (p.Ms == q.Ms && p.Seq < q.Seq)
}

// String formats p as a Redis stream id ("ms-seq").
func (p Position) String() string {
	return fmt.Sprintf("%d-%d", p.Ms, p.Seq)
}

// Cursor is a place in the whole log: one Position per partition. Reading
// after a cursor returns, in every partition, the entries after that
// partition's position. A Cursor is an immutable value: methods that
// change it return a copy. The zero Cursor (no partitions) is before
// everything in a log of any partition count.
type Cursor struct {
	pos []Position
}

// NewCursor returns a cursor at the given positions, one per partition
// (the slice is copied).
func NewCursor(positions []Position) Cursor {
	if len(positions) == 0 {
		return Cursor{}
	}
	return Cursor{pos: append([]Position(nil), positions...)}
}

// Partitions is the number of partitions c has positions for (0 for the
// zero cursor).
func (c Cursor) Partitions() int { return len(c.pos) }

// IsZero reports whether c is before everything in every partition.
func (c Cursor) IsZero() bool {
	for _, p := range c.pos {
		if p != (Position{}) {
			return false
		}
	}
	return true
}

// Position returns c's position in partition p (zero when c is the zero
// cursor or p is out of range).
func (c Cursor) Position(p int) Position {
	if p < 0 || p >= len(c.pos) {
		return Position{}
	}
	return c.pos[p]
}

// Positions returns a copy of c's positions, one per partition.
func (c Cursor) Positions() []Position {
	return append([]Position(nil), c.pos...)
}

// With returns a copy of c with partition p at pos: the cursor after an
// entry read at pos in partition p. A zero cursor is first widened to n
// partitions; it panics if p is not in [0, n).
func (c Cursor) With(n, p int, pos Position) Cursor {
	out := make([]Position, n)
	copy(out, c.pos)
	out[p] = pos
	return Cursor{pos: out}
}

// Equal reports whether c and d are at the same place (a zero cursor
// equals an all-zero cursor of any width).
func (c Cursor) Equal(d Cursor) bool {
	n := max(len(c.pos), len(d.pos))
	for p := range n {
		if c.Position(p) != d.Position(p) {
			return false
		}
	}
	return true
}

// Before reports whether c is strictly before d: no partition of c is
// after d's, and at least one is before. Cursors form a partial order:
// neither of two cursors may be before the other.
func (c Cursor) Before(d Cursor) bool {
	n := max(len(c.pos), len(d.pos))
	less := false
	for p := range n {
		cp, dp := c.Position(p), d.Position(p)
		if dp.Less(cp) {
			return false
		}
		if cp.Less(dp) {
			less = true
		}
	}
	return less
}

// widen returns c's positions as a slice of n (a zero cursor becomes n
// zero positions), or an error if c has another partition count.
func (c Cursor) widen(n int) ([]Position, error) {
	switch len(c.pos) {
	case n:
		return c.pos, nil
	case 0:
		return make([]Position, n), nil
	default:
		return nil, fmt.Errorf("cursor has %d partitions, log has %d", len(c.pos), n)
	}
}

// Cursor string format, version 1: "c1" then the unpadded base64url
// encoding of
//
//	uvarint(partitions)
//	per partition: varint(ms - previous partition's ms), uvarint(seq)
//
// Ms is delta-encoded (zigzag, wrapping) against the previous partition
// because Redis ids of one log share most of their time: 8 partitions of
// a busy Redis log take about 40 bytes before base64. Every cursor has
// exactly one string: ParseCursor rejects non-minimal varints, trailing
// bytes and non-canonical base64.
const (
	cursorVersion = "c1"
	// maxCursorLen bounds the input ParseCursor decodes, so a hostile
	// after_cursor cannot make the server allocate much. 2 KiB holds a
	// cursor of over 60 partitions of full-width positions.
	maxCursorLen = 2048
)

var cursorEncoding = base64.RawURLEncoding.Strict()

// String encodes c as an opaque, URL-safe string, starting with a version
// ("c1"). Parse it back with ParseCursor.
func (c Cursor) String() string {
	var arr [128]byte
	b := c.appendBinary(arr[:0])
	out := make([]byte, len(cursorVersion)+cursorEncoding.EncodedLen(len(b)))
	copy(out, cursorVersion)
	cursorEncoding.Encode(out[len(cursorVersion):], b)
	return string(out)
}

// appendBinary appends the version-1 binary form of c to b.
func (c Cursor) appendBinary(b []byte) []byte {
	b = binary.AppendUvarint(b, uint64(len(c.pos)))
	var prev uint64
	for _, p := range c.pos {
		b = binary.AppendVarint(b, int64(p.Ms-prev))
		b = binary.AppendUvarint(b, p.Seq)
		prev = p.Ms
	}
	return b
}

// ErrBadCursor is wrapped by every ParseCursor error.
var ErrBadCursor = errors.New("invalid cursor")

// ParseCursor decodes a string from Cursor.String for a log of the given
// number of partitions. It fails, wrapping ErrBadCursor, on anything that
// String did not produce and on a cursor of another partition count; the
// zero cursor's string parses for any count.
func ParseCursor(s string, partitions int) (Cursor, error) {
	c, err := parseCursor(s, partitions)
	if err != nil {
		return Cursor{}, fmt.Errorf("%w %q: %s", ErrBadCursor, truncate(s, 40), err)
	}
	return c, nil
}

func parseCursor(s string, partitions int) (Cursor, error) {
	if s == "" {
		return Cursor{}, errors.New("empty")
	}
	if len(s) > maxCursorLen {
		return Cursor{}, fmt.Errorf("longer than %d bytes", maxCursorLen)
	}
	body, ok := strings.CutPrefix(s, cursorVersion)
	if !ok {
		return Cursor{}, fmt.Errorf("does not start with %q", cursorVersion)
	}
	b, err := cursorEncoding.DecodeString(body)
	// The decoder skips newlines and ignores stray low bits; re-encoding
	// keeps one string per cursor.
	if err != nil || cursorEncoding.EncodeToString(b) != body {
		return Cursor{}, errors.New("not base64url")
	}
	rest := b
	n, rest, err := uvarint(rest)
	if err != nil {
		return Cursor{}, err
	}
	if n == 0 {
		if len(rest) != 0 {
			return Cursor{}, errors.New("trailing bytes")
		}
		return Cursor{}, nil
	}
	if n != uint64(partitions) {
		return Cursor{}, fmt.Errorf("has %d partitions, the log has %d", n, partitions)
	}
	if uint64(len(rest)) < 2*n { // every position takes at least 2 bytes
		return Cursor{}, errors.New("truncated")
	}
	pos := make([]Position, n)
	var prev uint64
	for i := range pos {
		var d, seq uint64
		if d, rest, err = uvarint(rest); err != nil {
			return Cursor{}, err
		}
		if seq, rest, err = uvarint(rest); err != nil {
			return Cursor{}, err
		}
		// d is the zigzag form of the signed delta: undo it as
		// binary.Varint does.
		delta := int64(d >> 1)
		if d&1 != 0 {
			delta = ^delta
		}
		pos[i] = Position{Ms: prev + uint64(delta), Seq: seq}
		prev = pos[i].Ms
	}
	if len(rest) != 0 {
		return Cursor{}, errors.New("trailing bytes")
	}
	return Cursor{pos: pos}, nil
}

// uvarint reads one minimally encoded uvarint from b.
func uvarint(b []byte) (uint64, []byte, error) {
	v, n := binary.Uvarint(b)
	if n <= 0 {
		return 0, nil, errors.New("truncated or overlong number")
	}
	if n > 1 && b[n-1] == 0 { // a final 0x00 byte: a shorter encoding exists
		return 0, nil, errors.New("non-minimal number")
	}
	return v, b[n:], nil
}

// truncate shortens s for an error message.
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}

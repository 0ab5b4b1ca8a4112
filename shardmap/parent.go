package shardmap

import "github.com/uber/h3-go/v4"

// Cell is an H3 cell index. Shards, split cells, fine cells and ring keys are
// all cells; the alias keeps h3's text encoding (hex strings in JSON).
type Cell = h3.Cell

// Bit layout of an H3 index (see h3's h3Index.h): bit 63 reserved, bits
// 59..62 mode, bits 56..58 reserved, bits 52..55 resolution, bits 45..51
// base cell, then 15 digits of 3 bits, the digit of resolution r at bit
// (15-r)*3.
const (
	maxRes       = 15
	resOffset    = 52
	resMask      = uint64(15) << resOffset
	modeOffset   = 59
	modeMask     = uint64(15) << modeOffset
	modeCell     = 1
	highMask     = uint64(1)<<63 | uint64(7)<<56 // the reserved bits, zero in a cell
	baseOffset   = 45
	baseMask     = uint64(127) << baseOffset
	numBaseCells = 122
	digitBits    = 3
	digitMask    = uint64(7)
	digitInvalid = 7 // the digit below a cell's resolution
	digitK       = 1 // the deleted subsequence of pentagons
)

// Parent returns the ancestor of c at resolution res: c itself when res is
// c's resolution, 0 when res is finer than c or outside [0, 15]. It is pure
// bit manipulation (set the resolution field, set the digits below res to 7),
// bit-identical to h3's Cell.Parent, and costs a few nanoseconds with no cgo
// call and no allocation.
func Parent(c Cell, res int) Cell {
	cr := Resolution(c)
	if res < 0 || res > maxRes || res > cr {
		return 0
	}
	if res == cr {
		return c
	}
	u := uint64(c)&^resMask | uint64(res)<<resOffset
	// Digits res+1..cr occupy bits (15-cr)*3 .. (15-res)*3-1.
	n := uint((cr - res) * digitBits)
	u |= (uint64(1)<<n - 1) << uint((maxRes-cr)*digitBits)
	return Cell(u)
}

// Resolution returns the resolution field of c (0..15), without cgo.
func Resolution(c Cell) int {
	return int(uint64(c) & resMask >> resOffset)
}

// digit returns the digit of c at resolution r (1..15).
func digit(c Cell, r int) uint64 {
	return uint64(c) >> uint((maxRes-r)*digitBits) & digitMask
}

// baseCell returns the base cell number of c (0..127; valid cells use 0..121).
func baseCell(c Cell) int {
	return int(uint64(c) & baseMask >> baseOffset)
}

// pentagonBaseCell reports whether base cell b is one of the 12 pentagons.
// The set is fixed by the H3 grid (TestPentagonBaseCells checks it against
// h3.Pentagons).
func pentagonBaseCell(b int) bool {
	switch b {
	case 4, 14, 24, 38, 49, 58, 63, 72, 83, 97, 107, 117:
		return true
	}
	return false
}

// validCell reports whether c is a valid H3 cell index, like h3's
// Cell.IsValid, without cgo: cell mode, reserved bits clear, a base cell in
// range, digits 0..6 down to the resolution and 7 below it, and no deleted
// (K axis) subsequence under a pentagon base cell.
func validCell(c Cell) bool {
	u := uint64(c)
	if u&highMask != 0 || (u&modeMask)>>modeOffset != modeCell {
		return false
	}
	b := baseCell(c)
	if b >= numBaseCells {
		return false
	}
	res := Resolution(c)
	pent := pentagonBaseCell(b)
	leading := true
	for r := 1; r <= maxRes; r++ {
		d := digit(c, r)
		if r > res {
			if d != digitInvalid {
				return false
			}
			continue
		}
		if d == digitInvalid {
			return false
		}
		if pent && leading && d != 0 {
			if d == digitK {
				return false
			}
			leading = false
		}
	}
	return true
}

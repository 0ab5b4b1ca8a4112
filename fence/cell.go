package fence

import "github.com/uber/h3-go/v4"

// Bit layout of an H3 index (h3's h3Index.h, as in shardmap/parent.go):
// bits 52..55 hold the resolution and the digit of resolution r sits at bit
// (15-r)*3; digits below a cell's resolution are 7.
const (
	maxRes    = 15
	resOffset = 52
	resMask   = uint64(15) << resOffset
	digitBits = 3
)

// cellRes returns the resolution of c without cgo.
func cellRes(c h3.Cell) int { return int(uint64(c) & resMask >> resOffset) }

// parent returns c's ancestor at res (res <= c's resolution), bit-identical
// to h3's Cell.Parent, without cgo or allocation.
func parent(c h3.Cell, res int) h3.Cell {
	cr := cellRes(c)
	if res == cr {
		return c
	}
	u := uint64(c)&^resMask | uint64(res)<<resOffset
	n := uint((cr - res) * digitBits)
	u |= (uint64(1)<<n - 1) << uint((maxRes-cr)*digitBits)
	return h3.Cell(u)
}

// centerChild returns c's center child at res (res >= c's resolution),
// like h3's Cell.CenterChild: the digits between are 0.
func centerChild(c h3.Cell, res int) h3.Cell {
	cr := cellRes(c)
	if res == cr {
		return c
	}
	u := uint64(c)&^resMask | uint64(res)<<resOffset
	n := uint((res - cr) * digitBits)
	u &^= (uint64(1)<<n - 1) << uint((maxRes-res)*digitBits)
	return h3.Cell(u)
}

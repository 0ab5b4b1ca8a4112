package fence

import "strings"

// Detect is the set of transitions a fence reports, a bit mask of
// DetectEnter, DetectExit, DetectInside and DetectCross.
type Detect uint8

// The transitions a fence can report.
const (
	// DetectEnter reports drivers that were outside (or not seen before)
	// and are now inside.
	DetectEnter Detect = 1 << iota
	// DetectExit reports drivers that were inside and are now outside.
	DetectExit
	// DetectInside reports drivers that were inside and still are, on
	// every update.
	DetectInside
	// DetectCross reports drivers that were outside, are outside, and whose
	// straight segment between the two positions meets the fence.
	DetectCross

	// DefaultDetect is what a fence reports when its Detect is zero: enter
	// and exit.
	DefaultDetect = DetectEnter | DetectExit

	detectAll = DetectEnter | DetectExit | DetectInside | DetectCross
)

// Has reports whether d includes transition t.
func (d Detect) Has(t Transition) bool { return d&t.Detect() != 0 }

// String lists the transitions of d, e.g. "enter|exit".
func (d Detect) String() string {
	var parts []string
	for t := Enter; t <= Cross; t++ {
		if d.Has(t) {
			parts = append(parts, t.String())
		}
	}
	if d&^detectAll != 0 {
		parts = append(parts, "unknown")
	}
	if len(parts) == 0 {
		return "none"
	}
	return strings.Join(parts, "|")
}

// Transition is what happened to one driver relative to one fence between
// two consecutive positions. The values match the API's FenceDetect enum.
type Transition uint8

// The four transitions, with Tile38's semantics (see the package doc).
const (
	// Enter: the previous position was outside (or there was none) and
	// the current one is inside.
	Enter Transition = 1 + iota
	// Exit: the previous position was inside and the current one is
	// outside.
	Exit
	// Inside: both positions are inside.
	Inside
	// Cross: both positions are outside and the segment between them meets
	// the fence.
	Cross
)

// Detect returns the Detect bit of t (0 for an unknown value).
func (t Transition) Detect() Detect {
	if t < Enter || t > Cross {
		return 0
	}
	return 1 << (t - 1)
}

// String returns "enter", "exit", "inside" or "cross".
func (t Transition) String() string {
	switch t {
	case Enter:
		return "enter"
	case Exit:
		return "exit"
	case Inside:
		return "inside"
	case Cross:
		return "cross"
	}
	return "unknown"
}

// transitionOf is the transition of a driver whose previous position was
// inside (prevIn) or not, and whose current one is inside (curIn) or not;
// ok is false when nothing happened. hasPrev is false for a driver seen for
// the first time; crosses is consulted only when both positions are
// outside.
func transitionOf(hasPrev, prevIn, curIn bool, crosses func() bool) (Transition, bool) {
	switch {
	case !hasPrev:
		return Enter, curIn
	case prevIn && curIn:
		return Inside, true
	case prevIn:
		return Exit, true
	case curIn:
		return Enter, true
	case crosses != nil && crosses():
		return Cross, true
	}
	return 0, false
}

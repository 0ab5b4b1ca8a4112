package events

import "slices"

// Filter selects records, as SubscribeRequest and Hook do: a record passes
// when it passes every non-empty list. Sets and FenceIDs constrain fence
// events only; trip and driver events have no set or fence and pass them.
// KindUnspecified in Kinds stands for every kind.
type Filter struct {
	Sets     []string
	FenceIDs []string
	Kinds    []Kind
}

// Match reports whether r passes f.
func (f Filter) Match(r *Record) bool {
	if len(f.Kinds) > 0 && !slices.Contains(f.Kinds, r.Kind) && !slices.Contains(f.Kinds, KindUnspecified) {
		return false
	}
	if r.Kind != KindFence {
		return true
	}
	if len(f.Sets) > 0 && !slices.Contains(f.Sets, r.Set) {
		return false
	}
	if len(f.FenceIDs) > 0 && !slices.Contains(f.FenceIDs, r.FenceID) {
		return false
	}
	return true
}

// IsZero reports whether f passes everything.
func (f Filter) IsZero() bool {
	return len(f.Sets) == 0 && len(f.FenceIDs) == 0 && len(f.Kinds) == 0
}

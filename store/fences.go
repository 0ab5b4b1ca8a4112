package store

import (
	"context"
	"errors"
)

// Fence definitions and per-driver fence state. Fence definitions are
// durable (Redis when configured, memory in geomatch dev): routers write
// them, and every matcher loads and follows them through FenceChanges.
// A driver's fence state is the set of fences it was inside after its last
// transition: the node a driver crosses to reads it to tell an exit or an
// inside from an enter, since it has no previous position of its own.

// FenceRecord is a stored fence definition.
type FenceRecord struct {
	ID  string
	Set string
	// Rev is the store-wide revision of the put or delete that made the
	// record what it is; assigned by the store, increasing.
	Rev uint64
	// Data is the marshalled geomatchv1.Fence; nil in a change that
	// deletes the fence.
	Data []byte
}

// FenceChanges is a page of changes after a revision.
type FenceChanges struct {
	// Records are the changes, by increasing Rev; a deletion has nil Data.
	Records []FenceRecord
	// Rev is the revision the caller has seen once it applied Records:
	// pass it as since next time.
	Rev uint64
	// Reset says that changes since the caller's revision are no longer
	// all known (deletions were forgotten): the caller drops every fence
	// it holds, applies Records, and continues from Rev.
	Reset bool
	// More says another page follows.
	More bool
}

// Fences keeps fence definitions.
type Fences interface {
	// PutFence stores rec (replacing the fence with its ID) and returns it
	// with its new revision.
	PutFence(ctx context.Context, rec FenceRecord) (FenceRecord, error)
	// DeleteFence deletes a fence and returns the revision of the
	// deletion; ErrNotFound when there is none.
	DeleteFence(ctx context.Context, id string) (uint64, error)
	// Fence returns one fence; ErrNotFound when there is none.
	Fence(ctx context.Context, id string) (FenceRecord, error)
	// ListFences returns up to limit fences of set (every set when empty)
	// whose ID sorts after after, by ID.
	ListFences(ctx context.Context, set, after string, limit int) ([]FenceRecord, error)
	// CountFences returns the number of fences stored.
	CountFences(ctx context.Context) (int, error)
	// FenceChanges returns up to limit changes after revision since;
	// since 0 reads every fence.
	FenceChanges(ctx context.Context, since uint64, limit int) (FenceChanges, error)
}

// FenceState is a driver's fence state: the fences it is inside (and
// markers of the matcher's, such as its online flag) as of the update at
// TimestampMs, the last that changed them.
type FenceState struct {
	TimestampMs int64
	IDs         []string
}

// FenceStates keeps each driver's fence state. Drivers inside no fence
// (and without a marker) have no record.
type FenceStates interface {
	// FenceStates returns the states of the listed drivers (absent: none).
	FenceStates(ctx context.Context, driverIDs []string) (map[string]FenceState, error)
	// SaveFenceStates records the states of drivers, each only if it is
	// not older than the stored one (a late writer loses); an empty IDs
	// deletes the record on the same condition.
	SaveFenceStates(ctx context.Context, states map[string]FenceState) error
}

// MaxFenceTombstones bounds the deletions a store remembers for
// FenceChanges; a reader further behind is told to Reset.
const MaxFenceTombstones = 100_000

// ErrFenceLimit is returned by PutFence when the store holds its bound of
// fences.
var ErrFenceLimit = errors.New("fence limit reached")

package hook

import (
	"context"
	"errors"
	"time"

	geomatchv1 "github.com/geomatch/geomatch/proto/geomatch/v1"
)

// Store keeps what routers share about hooks: their definitions, each
// hook's progress (the cursor acknowledged by its sink, and its counters),
// the lease that lets exactly one router deliver a hook at a time, and the
// dead letters. Implementations: MemoryStore (one process) and RedisStore.
type Store interface {
	// PutHook creates or replaces the definition of h (stored without its
	// stats). A new hook starts at progress start; a replaced one keeps its
	// progress. It fails with ErrTooManyHooks when h is new and the store
	// already holds maxHooks hooks.
	PutHook(ctx context.Context, h *geomatchv1.Hook, start Progress, maxHooks int) error
	// DeleteHook removes a hook with its progress, lease and dead letters;
	// ErrNotFound when there is none.
	DeleteHook(ctx context.Context, id string) error
	// Hooks returns every hook definition, in no particular order.
	Hooks(ctx context.Context) ([]*geomatchv1.Hook, error)
	// Progress returns a hook's progress; ErrNotFound when the hook has
	// none.
	Progress(ctx context.Context, id string) (Progress, error)
	// SaveProgress stores a hook's progress if owner holds its lease, and
	// fails with ErrLeaseLost otherwise: a runner that lost its lease
	// cannot move the cursor of the one that took over.
	SaveProgress(ctx context.Context, id, owner string, p Progress) error
	// Lease acquires a hook's lease for owner for ttl, or extends it when
	// owner holds it already. It reports false when someone else holds it.
	Lease(ctx context.Context, id, owner string, ttl time.Duration) (bool, error)
	// Release gives up owner's lease of a hook (nothing when owner does not
	// hold it).
	Release(ctx context.Context, id, owner string) error
	// DeadLetter appends events to a hook's dead-letter stream, bounded by
	// the store's configuration: the oldest letters go first.
	DeadLetter(ctx context.Context, id string, letters []DeadLetter) error
	// DeadLetters returns up to max of a hook's dead letters, oldest first.
	DeadLetters(ctx context.Context, id string, max int) ([]DeadLetter, error)
}

// Progress is how far a hook has delivered, and its counters.
type Progress struct {
	// Cursor is the events.Cursor string after the last event the sink
	// acknowledged (or dead-lettered): delivery resumes after it.
	Cursor string `json:"cursor"`
	// Counters since the hook was created, across runners.
	Delivered    int64 `json:"delivered"`
	Retried      int64 `json:"retried"`
	DeadLettered int64 `json:"dead_lettered"`
	// LastError is the latest delivery error ("" after a success).
	LastError string `json:"last_error,omitempty"`
	// LastDeliveredMs is when the sink last acknowledged a batch (ms since
	// the Unix epoch).
	LastDeliveredMs int64 `json:"last_delivered_ms,omitempty"`
}

// DeadLetter is an event given up on.
type DeadLetter struct {
	// EventID, Key and JSON are the event's, as the sink would have
	// received them (JSON empty when the payload could not be decoded).
	EventID string
	Key     string
	JSON    []byte
	// Error is why delivery was given up.
	Error string
	// TimeMs is when (ms since the Unix epoch).
	TimeMs int64
}

// Store errors.
var (
	// ErrNotFound is the error of an operation on a hook that does not
	// exist.
	ErrNotFound = errors.New("hook not found")
	// ErrTooManyHooks refuses a new hook beyond Config.MaxHooks.
	ErrTooManyHooks = errors.New("too many hooks")
	// ErrLeaseLost refuses progress from a runner whose lease has expired
	// or been taken.
	ErrLeaseLost = errors.New("hook lease lost")
)

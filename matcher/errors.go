package matcher

import (
	"errors"
	"fmt"
)

// errInvalid marks requests the internal API refuses as malformed
// (INVALID_ARGUMENT over gRPC).
var errInvalid = errors.New("invalid request")

// errUnavailable marks calls the node cannot serve now or without a part
// it runs without (UNAVAILABLE over gRPC).
var errUnavailable = errors.New("unavailable")

func errBatchTooLarge(updates, evictions int) error {
	return fmt.Errorf("apply batch: %d updates and %d evictions, at most %d each: %w", updates, evictions, MaxBatch, errInvalid)
}

func errTooManyShards(n int) error {
	return fmt.Errorf("shards: %d listed, at most %d: %w", n, MaxShardsPerQuery, errInvalid)
}

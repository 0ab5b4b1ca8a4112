package matcher

import (
	"errors"
	"fmt"
)

// errInvalid marks requests the internal API refuses as malformed
// (INVALID_ARGUMENT over gRPC).
var errInvalid = errors.New("invalid request")

func errBatchTooLarge(updates, evictions int) error {
	return fmt.Errorf("apply batch: %d updates and %d evictions, at most %d each: %w", updates, evictions, MaxBatch, errInvalid)
}

func errTooManyShards(n int) error {
	return fmt.Errorf("shards: %d listed, at most %d: %w", n, MaxShardsPerQuery, errInvalid)
}

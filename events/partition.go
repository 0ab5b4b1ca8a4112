package events

import "hash/fnv"

// PartitionOf returns the partition, in [0, n), of records with the given
// key. It is FNV-1a (64 bit) of the key modulo n: fixed, without a seed,
// so every process of every release places a key in the same partition.
// Changing it, or a log's partition count, breaks per-key order across the
// change. n <= 1 gives 0.
func PartitionOf(key string, n int) int {
	if n <= 1 {
		return 0
	}
	h := fnv.New64a()
	h.Write([]byte(key))
	return int(h.Sum64() % uint64(n))
}

package loadgen

import (
	"math/bits"
	"time"
)

// subBits is log2 of the sub-buckets per power of two: 32 sub-buckets keep
// a recorded value within 1/32 (about 3%) of its bucket's bounds.
const subBits = 5

// numBuckets covers every int64 nanosecond value.
const numBuckets = (64 - subBits + 1) << subBits

// Histogram records latencies in log-spaced buckets: constant memory (about
// 16 KB) however many values it holds, and percentiles within about 3%.
// The zero value is ready to use; it is not safe for concurrent use (give
// each worker its own and Merge them).
type Histogram struct {
	counts [numBuckets]uint64
	n      uint64
	max    time.Duration
}

// bucketOf maps a non-negative value to its bucket.
func bucketOf(v uint64) int {
	if v < 1<<subBits {
		return int(v)
	}
	e := bits.Len64(v) - subBits // >= 1
	return e<<subBits | int(v>>(e-1)&(1<<subBits-1))
}

// bucketUpper is the largest value of bucket b.
func bucketUpper(b int) uint64 {
	if b < 1<<subBits {
		return uint64(b)
	}
	e := b >> subBits
	sub := uint64(b & (1<<subBits - 1))
	return (sub|1<<subBits)<<(e-1) + (1 << (e - 1)) - 1
}

// Record adds one latency; negative values count as zero.
func (h *Histogram) Record(d time.Duration) {
	if d < 0 {
		d = 0
	}
	h.counts[bucketOf(uint64(d))]++
	h.n++
	if d > h.max {
		h.max = d
	}
}

// Merge adds o's values to h.
func (h *Histogram) Merge(o *Histogram) {
	for i, c := range o.counts {
		h.counts[i] += c
	}
	h.n += o.n
	h.max = max(h.max, o.max)
}

// Count is the number of values recorded.
func (h *Histogram) Count() uint64 { return h.n }

// Quantile returns the q-quantile (0 ≤ q ≤ 1) of the recorded values: the
// upper bound of the bucket holding the value of rank ceil(q·n), never more
// than the largest value recorded. It is 0 when nothing was recorded.
func (h *Histogram) Quantile(q float64) time.Duration {
	if h.n == 0 {
		return 0
	}
	q = min(max(q, 0), 1)
	rank := uint64(q * float64(h.n))
	if float64(rank) < q*float64(h.n) {
		rank++
	}
	rank = max(rank, 1)
	var seen uint64
	for b, c := range h.counts {
		seen += c
		if seen >= rank {
			return min(time.Duration(bucketUpper(b)), h.max)
		}
	}
	return h.max
}

package loadgen

import (
	"testing"
	"time"
)

func TestHistogramQuantileWithinBucketPrecision(t *testing.T) {
	seq := func(n int, unit time.Duration) []time.Duration {
		out := make([]time.Duration, n)
		for i := range out {
			out[i] = time.Duration(i+1) * unit
		}
		return out
	}
	tests := []struct {
		name   string
		values []time.Duration
		q      float64
		want   time.Duration
	}{
		{"empty is zero", nil, 0.5, 0},
		{"one value is every quantile", []time.Duration{7 * time.Millisecond}, 0.999, 7 * time.Millisecond},
		{"small values are exact", []time.Duration{1, 2, 3, 4, 5, 6, 7, 8, 9, 10}, 0.5, 5},
		{"median of 1..1000 µs", seq(1000, time.Microsecond), 0.5, 500 * time.Microsecond},
		{"p99 of 1..1000 µs", seq(1000, time.Microsecond), 0.99, 990 * time.Microsecond},
		{"p999 of 1..10000 µs", seq(10000, time.Microsecond), 0.999, 9990 * time.Microsecond},
		{"q=1 is the maximum", seq(100, time.Millisecond), 1, 100 * time.Millisecond},
		{"q=0 is the minimum", seq(100, time.Millisecond), 0, time.Millisecond},
		{"a tail value shows at p999 of 1000", append(make([]time.Duration, 999), time.Second), 0.9995, time.Second},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var h Histogram
			for _, v := range tt.values {
				h.Record(v)
			}
			got := h.Quantile(tt.q)
			// A bucket spans 1/32 of its lower bound: the answer is the
			// exact value or above it by at most that.
			if got < tt.want || float64(got-tt.want) > float64(tt.want)/32+1 {
				t.Errorf("Quantile(%v) = %v, want %v (within 1/32 above)", tt.q, got, tt.want)
			}
		})
	}
}

func TestHistogramMergeAddsCounts(t *testing.T) {
	var a, b Histogram
	for i := 1; i <= 50; i++ {
		a.Record(time.Duration(i) * time.Millisecond)
		b.Record(time.Duration(i+50) * time.Millisecond)
	}
	a.Merge(&b)
	if a.Count() != 100 {
		t.Fatalf("Count = %d, want 100", a.Count())
	}
	if got := a.Quantile(1); got != 100*time.Millisecond {
		t.Errorf("max = %v, want 100ms", got)
	}
}

func TestBucketBoundsContainTheirValues(t *testing.T) {
	for _, v := range []uint64{0, 1, 31, 32, 33, 63, 64, 65, 1000, 1 << 20, 1<<40 + 12345, 1<<63 - 1} {
		b := bucketOf(v)
		if up := bucketUpper(b); up < v {
			t.Errorf("bucketUpper(bucketOf(%d)) = %d, below the value", v, up)
		}
		if b > 0 && bucketUpper(b-1) >= v {
			t.Errorf("value %d also fits the bucket below", v)
		}
	}
}

package assign

import "testing"

// FuzzOptimal builds a small candidate graph from the fuzzer's bytes (up to
// 7×7; costs from a few values, so ties are common, or finer ones) and
// checks Optimal and Greedy against the brute-force oracle.
func FuzzOptimal(f *testing.F) {
	f.Add([]byte{2, 2, 0, 0, 5, 0, 1, 3, 1, 0, 12, 1, 1, 4})
	f.Add([]byte{7, 7, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16})
	f.Add([]byte{3, 1, 0, 0, 1, 1, 0, 1, 2, 0, 1})
	f.Add([]byte{0, 5, 1, 1, 1})
	f.Fuzz(func(t *testing.T, data []byte) {
		if len(data) < 2 || len(data) > 2+3*64 {
			return
		}
		riders, drivers := int(data[0]%8), int(data[1]%8)
		var edges []Edge
		if riders > 0 && drivers > 0 {
			for b := data[2:]; len(b) >= 3; b = b[3:] {
				c := float64(b[2] % 16)
				if b[2] >= 128 {
					c = float64(b[2]) / 7 // not exact in binary
				}
				edges = append(edges, Edge{int(b[0]) % riders, int(b[1]) % drivers, c})
			}
		}
		checkAgainstBruteForce(t, riders, drivers, edges)
	})
}

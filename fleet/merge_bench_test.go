package fleet

import (
	"math/rand/v2"
	"testing"

	matcherv1 "github.com/geomatch/geomatch/proto/geomatch/matcher/v1"
)

// BenchmarkMerge merges the answers of 2 owners of 10 drivers each into the
// top 10 (the common second step of a nearby search), and of 4 owners of
// 100 (a sparse area searched with a large limit). merge reorders its
// input's copy, not the parts, so the parts are reused. Budget: 1
// allocation (the merged slice) below mergeScanMax drivers.
func BenchmarkMerge(b *testing.B) {
	for _, c := range []struct {
		name         string
		owners, each int
	}{{"2x10", 2, 10}, {"4x100", 4, 100}} {
		b.Run(c.name, func(b *testing.B) {
			parts := randomParts(rand.New(rand.NewPCG(5, 6)), c.owners, c.each, 4*c.each)
			b.ReportAllocs()
			var out []*matcherv1.Neighbor
			for b.Loop() {
				out = merge(parts, 10)
			}
			_ = out
		})
	}
}
